"""The prose never drifts from the printout: every figure quoted in a notebook's markdown is
printed by a nearby code cell (tools/prose_figures.py says exactly what counts)."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "exercises" / "solutions").glob("*.ipynb"))

_spec = importlib.util.spec_from_file_location("prose_figures", ROOT / "tools" / "prose_figures.py")
pf = importlib.util.module_from_spec(_spec)
sys.modules["prose_figures"] = pf  # dataclasses look their module up there
_spec.loader.exec_module(pf)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_quoted_figure_is_printed_nearby(path):
    missing = pf.unprinted(path)
    assert not missing, f"{path.name}: figures quoted in the prose that no nearby cell prints:\n" + "\n".join(
        f"  markdown cell {f.cell}: {f.text!r} in …{f.context}…" for f in missing)


def _printed(text):
    return pf.printed_numbers(text)


@pytest.mark.parametrize("quoted, printed, ok", [
    ("3.38 nats", "floor 3.381", True),
    ("3.4 nats", "floor 3.381", True),
    ("3.3 nats", "floor 3.381", False),        # truncated, not rounded (the 08 drift)
    ("0.0076 at 90°", "90: 0.0077", False),
    ("0.0222–0.0224", "min 0.0221 max 0.0224", False),
    ("about 61 %", "0.612", True),
    ("about 60 %", "0.583", False),
    ("61.2 %", "61.2%", True),
    ("a cosine of 0.999", "0.99599", False),
    ("1.68× faster", "ratio 1.683", True),
    ("0.862", "0.86", False),                  # the printout has fewer digits than the prose
    ("version 2.7.9 and layer 32", "", True),  # not figures
])
def test_matcher(quoted, printed, ok):
    figs = pf.figures_in(quoted)
    found = all(pf.matches(f, _printed(printed)) for f in figs)
    assert found is ok, (quoted, printed, figs)


def test_a_drifted_notebook_is_caught(tmp_path):
    nb = {"cells": [
        {"cell_type": "code", "source": ["print(loss)"], "metadata": {}, "outputs": [
            {"output_type": "stream", "name": "stdout", "text": ["final loss 3.381\n"]}]},
        {"cell_type": "markdown", "source": ["The loss stops at 3.3 nats."], "metadata": {}},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "drift.ipynb"
    path.write_text(json.dumps(nb))
    assert [f.text for f in pf.unprinted(path)] == ["3.3"]
    nb["cells"][1]["source"] = ["The loss stops at 3.38 nats."]
    path.write_text(json.dumps(nb))
    assert pf.unprinted(path) == []
