"""Every exercise notebook is what its master generates.

A master exercises/src/NN_name.py (jupytext percent format, solved code between
`### BEGIN SOLUTION` / `### END SOLUTION`) yields the student copy exercises/NN_name.ipynb and the
solution copy exercises/solutions/NN_name.ipynb through tools/build_exercises.py (`make exercises`).
Compared: each cell's type, source and tags, in order.
"""
from pathlib import Path

import nbformat
import pytest
from helpers import build_exercises, first_difference

ROOT = Path(__file__).resolve().parents[1]

build = build_exercises()
MASTERS = sorted((ROOT / "exercises" / "src").glob("*.py"))
STUDENT_COPIES = sorted((ROOT / "exercises").glob("*.ipynb"))


def check_sources(nb):
    return [c.source for c in nb.cells if c.cell_type == "code" and "check" in c.metadata.get("tags", [])]


def test_every_exercise_has_a_master_and_every_master_an_exercise():
    assert MASTERS, "no masters in exercises/src/"
    exercises, masters = {p.stem for p in STUDENT_COPIES}, {p.stem for p in MASTERS}
    assert sorted(exercises - masters) == [], "exercises without a master exercises/src/NAME.py"
    assert sorted(masters - exercises) == [], "masters not built yet: run `make exercises`"


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.name)
def test_master_has_a_solution_region(master):
    lines = [line.strip() for line in master.read_text(encoding="utf-8").splitlines()]
    assert build.BEGIN in lines and build.END in lines, (
        f"{master.name} has no `{build.BEGIN}` ... `{build.END}` region: the student copy would be "
        "the solution")


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.name)
def test_committed_copies_are_what_the_master_generates(master):
    nb = build.read_master(master)
    name = master.stem + ".ipynb"
    for path, want in ((ROOT / "exercises" / name, build.student(nb)),
                       (ROOT / "exercises" / "solutions" / name, build.solution(nb))):
        if not path.exists():
            pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make exercises`")
        got, want = build.cells(nbformat.read(path, as_version=4)), build.cells(want)
        assert got == want, (f"{path.relative_to(ROOT)} differs from what {master.name} generates, "
                             f"at {first_difference(got, want, ('committed', 'master'))}\nrun `make exercises`")


@pytest.mark.parametrize("master", MASTERS, ids=lambda p: p.name)
def test_every_check_cell_of_the_master_reaches_the_student(master):
    checks = check_sources(build.read_master(master))
    assert checks, f"{master.name} has no cell tagged 'check'"
    student = ROOT / "exercises" / f"{master.stem}.ipynb"
    student_checks = check_sources(nbformat.read(student, as_version=4)) if student.exists() else []
    missing = [c for c in checks if c not in student_checks]
    assert missing == [], f"check cells of {master.name} missing from {student.name} " \
                          "(a check cell must hold no solution region)"
