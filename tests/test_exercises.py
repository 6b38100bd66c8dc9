"""Every exercise check fails on the unsolved skeleton and passes on the solution.

nbval executes the solutions as part of the suite; here we execute each skeleton and require
that every cell tagged ``check`` fails with ``ExerciseError`` (not with any other error). The
skeletons share one kernel (its namespace reset before each), so torch and featlab are imported
once rather than fifteen times.
"""
from pathlib import Path

import nbformat
import pytest

import featlab.checks
from helpers import kernel, run_afresh

ROOT = Path(__file__).resolve().parents[1]
SKELETONS = sorted((ROOT / "exercises").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "exercises" / "solutions").glob("*.ipynb"))


def check_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "check" in c.metadata.get("tags", [])]


def test_every_skeleton_has_a_solution_and_checks():
    assert SKELETONS, "no exercises found"
    assert [p.name for p in SKELETONS] == [p.name for p in SOLUTIONS]
    for path in SKELETONS:
        assert check_cells(nbformat.read(path, 4)), f"{path.name} has no cell tagged 'check'"


def test_every_check_function_is_used_by_an_exercise():
    used = "".join(p.read_text() for p in SKELETONS)
    checks = [n for n in dir(featlab.checks) if n.startswith("check_")]
    assert checks
    assert [n for n in checks if n not in used] == []


@pytest.fixture(scope="module")
def shared_kernel():
    with kernel(ROOT / "exercises") as km:
        yield km


@pytest.mark.parametrize("path", SKELETONS, ids=lambda p: p.name)
def test_skeleton_fails_every_check(path, shared_kernel):
    nb = nbformat.read(path, 4)
    reset = run_afresh(shared_kernel, nb, timeout=180, allow_errors=True)
    assert not [o for o in reset.outputs if o.output_type == "error"], reset.outputs
    for cell in check_cells(nb):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert errors, f"{path.name}: check passed on the unsolved skeleton:\n{cell.source}"
        assert errors[0].ename == "ExerciseError", (
            f"{path.name}: check failed with {errors[0].ename}: {errors[0].evalue} "
            "(a check must fail with a helpful ExerciseError, not crash)")


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_passes_every_check(path):
    nb = nbformat.read(path, 4)
    for cell in check_cells(nb):
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert "✓" in text and not any(o.output_type == "error" for o in cell.outputs), (
            f"{path.name}: stored output of a check cell is not a pass; re-run `make notebooks`.")
