"""The exercise checks speak Chinese in exercises/zh/ and English elsewhere, with the same checks.

Every learner-facing message of featlab/checks is marked for gettext (featlab/i18n.py) and
translated in featlab/locale/zh_CN/LC_MESSAGES/featlab.po (tools/messages.py). This fails when a
message is left unmarked, has no translation, loses a ``{placeholder}`` in Chinese, or when the
shipped .mo is older than the .po; it checks how the language is chosen, and runs the Chinese
exercise 01 (skeleton and solution) in a kernel started in exercises/zh/, as Jupyter would.
"""
import ast
import re
import sys
from pathlib import Path

import nbformat
import polib
import pytest

import featlab.checks as checks
from featlab import i18n
from featlab.checks import ExerciseError
from helpers import kernel, run_afresh

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import messages  # noqa: E402

CJK = re.compile(r"[\u4e00-\u9fff]")
CHECKS = sorted(n for n in dir(checks) if n.startswith("check_"))


@pytest.fixture
def zh(monkeypatch):
    monkeypatch.setenv("FEATLAB_LANG", "zh")


# --- the catalogue --------------------------------------------------------------------------

def test_every_message_has_a_chinese_translation_with_its_placeholders():
    found = messages.problems()
    assert not found, "featlab.po (python tools/messages.py update, translate, compile):\n  " + "\n  ".join(found)


def test_the_shipped_mo_is_compiled_from_the_po():
    assert messages.COMPILED.exists(), "no featlab.mo: run python tools/messages.py compile"
    assert messages.compiled_table(messages.COMPILED) == messages.compiled_table(messages.CATALOGUE), (
        "featlab.mo is older than featlab.po: run python tools/messages.py compile")


def test_the_mo_is_package_data():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'featlab\s*=\s*\[[^\]]*"locale/\*/LC_MESSAGES/\*\.mo"', text), (
        "pyproject.toml [tool.setuptools.package-data] must ship featlab/locale/*/LC_MESSAGES/*.mo")


def test_problems_finds_a_lost_placeholder_and_a_missing_translation(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "m.py").write_text('from featlab.i18n import N_, _\n'
                                  'A = _("{what} = {got:.3g}, expected {want!r}.").format(what=1, got=2, want=3)\n'
                                  'B = _("plain, no placeholders")\n'
                                  'C = N_("marked at import time")\n')
    po_path = tmp_path / "featlab.po"
    messages.update(po_path, package)
    po = polib.pofile(str(po_path))
    assert [e.msgid for e in po] == ["{what} = {got:.3g}, expected {want!r}.", "plain, no placeholders",
                                     "marked at import time"]
    assert [e.flags for e in po] == [[messages.BRACE], [], []]
    po[0].msgstr = "{what} = {got}，应为 {want!r}。"                 # the format spec :.3g is lost
    po[1].msgstr = "没有占位符"
    po.save()
    found = messages.problems(po_path, package)
    assert len(found) == 2 and "placeholders" in found[0] and "untranslated" in found[1]
    po = polib.pofile(str(po_path))
    po[0].msgstr = "{want!r} 才对，而 {what} = {got:.3g}。"          # another order is fine
    po[2].msgstr = "在导入时标记"
    po.save()
    assert messages.problems(po_path, package) == []


def test_update_marks_a_changed_message_fuzzy(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    source = package / "m.py"
    source.write_text('from featlab.i18n import _\nA = _("the bias is missing: add it.")\n')
    po_path = tmp_path / "featlab.po"
    messages.update(po_path, package)
    po = polib.pofile(str(po_path))
    po[0].msgstr = "缺少偏置：加上它。"
    po.save()
    source.write_text('from featlab.i18n import _\nA = _("the bias is missing: add it to every pixel.")\n')
    messages.update(po_path, package)
    (entry,) = polib.pofile(str(po_path))
    assert entry.fuzzy and entry.msgstr == "缺少偏置：加上它。"
    assert entry.previous_msgid == "the bias is missing: add it."
    assert any("fuzzy" in p for p in messages.problems(po_path, package))


def _shown(call: ast.Call) -> list[ast.expr]:
    """The message arguments of ExerciseError(...) and _ok(...) calls."""
    name = call.func.id if isinstance(call.func, ast.Name) else None
    return call.args[:1] if name in ("ExerciseError", "_ok") else []


def test_every_learner_facing_message_is_marked():
    """ExerciseError(...) and _ok(...) never get a bare string, and no prose string of the checks
    (three words or more, outside docstrings) escapes _() / N_()."""
    bad = []
    for path in sorted((ROOT / "featlab" / "checks").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        marked = {id(m) for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                  and n.func.id in messages.MARKERS for m in ast.walk(n)}
        for n in ast.walk(tree):
            if isinstance(n, ast.Call):
                bad += [f"{path.name}:{a.lineno}: a bare string shown" for a in _shown(n)
                        if isinstance(a, (ast.Constant, ast.JoinedStr))]
            if isinstance(n, (ast.Constant, ast.JoinedStr)) and id(n) not in docs | marked:
                text = ast.unparse(n)
                if isinstance(n, ast.JoinedStr) or isinstance(n.value, str):
                    if re.search(r"[a-z]{2,} [a-z]{2,} [a-z]{2,}", text):
                        bad.append(f"{path.name}:{n.lineno}: unmarked prose {text[:60]}")
    assert not bad, "mark these with _(\"... {x} ...\").format(x=...):\n  " + "\n  ".join(bad)


# --- the language ---------------------------------------------------------------------------

@pytest.mark.parametrize("env, folder, want", [
    ({"FEATLAB_LANG": "zh"}, "somewhere", "zh_CN"),
    ({"FEATLAB_LANG": "zh_CN"}, "somewhere", "zh_CN"),
    ({"FEATLAB_LANG": "en"}, "exercises/zh", "en"),                     # the variable wins
    ({"JPY_SESSION_NAME": "/srv/featlab/exercises/zh/01_convolution_math.ipynb"}, "somewhere", "zh_CN"),
    ({"JPY_SESSION_NAME": "zh/solutions/01_convolution_math.ipynb"}, "somewhere", "zh_CN"),
    ({"JPY_SESSION_NAME": "/home/zh/featlab/exercises/01_convolution_math.ipynb"}, "somewhere", "en"),
    ({}, "exercises/zh", "zh_CN"),
    ({}, "exercises/zh/solutions", "zh_CN"),
    ({}, "notebooks/zh", "zh_CN"),
    ({}, "zh/featlab/exercises", "en"),                                   # a zh higher up does not count
    ({}, "exercises", "en"),
])
def test_language_from_variable_notebook_path_or_folder(env, folder, want, tmp_path, monkeypatch):
    for name in ("FEATLAB_LANG", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path / folder)
    assert i18n.language() == want


def test_an_unknown_language_is_an_error(monkeypatch):
    monkeypatch.setenv("FEATLAB_LANG", "fr")
    with pytest.raises(ValueError, match="FEATLAB_LANG='fr'.*zh or en"):
        i18n.language()


# --- the checks in both languages -----------------------------------------------------------

def test_a_wrong_answer_in_chinese_and_in_english(monkeypatch):
    """The same wrong answer fails the same check, with the Chinese or the English message."""
    wrong = lambda *args: 3  # noqa: E731
    want = {"zh": "conv_output_size(size=224, kernel=3, stride=1, padding=1, dilation=1) = 3，但 nn.Conv2d "
                  "给出 224。提示：floor((size + 2p - d(k-1) - 1) / s) + 1。",
            "en": "conv_output_size(size=224, kernel=3, stride=1, padding=1, dilation=1) = 3, but nn.Conv2d "
                  "gives 224. Hint: floor((size + 2p - d(k-1) - 1) / s) + 1."}
    for lang, message in want.items():
        monkeypatch.setenv("FEATLAB_LANG", lang)
        with pytest.raises(ExerciseError) as e:
            checks.check_conv_output_size(wrong)
        assert str(e.value) == message


@pytest.mark.parametrize("name", CHECKS)
def test_every_check_fails_a_wrong_kind_of_answer_in_both_languages(name, monkeypatch):
    said = {}
    for lang in ("zh", "en"):
        monkeypatch.setenv("FEATLAB_LANG", lang)
        with pytest.raises(ExerciseError) as e:
            getattr(checks, name)(lambda *a, **k: "42")
        said[lang] = str(e.value)
    assert CJK.search(said["zh"]) and not CJK.search(said["en"]), said


ZH_EXERCISES = sorted([*(ROOT / "exercises" / "zh").glob("*.ipynb"), *(ROOT / "exercises" / "zh" / "solutions").glob("*.ipynb")])


@pytest.mark.parametrize("path", ZH_EXERCISES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_chinese_introduction_says_how_to_switch_language(path):
    """Written in each catalogue's first cell (locale/zh_CN/exercises/NN_*.po), not in code."""
    intro = nbformat.read(path, 4).cells[0]
    assert intro.cell_type == "markdown" and "`FEATLAB_LANG=en`" in intro.source, (
        f"{path.name}: the introduction (cell 0 of its catalogue) should say that the checks answer in Chinese "
        "here and how to switch (FEATLAB_LANG=en, docs/languages.md)")


def test_the_chinese_exercise_speaks_chinese_in_its_folder(monkeypatch):
    """Exercise 01 of exercises/zh/ in a kernel started in that folder, as Jupyter starts it (no
    FEATLAB_LANG): the skeleton's checks fail in Chinese, the solution's pass with Chinese ✓ lines."""
    monkeypatch.delenv("FEATLAB_LANG", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    folder = ROOT / "exercises" / "zh"
    with kernel(folder) as km:
        for path, solved in [(folder / "01_convolution_math.ipynb", False),
                             (folder / "solutions" / "01_convolution_math.ipynb", True)]:
            nb = nbformat.read(path, 4)
            run_afresh(km, nb, timeout=180, allow_errors=not solved)
            cells = [c for c in nb.cells if c.cell_type == "code" and "check" in c.metadata.get("tags", [])]
            assert cells, path
            for cell in cells:
                if solved:
                    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
                    assert text.startswith("✓ ") and CJK.search(text), text
                else:
                    (error,) = [o for o in cell.outputs if o.output_type == "error"]
                    assert error.ename == "ExerciseError" and CJK.search(error.evalue), error.evalue
