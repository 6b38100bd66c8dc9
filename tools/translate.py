"""The Chinese edition from one source: gettext catalogues beside the English.

    python tools/translate.py update   # English cells -> locale/zh_CN/**/*.po (new: untranslated; changed: fuzzy)
    python tools/translate.py build    # complete catalogues -> notebooks/zh/, exercises/zh/ (+ solutions/)
    python tools/translate.py status   # per catalogue: translated / missing / fuzzy / obsolete

One catalogue per English source, ``locale/zh_CN/notebooks/NN_name.po`` (source
``notebooks/NN_name.ipynb``) and ``locale/zh_CN/exercises/NN_name.po`` (source the master
``exercises/src/NN_name.py``). Each markdown cell is one entry: ``msgctxt`` = ``cell <index>``
(its position among all cells, so two identical cells stay distinct), ``msgid`` = the English
text, ``msgstr`` = the Chinese. Code is never translated, its comments are: each comment block (lines
that hold only a comment, one after another, at one indentation) and each comment after code is one
entry with ``msgctxt`` = ``comment`` and the English comment as ``msgid`` (``#`` and indentation
left out, lines joined with newlines); the same comment anywhere in a source is translated once.
The Chinese of a block may have any number of lines. Markers (``# NBVAL_…``, ``# noqa``,
``# %%``) and comments without a letter stay as they are.

``update`` keeps a translation whose English is unchanged, reuses it when the same English moved
to another position, marks it ``fuzzy`` (with the ``previous_msgid``) when the English of its cell
changed, and keeps translations whose English disappeared as obsolete (``#~``) for the translator.

``build`` writes a Chinese notebook only from a *complete* catalogue (every entry translated, none
fuzzy, none obsolete, every msgid equal to the English cell, every figure, formula and inline code
of the English present in the Chinese); it copies everything else, code, outputs, ids, metadata,
from the built English notebook, so the Chinese edition costs no execution. For an incomplete
catalogue it says which cells are missing and writes nothing. Links in the Chinese text are
written as in the English source (relative to its folder) and re-pointed for the deeper zh
folder, to the Chinese twin where one is built. tests/test_translations.py checks the result.

Translating: run ``update``, fill the empty ``msgstr`` of a catalogue in any PO editor (Poedit,
Weblate, a text editor), terms as in docs/glossary.md, formulas, numbers and `code` copied as they
are; for a ``fuzzy`` entry compare ``#| msgid`` (the English it translated) with the new
``msgid``, revise, and delete the ``fuzzy`` flag; delete obsolete ``#~`` entries once reused.
Then ``build`` and commit the catalogue with the notebooks it built.
"""
from __future__ import annotations

import copy
import io
import os
import re
import sys
import tokenize
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

import jupytext
import nbformat
import polib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import catalogue  # noqa: E402
from prose_figures import figures_in  # noqa: E402

LOCALE = ROOT / "locale" / "zh_CN"
SOLUTION_TITLE = "（参考答案）"   # the English solution copies add " (solution)" to the title

_FORMULA = re.compile(r"\$\$.+?\$\$|\$(?:[^$\n]|\n(?!\s*\n))+?\$", re.S)   # $…$ may wrap inside a paragraph
_CODE = re.compile(r"`(?:[^`\n]|\n(?!\s*\n))+`")               # `code` may wrap too
_LINK = re.compile(r"(\]\()([^)\s]+)(\))")
COMMENT = "comment"                   # msgctxt of every comment entry
_MARKER = re.compile(r"#\s*(NBVAL_\w+|noqa\b|type:|fmt:|pragma\b|%%|!)")


@dataclass(frozen=True)
class Comment:
    """One translatable comment of a code cell: lines [first, last] (0-based), from column ``col``."""
    first: int
    last: int
    col: int
    text: str            # the English without "#" and indentation, lines joined with "\n"
    inline: bool         # after code on its line


def comments(code: str) -> list[Comment]:
    """The translatable comments of one code cell, in order (magics and shell lines are skipped)."""
    lines = code.split("\n")
    plain = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in lines)
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(plain).readline)
                  if t.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []
    out: list[Comment] = []
    for t in tokens:
        row, col = t.start[0] - 1, t.start[1]
        if _MARKER.match(t.string) or not re.search(r"[^\W\d_]", t.string):
            continue
        body = re.sub(r"^#+ ?", "", t.string).rstrip()
        inline = bool(lines[row][:col].strip())
        last = out[-1] if out else None
        if (not inline and last is not None and not last.inline and last.last == row - 1
                and last.col == col):
            out[-1] = Comment(last.first, row, col, f"{last.text}\n{body}", False)
        else:
            out.append(Comment(row, row, col, body, inline))
    return out


def translate_comments(code: str, zh: dict[str, str]) -> str:
    """``code`` with each comment that ``zh`` translates replaced by its Chinese."""
    lines = code.split("\n")
    for c in reversed(comments(code)):
        if c.text not in zh:
            continue
        new = [f"# {ln}".rstrip() if ln.strip() else "#" for ln in zh[c.text].split("\n")]
        if c.inline:
            lines[c.first] = lines[c.first][:c.col] + "# " + " ".join(ln.strip() for ln in zh[c.text].split("\n"))
        else:
            pad = lines[c.first][:c.col]
            lines[c.first:c.last + 1] = [pad + ln for ln in new]
    return "\n".join(lines)


def without_comments(code: str) -> str:
    """The program of a code cell: its translatable comments removed, comment-only lines dropped."""
    lines = code.split("\n")
    for c in reversed(comments(code)):
        if c.inline:
            lines[c.first] = lines[c.first][:c.col].rstrip()
        else:
            del lines[c.first:c.last + 1]
    return "\n".join(lines)


@dataclass(frozen=True)
class Source:
    """One English source and the notebooks built from it, English path -> Chinese path."""
    kind: str            # "notebooks" or "exercises"
    stem: str            # NN_name
    path: Path           # the English text whose markdown cells are the msgids

    @property
    def catalogue(self) -> Path:
        return LOCALE / self.kind / f"{self.stem}.po"

    @property
    def home(self) -> Path:
        """The folder the English source's links are relative to."""
        return ROOT / self.kind

    def targets(self) -> list[tuple[Path, Path, bool]]:
        """[(built English notebook, Chinese notebook, is a solution copy)]."""
        name = f"{self.stem}.ipynb"
        if self.kind == "notebooks":
            return [(ROOT / "notebooks" / name, ROOT / "notebooks" / "zh" / name, False)]
        return [(ROOT / "exercises" / name, ROOT / "exercises" / "zh" / name, False),
                (ROOT / "exercises" / "solutions" / name,
                 ROOT / "exercises" / "zh" / "solutions" / name, True)]

    def cells(self):
        """The English cells, as the built notebooks have them (same count, same order)."""
        if self.path.suffix == ".py":
            return jupytext.read(self.path).cells
        return nbformat.read(self.path, as_version=4).cells

    def markdown(self) -> list[tuple[str, str]]:
        """[(msgctxt, English text)] of the markdown cells."""
        return [(f"cell {i}", c.source) for i, c in enumerate(self.cells())
                if c.cell_type == "markdown" and c.source.strip()]

    def comments(self) -> list[str]:
        """The English comments of the code cells of every notebook built from this source, once each."""
        seen: dict[str, None] = {}
        for english, _, _ in self.targets():
            cells = nbformat.read(english, as_version=4).cells if english.exists() else self.cells()
            for c in cells:
                if c.cell_type == "code":
                    seen.update((k.text, None) for k in comments(c.source))
        return list(seen)


def sources() -> list[Source]:
    found = [Source("notebooks", p.stem, p) for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    found += [Source("exercises", p.stem, p) for p in sorted((ROOT / "exercises" / "src").glob("[0-9][0-9]_*.py"))]
    return found


def source_for(zh_notebook: Path) -> Source | None:
    """The source a Chinese notebook is built from, or None if there is none."""
    for src in sources():
        if any(zh == zh_notebook.resolve() for _, zh, _ in src.targets()):
            return src
    return None


# ---------------------------------------------------------------- update
def update(src: Source) -> bool:
    """Refresh one catalogue from its English; return True if the file changed."""
    path = src.catalogue
    old = catalogue.read(path)
    live = [e for e in old if not e.obsolete]
    by_ctxt = {e.msgctxt: e for e in live}
    by_msgid = {}
    for e in live:
        if e.msgstr and not e.fuzzy and e.msgctxt != COMMENT:
            by_msgid.setdefault(e.msgid, e)
    used = set()
    po = catalogue.new(old)
    pending = []
    for ctxt, text in src.markdown():                               # 1: the same English
        entry = polib.POEntry(msgctxt=ctxt, msgid=text, msgstr="")
        same = by_ctxt.get(ctxt)
        if same is not None and same.msgid == text and id(same) not in used:   # unchanged
            entry.msgstr, entry.flags = same.msgstr, list(same.flags)
            entry.previous_msgid = same.previous_msgid
            used.add(id(same))
        elif text in by_msgid and id(by_msgid[text]) not in used:   # moved to another position
            entry.msgstr = by_msgid[text].msgstr
            used.add(id(by_msgid[text]))
        else:
            pending.append(entry)
        po.append(entry)
    old_comments = {e.msgid: e for e in live if e.msgctxt == COMMENT}
    for text in src.comments():                                     # the comments: keyed by their English
        entry = polib.POEntry(msgctxt=COMMENT, msgid=text, msgstr="")
        same = old_comments.get(text)
        if same is not None and id(same) not in used:
            entry.msgstr, entry.flags = same.msgstr, list(same.flags)
            entry.previous_msgid = same.previous_msgid
            used.add(id(same))
        else:
            pending.append(entry)
        po.append(entry)
    for entry in pending:                                           # 2: the English of a cell changed
        left = [e for e in live if e.msgstr and id(e) not in used
                and (e.msgctxt == COMMENT) == (entry.msgctxt == COMMENT)]
        same = [e for e in left if e.msgctxt == entry.msgctxt and entry.msgctxt != COMMENT]
        close = sorted(left, key=lambda e: -SequenceMatcher(None, e.msgid, entry.msgid).ratio())
        if not same and close and SequenceMatcher(None, close[0].msgid, entry.msgid).ratio() >= catalogue.FUZZY_RATIO:
            same = close[:1]
        if same:
            catalogue.offer_fuzzy(entry, same[0])
            used.add(id(same[0]))
    return catalogue.finish(po, old, lambda e: id(e) in used, path)   # lost their cell: obsolete


# ---------------------------------------------------------------- checks
def missing_pieces(english: str, chinese: str) -> list[str]:
    """Figures, formulas and inline code of the English that the Chinese lacks."""
    out = []
    have = {(f.value, f.percent) for f in figures_in(chinese)}
    for f in figures_in(english):
        if (f.value, f.percent) not in have:
            out.append(f"figure {f.text}")
    flat = " ".join(chinese.split())                               # a wrapped piece may be rejoined
    for pattern, what in ((_FORMULA, "formula"), (_CODE, "code")):
        for piece in pattern.findall(english):
            if " ".join(piece.split()) not in flat:
                out.append(f"{what} {piece}")
    return out


def problems(src: Source) -> list[str]:
    """Why the catalogue of ``src`` cannot build a Chinese edition ([] = complete and current)."""
    if not src.catalogue.exists():
        return [f"no catalogue {src.catalogue.relative_to(ROOT)} (run: python tools/translate.py update)"]
    po = polib.pofile(str(src.catalogue))
    english = dict(src.markdown())
    english_comments = src.comments()
    out = []
    entries = {}
    for e in po:
        comment = e.msgctxt == COMMENT
        where = f"comment {e.msgid.splitlines()[0][:40]!r}" if comment else e.msgctxt or "?"
        if e.obsolete:
            out.append(f"{where}: obsolete entry (its English is gone; delete it)")
            continue
        if comment:                               # keyed by its English: current when present
            entries[(COMMENT, e.msgid)] = e
            if e.msgid not in english_comments:
                out.append(f"{where}: no such English comment (run update)")
        else:
            entries[e.msgctxt] = e
            if e.msgctxt not in english:
                out.append(f"{where}: no such English markdown cell (run update)")
            elif e.msgid != english[e.msgctxt]:
                out.append(f"{where}: translates an older English text (run update, then revise it)")
        if not e.msgstr.strip():
            out.append(f"{where}: untranslated")
        elif e.fuzzy:
            out.append(f"{where}: fuzzy (the English changed; revise, then remove the fuzzy flag)")
        else:
            out += [f"{where}: {piece} of the English is missing" for piece in missing_pieces(e.msgid, e.msgstr)]
    out += [f"{ctxt}: English cell not in the catalogue (run update)" for ctxt in english if ctxt not in entries]
    out += [f"comment {text.splitlines()[0][:40]!r}: not in the catalogue (run update)"
            for text in english_comments if (COMMENT, text) not in entries]
    return out


# ---------------------------------------------------------------- build
def _relink(text: str, home: Path, here: Path, complete: set[Path]) -> str:
    """Re-point relative links written from ``home`` for a notebook in folder ``here``."""
    def fix(m):
        target = m.group(2)
        if re.match(r"^[a-z]+:|^#|^/", target):
            return m.group(0)
        path, hash_, anchor = target.partition("#")
        absolute = (home / path).resolve()
        twin = _zh_twin(absolute)
        if twin is not None and twin in complete:
            absolute = twin
        rel = Path(_relpath(absolute, here)).as_posix()
        return f"{m.group(1)}{rel}{hash_}{anchor}{m.group(3)}"
    return _LINK.sub(fix, text)


def _relpath(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


def _zh_twin(path: Path) -> Path | None:
    for kind in ("notebooks", "exercises"):
        base = ROOT / kind
        if path.parent == base:
            return base / "zh" / path.name
        if kind == "exercises" and path.parent == base / "solutions":
            return base / "zh" / "solutions" / path.name
    return None


_CJK = "\u3000-\u303f\u3400-\u9fff\uff00-\uffef"
_SOFT_BREAK = re.compile(f"(?<=[{_CJK}])\n(?=[{_CJK}])")


def join_cjk_lines(text: str) -> str:
    """Remove a line break between two Chinese characters: Markdown would show it as a space."""
    return _SOFT_BREAK.sub("", text)


def chinese_notebook(src: Source, english_path: Path, zh_path: Path, solution: bool,
                     complete: set[Path]) -> nbformat.NotebookNode:
    """The Chinese twin of one built English notebook (catalogue assumed complete)."""
    po = polib.pofile(str(src.catalogue))
    zh = {e.msgctxt: e.msgstr for e in po if not e.obsolete and e.msgctxt != COMMENT}
    zh_comments = {e.msgid: e.msgstr for e in po if not e.obsolete and e.msgctxt == COMMENT}
    nb = nbformat.read(english_path, as_version=4)
    n_src = len(src.cells())
    if len(nb.cells) != n_src:
        raise SystemExit(f"{english_path.relative_to(ROOT)} has {len(nb.cells)} cells, its source "
                         f"{src.path.relative_to(ROOT)} {n_src}: rebuild the English first (make sync)")
    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        if cell.cell_type == "markdown" and f"cell {i}" in zh:
            text = _relink(join_cjk_lines(zh[f"cell {i}"]), src.home, zh_path.parent, complete)
            if solution and i == 0 and text.startswith("# "):
                title, sep, rest = text.partition("\n")
                text = f"{title}{SOLUTION_TITLE}{sep}{rest}"
            cell.source = text
        elif cell.cell_type == "code" and zh_comments:
            cell.source = translate_comments(cell.source, zh_comments)
    return out


def build(verbose: bool = True) -> list[Path]:
    """Write every Chinese notebook whose catalogue is complete; return the paths written or kept."""
    srcs = [s for s in sources() if s.catalogue.exists()]
    ready = {s: problems(s) for s in srcs}
    complete = {zh for s, p in ready.items() if not p for _, zh, _ in s.targets()}
    done, waiting = [], []
    for src, why in ready.items():
        if why:
            if not any(e.msgstr for e in polib.pofile(str(src.catalogue))):
                waiting.append(src.catalogue.relative_to(ROOT).as_posix())
            elif verbose:
                print(f"not built: {src.catalogue.relative_to(ROOT)} ({len(why)} problems)", file=sys.stderr)
                for line in why:
                    print(f"    {line}", file=sys.stderr)
            continue
        for english, zh_path, solution in src.targets():
            nb = chinese_notebook(src, english, zh_path, solution, complete)
            text = nbformat.writes(nb).rstrip("\n") + "\n"
            zh_path.parent.mkdir(parents=True, exist_ok=True)
            if not zh_path.exists() or zh_path.read_text(encoding="utf-8") != text:
                zh_path.write_text(text, encoding="utf-8")
            done.append(zh_path)
    if verbose and waiting:
        print(f"not built, not translated yet: {len(waiting)} catalogues ({waiting[0]} ...)", file=sys.stderr)
    return done


def status() -> None:
    for src in sources():
        if not src.catalogue.exists():
            print(f"{src.kind}/{src.stem}: no catalogue")
            continue
        po = polib.pofile(str(src.catalogue))
        print(f"{src.kind}/{src.stem}: {len(po.translated_entries())} translated, "
              f"{len(po.untranslated_entries())} missing, {len(po.fuzzy_entries())} fuzzy, "
              f"{len(po.obsolete_entries())} obsolete")


def main(argv: list[str]) -> int:
    if argv[:1] == ["update"]:
        kinds = argv[1:] or ["notebooks", "exercises"]
        for src in sources():
            if src.kind in kinds and update(src):
                print(f"updated {src.catalogue.relative_to(ROOT)}")
        return 0
    if argv[:1] == ["build"]:
        build()
        return 0
    if argv[:1] == ["status"]:
        status()
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
