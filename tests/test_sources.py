"""Every notebook matches its text source, and every text source has a notebook.

Notebooks are written and reviewed as jupytext percent-format text: notebooks/src/NN_name.py is
paired with notebooks/NN_name.ipynb (metadata jupytext.formats = "ipynb,src//py:percent").
`make sync` rebuilds the .ipynb from the text, keeping its outputs. Compared: each cell's type,
source and tags, in order.
"""
from pathlib import Path

import jupytext
import nbformat
import pytest
from helpers import build_exercises, first_difference

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOURCES = sorted((ROOT / "notebooks" / "src").glob("*.py"))
PAIRING = "ipynb,src//py:percent"


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    assert NOTEBOOKS, "no notebooks found"
    notebooks, sources = {p.stem for p in NOTEBOOKS}, {p.stem for p in SOURCES}
    assert sorted(notebooks - sources) == [], "notebooks without notebooks/src/NAME.py: " \
        "create it with `jupytext --set-formats ipynb,src//py:percent notebooks/NAME.ipynb`"
    assert sorted(sources - notebooks) == [], "text sources without a notebook: run `make sync`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_matches_its_source(path):
    src = path.parent / "src" / f"{path.stem}.py"
    if not src.exists():
        pytest.fail(f"{path.name} has no text source {src.relative_to(ROOT)}")
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("jupytext", {}).get("formats") == PAIRING, (
        f"{path.name}: metadata jupytext.formats must be {PAIRING!r} (pairs it with its source)")
    cells = build_exercises().cells
    got, want = cells(nb), cells(jupytext.read(src))
    assert got == want, (f"{path.name} differs from {src.relative_to(ROOT)} at "
                         f"{first_difference(got, want)}\nrun `make sync` (text -> notebook)")


DRAWS = ("plt.subplots(", "plt.figure(", "plt.show(", "plt.imshow(", "fl.plot.",  # at the top level of a cell
         "fl.widgets.")


def draws(source: str) -> bool:
    """Does the cell make a figure when run (not only define a function that would)?"""
    return any(not line[:1].isspace() and any(d in line for d in DRAWS) for line in source.splitlines())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_drawing_cell_stores_its_picture(path):
    """A notebook executed with MPLBACKEND=agg stores no figures (plt.show does nothing there):
    every code cell that draws must keep a picture among its stored outputs."""
    nb = nbformat.read(path, 4)
    blank = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and draws(c.source)
             and not any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]
    assert not blank, (f"code cells {blank} draw but store no picture: re-execute without "
                       "MPLBACKEND=agg (make notebooks)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_stored_widget_has_a_static_picture(path):
    """Where no kernel runs (GitHub, nbviewer, the handouts) a widget shows its static fallback:
    the picture of its first state and a line saying it is interactive, not "VBox(...)"."""
    from featlab.widgets import STATIC_NOTE
    nb = nbformat.read(path, 4)
    widgets = [(i, o.get("data", {})) for i, c in enumerate(nb.cells) if c.cell_type == "code"
               for o in c.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    bare = [i for i, data in widgets if "image/png" not in data or STATIC_NOTE not in data["text/plain"]]
    assert not bare, (f"cells {bare} store a widget without its picture and note: re-execute the "
                      "notebook (make notebooks)")
