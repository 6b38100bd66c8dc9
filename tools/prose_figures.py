"""Figures quoted in a notebook's prose that no nearby code cell prints.

    python tools/prose_figures.py notebooks/*.ipynb      # one line per unprinted figure; exit 1 if any

A *figure* is a decimal number (``0.862``, ``3.38``, ``28.6°``, ``1.68×``) or a percentage
(``61 %``, ``14.5%``) in a markdown cell, formulas included. Whole numbers are not figures
(layer sizes, counts and strides are too often structural), nor are 0.0 and 1.0 (the ends of a
scale). A figure is *printed* when a code
cell within ``WINDOW`` cells before or after the markdown cell shows it in its text output, or
when any code cell of the notebook has it in its source (a setting the reader sees). Rounding is
allowed, truncation is not: a printed 3.381 may be quoted as 3.38 or 3.4, never as 3.3; a printed
0.612 may be quoted as 61 % or 61.2 %.

tests/test_prose_figures.py runs this over every notebook, so re-executing a notebook whose
numbers move makes the suite fail until the prose follows.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

WINDOW = 10  # cells either side of a markdown cell whose outputs count as "nearby"

# a number with a decimal point, or a whole number followed by a percent sign; not part of a
# version string (2.7.9), an identifier (conv2d_1.5) or a longer number
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w]|\.\d)(\s?%)?")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")


@dataclass(frozen=True)
class Figure:
    cell: int          # index of the markdown cell
    text: str          # as written, e.g. "0.862" or "61 %"
    value: float       # in the unit written (a percentage stays 61.0)
    decimals: int      # digits after the point, as written
    percent: bool
    context: str       # the words around it


def figures_in(markdown: str, cell: int = 0) -> list[Figure]:
    """Every figure quoted in ``markdown`` (see the module docstring for what counts)."""
    text = _LINK_TARGET.sub("]", _HTML_COMMENT.sub("", markdown))
    found = []
    for m in _NUMBER.finditer(text):
        digits, pct = m.group(1), bool(m.group(2))
        if "." not in digits and not pct:
            continue
        if digits in ("0.0", "1.0"):   # the ends of a scale ("1.0: the same ids"), not a measurement
            continue
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        ctx = " ".join(text[max(0, m.start() - 40): m.end() + 20].split())
        found.append(Figure(cell, m.group(0).strip(), float(digits), decimals, pct, ctx))
    return found


def printed_numbers(text: str) -> list[tuple[float, int, bool]]:
    """(value, decimals, is_percent) for every number in ``text`` (signs dropped)."""
    out = []
    for m in re.finditer(r"(\d+(?:\.\d+)?)(?:[eE]([+-]?\d+))?(\s?%)?", text):
        digits, exp, pct = m.group(1), m.group(2), bool(m.group(3))
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        value = float(digits)
        if exp is not None:
            value *= 10.0 ** int(exp)
            decimals = max(0, decimals - int(exp))
        out.append((value, decimals, pct))
    return out


def matches(fig: Figure, printed: list[tuple[float, int, bool]]) -> bool:
    """Does any printed number, correctly rounded to the figure's precision, give the figure?"""
    half = 0.5 * 10.0 ** -fig.decimals + 1e-12
    for value, decimals, pct in printed:
        candidates = []
        if fig.percent:
            if pct:
                candidates.append((value, decimals))
            candidates.append((value * 100, decimals - 2))   # a fraction printed as 0.612
        else:
            candidates.append((value, decimals))
        for v, d in candidates:
            if d >= fig.decimals and abs(v - fig.value) <= half:
                return True
    return False


def _output_text(cell: dict) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append("".join(o.get("text", "")))
        for key in ("text/plain", "text/html", "text/markdown", "text/latex"):
            data = o.get("data", {}).get(key)
            if data:
                parts.append("".join(data))
    return "\n".join(parts)


def unprinted(path: str | Path) -> list[Figure]:
    """The figures of ``path``'s markdown that no nearby output and no code source prints."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    in_code = printed_numbers(source)
    outputs = [printed_numbers(_output_text(c)) if c["cell_type"] == "code" else [] for c in cells]
    missing = []
    for i, c in enumerate(cells):
        if c["cell_type"] != "markdown":
            continue
        nearby = [n for j in range(max(0, i - WINDOW), min(len(cells), i + WINDOW + 1)) for n in outputs[j]]
        missing += [f for f in figures_in("".join(c["source"]), i) if not matches(f, nearby + in_code)]
    return missing


def main(argv: list[str]) -> int:
    bad = 0
    for path in argv:
        for f in unprinted(path):
            bad += 1
            print(f"{path}: markdown cell {f.cell}: {f.text!r} is printed by no cell within "
                  f"{WINDOW} cells: …{f.context}…")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
