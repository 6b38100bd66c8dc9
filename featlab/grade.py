"""Grade a class: run every student's exercise notebooks headless and record each check.

Used by ``featlab grade SUBMISSIONS_DIR`` (docs/grading.md). The exercises and their check cells
(tagged ``check``, each calling ``fl.checks.check_...``) are the ones in ``exercises/``.

Layouts of ``SUBMISSIONS_DIR`` (both may be mixed):

* one folder per student, named by the student id, holding that student's notebooks under the
  exercises' file names: ``alice/01_convolution_math.ipynb``;
* flat files ``STUDENT__FILE``: ``alice__01_convolution_math.ipynb``.

A notebook whose name differs (``01_convolution_math-Copy1.ipynb``) is still found when it is the
only one of the student's notebooks starting with the exercise number ``01_``.

What runs (as nbgrader restores its test cells from the master before autograding): the
student's cells in their order, except that each check cell is replaced by the **reference**
check cell of the exercise, run by the grader's own cell (``grade_kernel.check_cell_source``):
featlab, ``featlab.checks`` and ``ExerciseError`` are imported afresh from the grader's folder
just before the check runs, so whatever earlier cells patched is not used, and the result is
what that cell reports under a per-check nonce, not what the kernel prints. A student's check
cell is found by its source (identical to the reference, blank lines and indentation aside) or
else by the cell that calls the check (``edited``); a check no cell calls is ``deleted``. An
edited check cell is still replaced and run, but is never graded ``pass``. Student code runs
only in the kernel (``featlab/grade_kernel.py``: limits, network guard), never in this process.

Every check gets one row ``{student, exercise, check, status, points, message, seconds}``;
``points`` is the check's worth (the reference cell's metadata ``points``, default 1), earned
only with ``pass``. Status one of ``pass``, ``fail`` (the check raised ``ExerciseError``: the
answer is not right yet, or the check cell was edited and the check fails), ``error`` (any other
exception, e.g. a NameError after a broken import cell, a limit hit while the check ran, an
edited check cell whose reference check passes, or a check that did not report), ``missing``
(no notebook, or the check cell deleted) and ``not-run`` (a limit or a dead kernel stopped the
notebook before the check's cell).
"""
from __future__ import annotations

import ast
import csv
import hashlib
import importlib.util
import io
import re
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .grade_kernel import GUARD_SOURCE, OUTPUT_CHARS, REPORT_MIME, Limits, check_cell_source, execute

__all__ = ["STATUSES", "FIELDS", "REFERENCE_DIR", "Limits", "ReferenceCheck", "GradingTampered", "reference_checks",
           "check_names", "grade_notebook", "grade_folder", "find_submissions", "write_csv", "summary",
           "OUTPUT_CHARS"]

STATUSES = ("pass", "fail", "error", "missing", "not-run")
FIELDS = ("student", "exercise", "check", "status", "points", "message", "seconds")
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "exercises"
MESSAGE_CHARS = 200

_FLAT = re.compile(r"^(?P<student>.+?)__(?P<file>\d+_.+\.ipynb)$")


def _nbformat():
    lacking = [m for m in ("nbformat", "nbclient", "ipykernel") if importlib.util.find_spec(m) is None]
    if lacking:
        raise ImportError(f"grading needs {', '.join(lacking)}: pip install featlab[grade]")
    import nbformat
    return nbformat


def _calls(source: str, name: str) -> bool:
    """Whether ``source`` calls ``name(`` outside comments (``fl.checks.name(`` counts)."""
    call = re.compile(rf"(?<![\w]){re.escape(name)}\s*\(")
    for line in source.splitlines():
        code = line.split("#", 1)[0] if "#" in line else line
        if call.search(code):
            return True
    return False


def _squeeze(source: str) -> str:
    return "\n".join(line.strip() for line in source.splitlines() if line.strip())


def _one_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text)).strip()
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= MESSAGE_CHARS else line[:MESSAGE_CHARS - 1] + "…"


def _snippet(source: str) -> str:
    first = next((line.strip() for line in source.splitlines() if line.strip()), "")
    return first if len(first) <= 40 else first[:39] + "…"


@dataclass(frozen=True)
class ReferenceCheck:
    """One check cell of a reference exercise: the checks it calls, its source, the points each
    check is worth (cell metadata ``points``, default 1) and the title of the section it ends."""

    names: tuple[str, ...]
    source: str
    points: float
    section: str


def _points(cell, reference: Path) -> float:
    value = cell.metadata.get("points", 1)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{reference.name}: check cell {_snippet(cell.source)!r} has metadata "
                         f"points={value!r}; give a number >= 0 (or leave it out for 1).")
    return float(value)


def reference_checks(reference: str | Path) -> list[ReferenceCheck]:
    """The cells tagged ``check`` of a reference exercise, in order (see :class:`ReferenceCheck`)."""
    reference = Path(reference)
    nb = _nbformat().read(str(reference), as_version=4)
    found, seen, section = [], set(), ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heads = re.findall(r"^#{1,6}\s+(.+?)\s*$", cell.source, re.MULTILINE)
            section = heads[-1] if heads else section
        elif cell.cell_type == "code" and "check" in cell.metadata.get("tags", []):
            names = tuple(n for n in dict.fromkeys(re.findall(r"\b(check_\w+)\s*\(", cell.source))
                          if n not in seen)
            if names:
                seen.update(names)
                found.append(ReferenceCheck(names, cell.source, _points(cell, reference), section))
    return found


def _featlab_imports(nb) -> str:
    """The reference's import statements of featlab (``import featlab as fl``), one per line:
    re-run against a fresh featlab before each check."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(n == "featlab" or n.startswith("featlab.") for n in names):
                lines.append(ast.unparse(node))
    return "\n".join(dict.fromkeys(lines))


def check_names(reference: str | Path) -> list[str]:
    """Names of the checks (``check_conv_output_size``, ...) a reference exercise calls, in order."""
    return [name for check in reference_checks(reference) for name in check.names]


def _row(student, exercise, check, status, message="", seconds=None, points=1.0) -> dict:
    return {"student": student, "exercise": exercise, "check": check, "status": status,
            "points": points, "message": _one_line(message),
            "seconds": None if seconds is None else round(seconds, 2)}


def _match(cells, checks: list[ReferenceCheck]) -> list[tuple[int | None, bool]]:
    """For each reference check: (index of the student's cell that stands for it, edited?).
    An identical cell is preferred (the last one), then a cell tagged ``check`` that calls one of
    its checks, then any code cell that does (the last one); None: deleted."""
    out = []
    for check in checks:
        code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
        same = [i for i in code if _squeeze(cells[i].source) == _squeeze(check.source)]
        if same:
            out.append((same[-1], False))
            continue
        hits = [i for i in code if any(_calls(cells[i].source, n) for n in check.names)]
        tagged = [i for i in hits if "check" in cells[i].metadata.get("tags", [])]
        out.append(((tagged or hits or [None])[-1], True))
    return out


def _report(cell, nonce: str) -> dict | None:
    """The grader's report in a check cell's outputs, if exactly one carries ``nonce``."""
    found = [o["data"][REPORT_MIME] for o in cell.get("outputs", [])
             if o.get("output_type") == "display_data" and REPORT_MIME in o.get("data", {})]
    mine = [r for r in found if isinstance(r, dict) and r.get("nonce") == nonce]
    return mine[0] if len(mine) == 1 and len(found) == 1 else None


def grade_notebook(path: str | Path, reference: str | Path, timeout: float | None = None,
                   student: str = "", limits: Limits | None = None) -> list[dict]:
    """Execute one student notebook and grade it against its reference exercise.

    ``path``: the student's notebook; ``reference``: the exercise (``exercises/NN_name.ipynb``)
    whose ``check``-tagged cells define the checks; ``limits``: time, memory, processes and file
    size for the whole notebook (:class:`Limits`; ``timeout`` overrides its time). Returns one
    row per check (keys ``FIELDS``). Never raises because of the submission: an unreadable file,
    a broken cell, an endless loop, a limit hit or a dead kernel become rows."""
    nbformat = _nbformat()
    limits = limits or Limits()
    if timeout is not None:
        limits = Limits(timeout, limits.memory, limits.processes, limits.file_size)
    path, reference = Path(path), Path(reference)
    ref_nb = nbformat.read(str(reference), as_version=4)
    checks = reference_checks(reference)
    if not checks:
        raise ValueError(f"reference exercise {reference} has no code cell tagged 'check'; "
                         "tag its check cells (cell metadata tags: ['check']).")
    exercise, imports = reference.stem, _featlab_imports(ref_nb)

    def rows_of(check: ReferenceCheck, status: str, message: str, seconds=None) -> list[dict]:
        return [_row(student, exercise, n, status, message, seconds, check.points) for n in check.names]

    def every(status: str, message: str) -> list[dict]:
        return [r for check in checks for r in rows_of(check, status, message)]

    try:
        with open(path, encoding="utf-8") as f:
            nb = nbformat.read(f, as_version=4)
        cells = list(nb.cells)
        matched = _match(cells, checks)
    except Exception as e:  # not JSON, not a notebook, unreadable
        return every("error", f"not a valid notebook ({path.name}): {type(e).__name__}: {_one_line(e)}")

    # the notebook that runs: the guard, then the student's cells with each check cell replaced by
    # the grader's cell for the reference check(s) it stands for
    stands_for: dict[int, list[int]] = {}
    for k, (i, _) in enumerate(matched):
        if i is not None:
            stands_for.setdefault(i, []).append(k)
    nonces = [secrets.token_hex(16) for _ in checks]
    run_cells = [nbformat.v4.new_code_cell(GUARD_SOURCE)]
    label = [""]                         # what each run cell is, for messages: "cell 4 (...)"
    where: dict[int, int] = {}           # reference check -> index of its cell in the run
    for i, cell in enumerate(cells):
        if i in stands_for:
            for k in stands_for[i]:
                where[k] = len(run_cells)
                run_cells.append(nbformat.v4.new_code_cell(check_cell_source(nonces[k], checks[k].source,
                                                                             imports)))
                label.append(f"cell {i + 1} ({_snippet(checks[k].source)})")
        else:
            run_cells.append(cell)
            label.append(f"cell {i + 1} ({_snippet(cell.source)})" if cell.cell_type == "code" else "")
    nb.cells = run_cells
    if not where:
        return every("missing", "check cell deleted: no cell calls this check; "
                                "restore the cell from the exercise")
    try:
        run = execute(nb, path.parent, limits)
    except Exception as e:  # kernel would not start, or nbclient failed on a malformed notebook
        return every("error", f"could not run the notebook: {type(e).__name__}: {e}")

    rows = []
    stop_reason, stop_at = run.stop if run.stop else (None, None)
    why = ("" if stop_reason is None else "the kernel died" if stop_reason == "died"
           else f"{limits.describe(stop_reason)} was reached")
    for k, check in enumerate(checks):
        if k not in where:
            rows += rows_of(check, "missing", "check cell deleted: no cell calls this check; "
                                              "restore the cell from the exercise")
            continue
        j, edited = where[k], matched[k][1]
        note = "check cell edited; " if edited else ""
        if j in run.end:
            seconds = run.end[j] - run.start[j]
            got = _report(nb.cells[j], nonces[k])
            if got is None:
                errors = [o for o in nb.cells[j].get("outputs", []) if o.get("output_type") == "error"]
                what = (f"{errors[0].get('ename', 'Error')}: {errors[0].get('evalue', '')}" if errors
                        else "its output was suppressed or forged")
                rows += rows_of(check, "error", f"{note}the check did not report a result ({what})", seconds)
            elif got["status"] == "pass" and edited:
                rows += rows_of(check, "error", "check cell edited: the exercise's check passes in its "
                                                "place, but an edited check cell earns nothing; restore it",
                                seconds)
            elif got["status"] == "pass":
                rows += rows_of(check, "pass", "", seconds)
            elif got["status"] == "fail":
                rows += rows_of(check, "fail", note + _one_line(got.get("message", "")), seconds)
            else:
                rows += rows_of(check, "error", f"{note}{got.get('ename', 'Error')}: "
                                                f"{_one_line(got.get('message', ''))}", seconds)
        elif stop_at == j:
            rows += rows_of(check, "error", f"{note}{why} while this check ran", run.stopped - run.start[j])
        elif run.stop is None:
            rows += rows_of(check, "not-run", f"{note}the cell did not run")
        else:
            at = f" in {label[stop_at]}" if stop_at is not None and label[stop_at] else ""
            rows += rows_of(check, "not-run", f"{note}{why}{at}")
    return rows


def find_submissions(folder: str | Path, exercises: list[str],
                     log: Callable[[str], None] | None = None) -> dict[str, dict[str, Path]]:
    """``{student: {exercise stem: notebook path}}`` in a submissions folder (both layouts, see the
    module docstring). ``exercises``: the reference stems, e.g. ``["01_convolution_math", ...]``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"submissions folder {folder} does not exist or is not a folder; give the "
                         "folder that holds one folder per student (or STUDENT__NN_name.ipynb files).")
    files: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir():
            files.setdefault(entry.name, []).extend(sorted(entry.glob("*.ipynb")))
        elif (m := _FLAT.match(entry.name)) is not None:
            files.setdefault(m["student"], []).append(entry)
        elif log is not None and entry.suffix == ".ipynb":
            log(f"ignored {entry}: not in a student folder and not named STUDENT__NN_name.ipynb")
    found: dict[str, dict[str, Path]] = {}
    for student, paths in files.items():
        mine: dict[str, Path] = {}
        names = {(_FLAT.match(p.name)["file"] if p.parent == folder else p.name): p for p in paths}
        for stem in exercises:
            if stem + ".ipynb" in names:
                mine[stem] = names[stem + ".ipynb"]
                continue
            number = stem.split("_", 1)[0] + "_"
            close = [p for n, p in names.items() if n.startswith(number)]
            if len(close) == 1:
                mine[stem] = close[0]
            elif len(close) > 1 and log is not None:
                log(f"{student}: several notebooks start with {number} and none is {stem}.ipynb; "
                    f"rename one: {', '.join(p.name for p in close)}")
        for p in paths:
            if p not in mine.values() and log is not None:
                log(f"{student}: ignored {p.name} (matches no exercise)")
        found[student] = mine
    return found


class GradingTampered(ValueError):
    """A graded notebook changed the grader's own files (featlab's sources, the reference exercises)."""


def _fingerprint(reference_dir: Path) -> str:
    """Hash of featlab's sources and the reference exercises: what a notebook must not change."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted([*package.rglob("*.py"), *Path(reference_dir).glob("*.ipynb")]):
        digest.update(str(path).encode() + b"\0")
        try:
            digest.update(path.read_bytes())
        except OSError:
            digest.update(b"unreadable")
    return digest.hexdigest()


def grade_folder(folder: str | Path, reference_dir: str | Path | None = None, timeout: float | None = None,
                 workers: int = 1, log: Callable[[str], None] | None = None,
                 limits: Limits | None = None) -> list[dict]:
    """Grade every student of a submissions folder; rows sorted by student, exercise, check order.

    Grades the reference exercises (``reference_dir``, default the course's ``exercises/``) that at
    least one student submitted; a student without that notebook gets ``missing`` rows.
    ``limits``: per notebook (:class:`Limits`; ``timeout`` overrides its time).
    ``workers``: notebooks run at once (each in its own kernel, each within the limits).
    ``log`` receives progress lines. Raises :class:`GradingTampered` (and grades no further) when
    a notebook changed featlab's sources or the reference exercises."""
    limits = limits or Limits()
    if timeout is not None:
        limits = Limits(timeout, limits.memory, limits.processes, limits.file_size)
    reference_dir = Path(reference_dir) if reference_dir is not None else REFERENCE_DIR
    references = {p.stem: p for p in sorted(reference_dir.glob("*.ipynb"))}
    if not references:
        raise ValueError(f"no reference exercises (*.ipynb) in {reference_dir}; pass the course's "
                         "exercises/ folder (--reference).")
    subs = find_submissions(folder, list(references), log)
    if not subs:
        raise ValueError(f"no submissions in {folder}: expected one folder per student "
                         "(alice/01_convolution_math.ipynb) or files alice__01_convolution_math.ipynb.")
    graded = [stem for stem in references if any(stem in mine for mine in subs.values())]
    if not graded:
        raise ValueError(f"no notebook in {folder} matches an exercise of {reference_dir} "
                         f"(names like {next(iter(references))}.ipynb).")
    checks = {stem: reference_checks(references[stem]) for stem in graded}
    jobs = [(s, stem) for s in sorted(subs) for stem in graded]
    lock = threading.Lock()
    before = _fingerprint(reference_dir)

    def one(job):
        student, stem = job
        path = subs[student].get(stem)
        if path is None:
            return [_row(student, stem, name, "missing", f"no notebook submitted ({stem}.ipynb)",
                         points=check.points) for check in checks[stem] for name in check.names]
        t0 = time.monotonic()
        rows = grade_notebook(path, references[stem], student=student, limits=limits)
        if _fingerprint(reference_dir) != before:
            raise GradingTampered(
                f"featlab's or the reference exercises' files changed while {student}/{path.name} was "
                "graded (a notebook can write where the grader can): the grades cannot be trusted; "
                "restore the files (git checkout, reinstall) and grade in a container.")
        if log is not None:
            passed = sum(r["status"] == "pass" for r in rows)
            with lock:
                log(f"{student}/{path.name}: {passed}/{len(rows)} passed ({time.monotonic() - t0:.1f} s)")
        return rows

    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, jobs))
    else:
        results = [one(job) for job in jobs]
    return [row for rows in results for row in rows]


def write_csv(rows: list[dict], path: str | Path) -> None:
    """One line per row, columns ``FIELDS`` (UTF-8)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows({k: ("" if r[k] is None else f"{r[k]:g}" if k == "points" else r[k]) for k in FIELDS}
                         for r in rows)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def summary(rows: list[dict], seconds: float | None = None) -> str:
    """Students × exercises table of "passed/total" ("-": not submitted), then a line of counts."""
    students = sorted({r["student"] for r in rows})
    exercises = sorted({r["exercise"] for r in rows})
    cell: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        cell.setdefault((r["student"], r["exercise"]), []).append(r)

    def text(group: list[dict]) -> str:
        if all(r["status"] == "missing" and r["message"].startswith("no notebook submitted") for r in group):
            return "-"
        return f"{sum(r['status'] == 'pass' for r in group)}/{len(group)}"

    head = ["student"] + [e.split("_", 1)[0] for e in exercises] + ["total"]
    table = [head]
    for s in students:
        mine = [r for r in rows if r["student"] == s]
        table.append([s] + [text(cell.get((s, e), [])) for e in exercises]
                     + [f"{sum(r['status'] == 'pass' for r in mine)}/{len(mine)}"])
    widths = [max(len(line[k]) for line in table) for k in range(len(head))]
    out = io.StringIO()
    for line in table:
        out.write("  ".join(v.ljust(w) if k == 0 else v.rjust(w)
                            for k, (v, w) in enumerate(zip(line, widths))).rstrip() + "\n")
    counts = Counter(r["status"] for r in rows)
    took = f", {seconds:.1f} s" if seconds is not None else ""
    out.write(f"{_n(len(students), 'student')}, {_n(len(exercises), 'exercise')}, {_n(len(rows), 'check')}: "
              + ", ".join(f"{counts[s]} {s}" for s in STATUSES) + took + "\n")
    return out.getvalue()


def write_example(folder: str | Path) -> Path:
    """A small class of exercise 01 in ``folder/submissions`` (for trying ``featlab grade``):
    ``ada`` the solution, ``bob`` the untouched exercise, ``cyd`` task 1 solved, ``tom`` task 1
    solved with the next check cell wrapped in ``try/except``. Returns the submissions folder."""
    nbformat = _nbformat()
    name = "01_convolution_math.ipynb"
    exercise, solution = REFERENCE_DIR / name, REFERENCE_DIR / "solutions" / name
    if not (exercise.exists() and solution.exists()):
        raise ValueError(f"the course's exercise 01 is not here ({exercise}); --example needs a "
                         "checkout of the course (git clone), not an installed featlab.")
    subs = Path(folder) / "submissions"
    if subs.exists():
        raise ValueError(f"{subs} exists already; give --example a new folder.")
    sol = nbformat.read(str(solution), as_version=4)

    def solved_task1():
        nb = nbformat.read(str(exercise), as_version=4)
        code = lambda book, start: next(c for c in book.cells  # noqa: E731
                                        if c.cell_type == "code" and c.source.startswith(start))
        code(nb, "def conv_output_size").source = code(sol, "def conv_output_size").source
        return nb, code

    cyd, _ = solved_task1()
    tom, code = solved_task1()
    cell = code(tom, "fl.checks.check_conv2d_unfold")
    cell.source = "try:\n    " + cell.source + "\nexcept Exception:\n    pass  # edited: never graded pass"
    for student, nb in {"ada": sol, "bob": nbformat.read(str(exercise), as_version=4),
                        "cyd": cyd, "tom": tom}.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, str(subs / student / name))
    return subs
