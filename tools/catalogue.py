"""What the two gettext tools share: tools/translate.py (the notebooks' catalogues) and
tools/messages.py (featlab's check messages). The header of a new catalogue, how close an old
translation must be to be offered as a fuzzy one, keeping translations whose English is gone
(obsolete), and writing a catalogue only when its text changed."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import polib

FUZZY_RATIO = 0.6     # a changed text keeps the most similar old translation, marked fuzzy
HEADER = {"Project-Id-Version": "featlab", "Language": "zh_CN", "MIME-Version": "1.0",
          "Content-Type": "text/plain; charset=UTF-8", "Content-Transfer-Encoding": "8bit"}


def read(path: Path) -> polib.POFile:
    """The catalogue at ``path``, or a new empty one."""
    return polib.pofile(str(path), wrapwidth=100) if path.exists() else new(None)


def new(old: polib.POFile | None) -> polib.POFile:
    """An empty catalogue with ``old``'s header (or the default one)."""
    po = polib.POFile(wrapwidth=100)
    po.metadata = (old.metadata if old is not None else None) or dict(HEADER)
    return po


def offer_fuzzy(entry: polib.POEntry, old: polib.POEntry) -> None:
    """``entry`` gets ``old``'s translation, marked fuzzy, remembering the English it was made for."""
    entry.msgstr = old.msgstr
    entry.flags = [f for f in entry.flags if f != "fuzzy"] + ["fuzzy"]
    entry.previous_msgid = old.previous_msgid if old.fuzzy and old.previous_msgid else old.msgid


def finish(po: polib.POFile, old: polib.POFile, used: Callable[[polib.POEntry], bool], path: Path) -> bool:
    """Append ``old``'s translations that nothing used any more as obsolete, then write ``po`` to
    ``path`` if its text changed; return whether it did."""
    for e in old:
        if e.msgstr and (e.obsolete or not used(e)):
            e.obsolete = True
            po.append(e)
    text = str(po).rstrip("\n") + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True
