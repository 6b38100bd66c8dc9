"""The Chinese edition (notebooks/zh/, exercises/zh/) never out of step with the English.

Every Chinese notebook is built by tools/translate.py from a gettext catalogue in locale/zh_CN/
and the built English notebook. This fails when a Chinese notebook's code or stored outputs differ
from the English (comments apart); when its catalogue has an untranslated, fuzzy or obsolete entry or translates an
older English text; when a figure, formula or inline code of the English is missing from the
Chinese; when a Chinese notebook has no catalogue; or when it is not what `make sync` would build.
"""
import functools
import sys
from pathlib import Path

import nbformat
import polib
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import translate  # noqa: E402

ZH = sorted([*(ROOT / "notebooks" / "zh").glob("*.ipynb"), *(ROOT / "exercises" / "zh").glob("*.ipynb"),
             *(ROOT / "exercises" / "zh" / "solutions").glob("*.ipynb")])
IDS = [p.relative_to(ROOT).as_posix() for p in ZH]


@functools.cache
def problems(src):
    return translate.problems(src)


@functools.cache
def complete():
    """The Chinese notebooks whose catalogues are complete (links point to them)."""
    return frozenset(zh for s in translate.sources() if s.catalogue.exists() and not problems(s)
                     for _, zh, _ in s.targets())


def english_of(zh_path):
    src = translate.source_for(zh_path)
    assert src is not None, f"{zh_path.relative_to(ROOT)}: no English source of this name"
    (english,) = [en for en, zh, _ in src.targets() if zh == zh_path.resolve()]
    return src, english


@pytest.mark.parametrize("path", ZH, ids=IDS)
def test_same_code_and_outputs_as_english(path):
    _, english = english_of(path)
    en, zh = (nbformat.read(p, as_version=4) for p in (english, path))
    assert [c.cell_type for c in zh.cells] == [c.cell_type for c in en.cells], "cells differ"
    for i, (a, b) in enumerate(zip(en.cells, zh.cells)):
        if a.cell_type == "code":
            assert translate.without_comments(b.source) == translate.without_comments(a.source), \
                f"cell {i}: code differs from the English (only comments may)"
            assert b.get("outputs") == a.get("outputs"), f"cell {i}: outputs differ from the English (make sync)"
            assert b.get("execution_count") == a.get("execution_count"), f"cell {i}: execution count differs"


@pytest.mark.parametrize("path", ZH, ids=IDS)
def test_catalogue_complete_and_current(path):
    src, _ = english_of(path)
    assert src.catalogue.exists(), f"{path.relative_to(ROOT)} has no catalogue {src.catalogue.relative_to(ROOT)}"
    found = problems(src)
    assert not found, f"{src.catalogue.relative_to(ROOT)}:\n  " + "\n  ".join(found)


@pytest.mark.parametrize("path", ZH, ids=IDS)
def test_built_from_catalogue(path):
    src, english = english_of(path)
    solution = "solutions" in path.parts
    expected = translate.chinese_notebook(src, english, path.resolve(), solution, complete())
    have = nbformat.read(path, as_version=4)
    for i, (a, b) in enumerate(zip(expected.cells, have.cells)):
        assert b.source == a.source, f"cell {i} is not the catalogue's text: run python tools/translate.py build"


def test_missing_pieces_finds_figures_formulas_and_code():
    english = "A $d(k-1)+1$ window, `int`, gives 0.862 or 61 %."
    assert translate.missing_pieces(english, "窗口 $d(k-1)+1$，`int`，得到 0.862 或 61%。") == []
    assert translate.missing_pieces(english, "窗口 $d(k-1)+1$，`int`，得到 0.86 或 61%。") == ["figure 0.862"]
    assert translate.missing_pieces(english, "窗口 $d(k−1)+1$，`int`，得到 0.862 或 61 %。") == [
        "formula $d(k-1)+1$"]
    assert translate.missing_pieces(english, "窗口 $d(k-1)+1$，int，得到 0.862 或 61 %。") == ["code `int`"]
    wrapped = "so $a -\n2b$, where $c$ is"                   # a formula wrapped inside a paragraph
    assert translate.missing_pieces(wrapped, "所以 $a -\n2b$，其中 $c$ 是") == []
    assert translate.missing_pieces(wrapped, "所以 $a - 2b$，其中 $c$ 是") == []   # rejoined on one line
    assert translate.missing_pieces(wrapped, "所以 $a-2b$，其中 $c$ 是") == ["formula $a -\n2b$"]
    code = "call `f(x,\ny)` gives `z`"
    assert translate.missing_pieces(code, "调用 `f(x, y)` 得到 `z`") == []
    assert translate.missing_pieces(code, "调用 `f(x,y)` 得到 `z`") == ["code `f(x,\ny)`"]


def test_update_marks_changed_english_fuzzy(tmp_path, monkeypatch):
    """New cell: untranslated; moved cell: kept; changed cell: fuzzy with the previous English."""
    monkeypatch.setattr(translate, "LOCALE", tmp_path)
    master = tmp_path / "01_x.py"
    write = lambda *cells: master.write_text("\n\n".join(f"# %% [markdown]\n# {c}" for c in cells) + "\n")
    src = translate.Source("exercises", "01_x", master)
    write("Alpha", "Beta is the second letter")
    translate.update(src)
    po = polib.pofile(str(src.catalogue))
    for e, zh in zip(po, ["甲", "乙"]):
        e.msgstr = zh
    po.save()
    assert translate.problems(src) == []
    write("New", "Alpha", "Beta is the second Greek letter")          # a cell inserted; "Alpha" moved; "Beta" changed
    translate.update(src)
    po = {e.msgid: e for e in polib.pofile(str(src.catalogue))}
    assert po["New"].msgstr == "" and po["Alpha"].msgstr == "甲" and not po["Alpha"].fuzzy
    assert po["Beta is the second Greek letter"].fuzzy
    assert po["Beta is the second Greek letter"].previous_msgid == "Beta is the second letter"
    problems = translate.problems(src)
    assert any("untranslated" in p for p in problems) and any("fuzzy" in p for p in problems)


CELL = """import torch  # the library
# Two lines of
# one comment.
x = torch.ones(2)  # NBVAL_CHECK_OUTPUT
%time y = x + 1
s = "# not a comment"
for i in range(2):
    # indented, 0.5 kept
    print(i)  # noqa: T201
"""


def test_comments_are_found_translated_and_the_program_kept():
    found = translate.comments(CELL)
    assert [(c.text, c.inline) for c in found] == [
        ("the library", True), ("Two lines of\none comment.", False), ("indented, 0.5 kept", False)]
    zh = {"the library": "这个库", "Two lines of\none comment.": "一条注释，\n分三行\n写成。",
          "indented, 0.5 kept": "缩进的注释，保留 0.5"}
    out = translate.translate_comments(CELL, zh)
    assert out.splitlines()[:4] == ["import torch  # 这个库", "# 一条注释，", "# 分三行", "# 写成。"]
    assert "    # 缩进的注释，保留 0.5" in out and '"# not a comment"' in out and "# NBVAL_CHECK_OUTPUT" in out
    assert translate.without_comments(out) == translate.without_comments(CELL)
    assert translate.without_comments(out.replace("range(2)", "range(3)")) != translate.without_comments(CELL)


def test_a_changed_comment_is_fuzzy_and_a_lost_figure_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(translate, "LOCALE", tmp_path)
    master = tmp_path / "01_x.py"
    write = lambda comment: master.write_text(f"# %% [markdown]\n# Title\n\n# %%\nx = 1  # {comment}\n")
    src = translate.Source("exercises", "01_x", master)
    monkeypatch.setattr(translate.Source, "targets", lambda self: [(tmp_path / "none.ipynb", tmp_path / "zh.ipynb", False)])
    write("scale by 0.5 first")
    translate.update(src)
    po = polib.pofile(str(src.catalogue))
    po[0].msgstr, po[1].msgstr = "标题", "先乘以 0.5"
    po.save()
    assert translate.problems(src) == []
    write("scale by 0.25 first")
    translate.update(src)
    (entry,) = [e for e in polib.pofile(str(src.catalogue)) if e.msgctxt == translate.COMMENT]
    assert entry.fuzzy and entry.previous_msgid == "scale by 0.5 first"
    assert entry.msgstr == "先乘以 0.5"                       # the old translation, kept
    assert translate.missing_pieces(entry.msgid, entry.msgstr) == ["figure 0.25"]


def test_a_line_break_between_chinese_characters_is_removed():
    """CommonMark renders a soft line break as a space, which shows between Chinese characters."""
    assert translate.join_cjk_lines("第一行的结尾\n第二行，\n继续。\n- 列表\n$x$\n和") == "第一行的结尾第二行，继续。\n- 列表\n$x$\n和"
