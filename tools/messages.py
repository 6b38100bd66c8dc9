"""The check messages in Chinese: one gettext catalogue for the messages of featlab/checks.

    python tools/messages.py update    # featlab's _("...") / N_("...") -> featlab/locale/zh_CN/LC_MESSAGES/featlab.po
    python tools/messages.py compile   # featlab.po -> featlab.mo (shipped with the package, read by featlab/i18n.py)
    python tools/messages.py status    # translated / missing / fuzzy / obsolete, and every problem

``update`` finds every message marked in featlab's code (``_("...")`` where it is shown,
``N_("...")`` for a constant made at import time), keeps the translations of unchanged messages,
marks the nearest old translation ``fuzzy`` (with its ``previous_msgid``) when a message's English
changed, and keeps translations whose message is gone as obsolete (``#~``). An entry whose code calls
``.format`` on it carries the flag ``python-brace-format``: its translation must keep every
``{placeholder}`` of the English, spelled the same (with the same ``!r`` or ``:.3g``), in any order.

Translating: fill each empty ``msgstr`` (terms as in docs/glossary.md; code, formulas and numbers
copied as they are; ``{...}`` placeholders kept), revise ``fuzzy`` entries and delete their flag,
then ``compile`` and commit the ``.po`` with the ``.mo``. tests/test_check_messages.py fails when a
message has no translation, a translation loses a placeholder, or the ``.mo`` is older than the ``.po``.
"""
from __future__ import annotations

import ast
import string
import sys
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import catalogue  # noqa: E402
PACKAGE = ROOT / "featlab"
CATALOGUE = PACKAGE / "locale" / "zh_CN" / "LC_MESSAGES" / "featlab.po"
COMPILED = CATALOGUE.with_suffix(".mo")
MARKERS = ("_", "N_")
BRACE = "python-brace-format"


@dataclass
class Message:
    msgid: str
    files: list[str]
    formatted: bool        # the code calls .format(...) on the translation


def extract(package: Path = PACKAGE) -> list[Message]:
    """Every message marked ``_("...")`` or ``N_("...")`` in the package, in order of first use."""
    found: dict[str, Message] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        formatted = {id(n.value) for n in ast.walk(tree)
                     if isinstance(n, ast.Attribute) and n.attr == "format"}
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id in MARKERS]
        for call in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):
            arg = call.args[0] if len(call.args) == 1 and not call.keywords else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                if call.func.id == "_" and arg is not None and not isinstance(arg, (ast.Constant, ast.JoinedStr)):
                    continue            # _(hint): shows a message marked with N_ where it was written
                raise SystemExit(f"{path.relative_to(package.parent)}:{call.lineno}: {call.func.id}() takes one string "
                                 "literal: write _(\"... {x} ...\").format(x=...), not an f-string")
            text = call.args[0].value
            where = path.relative_to(package.parent).as_posix()
            msg = found.setdefault(text, Message(text, [], False))
            if where not in msg.files:
                msg.files.append(where)
            msg.formatted |= id(call) in formatted
    return list(found.values())


def fields(text: str) -> list[str]:
    """The ``{placeholders}`` of a format string, sorted, as written (name, !conversion, :spec)."""
    out = []
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is not None:
            out.append("{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}")
    return sorted(out)


def update(path: Path = CATALOGUE, package: Path = PACKAGE) -> bool:
    """Refresh the catalogue from the code; return True if the file changed."""
    old = catalogue.read(path)
    live = {e.msgid: e for e in old if not e.obsolete}
    po = catalogue.new(old)
    used, pending = set(), []
    for msg in extract(package):
        entry = polib.POEntry(msgid=msg.msgid, msgstr="", occurrences=[(f, "") for f in msg.files],
                              flags=[BRACE] if msg.formatted else [])
        same = live.get(msg.msgid)
        if same is not None:
            entry.msgstr = same.msgstr
            if same.fuzzy:
                entry.flags.append("fuzzy")
                entry.previous_msgid = same.previous_msgid
            used.add(msg.msgid)
        else:
            pending.append(entry)
        po.append(entry)
    for entry in pending:                       # a changed message: the nearest unused old translation, fuzzy
        left = [e for e in live.values() if e.msgstr and e.msgid not in used]
        if not left:
            break
        best = max(left, key=lambda e: SequenceMatcher(None, e.msgid, entry.msgid).ratio())
        if SequenceMatcher(None, best.msgid, entry.msgid).ratio() >= catalogue.FUZZY_RATIO:
            catalogue.offer_fuzzy(entry, best)
            used.add(best.msgid)
    return catalogue.finish(po, old, lambda e: e.msgid in used, path)   # gone messages: obsolete


def problems(path: Path = CATALOGUE, package: Path = PACKAGE) -> list[str]:
    """Why the catalogue does not translate every message of the code ([] = complete and current)."""
    if not path.exists():
        return [f"no catalogue {path} (run: python tools/messages.py update)"]
    po = polib.pofile(str(path))
    entries = {e.msgid: e for e in po if not e.obsolete}
    out = []
    found = extract(package)
    for msg in found:
        e = entries.get(msg.msgid)
        short = msg.msgid if len(msg.msgid) <= 70 else msg.msgid[:67] + "..."
        if e is None:
            out.append(f"{short!r} ({msg.files[0]}): not in the catalogue (run update)")
        elif not e.msgstr.strip():
            out.append(f"{short!r}: untranslated")
        elif e.fuzzy:
            out.append(f"{short!r}: fuzzy (the English changed; revise, then remove the fuzzy flag)")
        elif msg.formatted:
            try:
                have = fields(e.msgstr)
            except ValueError as err:
                out.append(f"{short!r}: the translation is not a valid format string ({err})")
                continue
            if have != fields(msg.msgid):
                out.append(f"{short!r}: the translation has placeholders {have}, the English {fields(msg.msgid)}")
    extracted = {m.msgid for m in found}
    out += [f"{(e.msgid[:67] + '...') if len(e.msgid) > 70 else e.msgid!r}: "
            + ("obsolete entry (delete it)" if e.obsolete else "no such message in the code (run update)")
            for e in po if e.obsolete or e.msgid not in extracted]
    return out


def compiled_table(path: Path) -> dict[str, str]:
    """msgid -> msgstr of a .po (translated, not fuzzy) or of a compiled .mo."""
    cat = polib.mofile(str(path)) if path.suffix == ".mo" else polib.pofile(str(path))
    entries = cat if path.suffix == ".mo" else cat.translated_entries()
    return {e.msgid: e.msgstr for e in entries if e.msgid}


def compile_catalogue(path: Path = CATALOGUE, target: Path = COMPILED) -> None:
    polib.pofile(str(path)).save_as_mofile(str(target))


def main(argv: list[str]) -> int:
    if argv[:1] == ["update"]:
        if update():
            print(f"updated {CATALOGUE.relative_to(ROOT)}")
        return 0
    if argv[:1] == ["compile"]:
        compile_catalogue()
        print(f"wrote {COMPILED.relative_to(ROOT)}")
        return 0
    if argv[:1] == ["status"]:
        po = polib.pofile(str(CATALOGUE))
        print(f"{len(po.translated_entries())} translated, {len(po.untranslated_entries())} missing, "
              f"{len(po.fuzzy_entries())} fuzzy, {len(po.obsolete_entries())} obsolete")
        found = problems()
        if COMPILED.exists() and compiled_table(COMPILED) != compiled_table(CATALOGUE):
            found.append(f"{COMPILED.relative_to(ROOT)} is older than the .po (run compile)")
        for line in found:
            print(f"    {line}")
        return 1 if found else 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
