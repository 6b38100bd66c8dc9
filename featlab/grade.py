"""Grade a class: run every student's exercise notebooks headless and record each check.

Used by ``featlab grade SUBMISSIONS_DIR`` (README, "Grading a class"). The exercises and their
check cells (tagged ``check``, each calling ``fl.checks.check_...``) are the ones in ``exercises/``.

Layouts of ``SUBMISSIONS_DIR`` (both may be mixed):

* one folder per student, named by the student id, holding that student's notebooks under the
  exercises' file names: ``alice/01_convolution_math.ipynb``;
* flat files ``STUDENT__FILE``: ``alice__01_convolution_math.ipynb``.

A notebook whose name differs (``01_convolution_math-Copy1.ipynb``) is still found when it is the
only one of the student's notebooks starting with the exercise number ``01_``.

Each notebook runs in its own fresh kernel (this Python environment), in the notebook's folder,
with ``allow_errors`` so that every check cell runs, and within one time limit for the whole
notebook; on timeout the kernel is killed. Each cell keeps at most ``OUTPUT_CHARS`` characters
of output (an endless print loop cannot fill the grader's memory). Student code runs only in that kernel, never in the
grading process. A first injected cell makes Python's sockets refuse connections to anything but
loopback: a guard against accidental downloads of weights or data, not a sandbox (code that
wants to can undo it, and the kernel can read and write the machine's files).

Every check gets one row ``{student, exercise, check, status, message, seconds}``, status one of
``pass``, ``fail`` (the check raised ``ExerciseError``: the answer is not right yet), ``error``
(any other exception, e.g. a NameError after a broken import cell, or the time limit hit while
the check ran), ``missing`` (no notebook, or no cell calls the check any more) and ``not-run``
(the time limit or a dead kernel stopped the notebook before the check's cell).
"""
from __future__ import annotations

import asyncio
import csv
import importlib.util
import io
import math
import re
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

__all__ = ["STATUSES", "FIELDS", "REFERENCE_DIR", "check_names", "grade_notebook", "grade_folder",
           "find_submissions", "write_csv", "summary"]

STATUSES = ("pass", "fail", "error", "missing", "not-run")
FIELDS = ("student", "exercise", "check", "status", "message", "seconds")
REFERENCE_DIR = Path(__file__).resolve().parents[1] / "exercises"
MESSAGE_CHARS = 200
OUTPUT_CHARS = 100_000  # printed output kept per cell; the rest is dropped (an endless print loop)

_FLAT = re.compile(r"^(?P<student>.+?)__(?P<file>\d+_.+\.ipynb)$")

# Runs first in every student kernel. Patches socket connect / connect_ex / getaddrinfo so that
# only loopback (and Unix sockets) can be reached; the kernel's own channels are ZeroMQ, untouched.
GUARD_SOURCE = '''\
def _featlab_grade_no_network():
    """featlab grade: no network while grading (a guard against downloads, not a sandbox)."""
    import errno, ipaddress, socket

    def local(host):
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        if host is None or host in ("", "localhost"):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def refused(what):
        return ConnectionRefusedError(errno.ECONNREFUSED, "featlab grade: no network while grading; "
                                      f"refused to connect to {what!r}")

    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def guarded_connect(self, address):
        if isinstance(address, tuple) and not local(address[0]):
            raise refused(address)
        return connect(self, address)

    def guarded_connect_ex(self, address):
        if isinstance(address, tuple) and not local(address[0]):
            return errno.ECONNREFUSED
        return connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not local(host):
            raise refused(host)
        return getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex
    socket.getaddrinfo = guarded_getaddrinfo

_featlab_grade_no_network()
del _featlab_grade_no_network
'''


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


def _check_cells(nb) -> list[tuple[str, str]]:
    """``(check name, cell source)`` of a reference notebook's cells tagged ``check``."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "check" in cell.metadata.get("tags", []):
            for name in re.findall(r"\b(check_\w+)\s*\(", cell.source):
                if name not in (n for n, _ in found):
                    found.append((name, cell.source))
    return found


def check_names(reference: str | Path) -> list[str]:
    """Names of the checks (``check_conv_output_size``, ...) a reference exercise calls, in order."""
    nb = _nbformat().read(str(reference), as_version=4)
    return [name for name, _ in _check_cells(nb)]


def _row(student, exercise, check, status, message="", seconds=None) -> dict:
    return {"student": student, "exercise": exercise, "check": check, "status": status,
            "message": _one_line(message), "seconds": None if seconds is None else round(seconds, 2)}


class _Run:
    """What happened while one notebook executed: per cell index start/end times and why it
    stopped early (``stop`` = (reason, cell index) or None)."""

    def __init__(self) -> None:
        self.start: dict[int, float] = {}
        self.end: dict[int, float] = {}
        self.stop: tuple[str, int | None] | None = None
        self.stopped = 0.0


def _execute(nb, cwd: Path, timeout: float) -> _Run:
    """Run ``nb`` (modified in place: outputs) in a fresh kernel of this environment."""
    import ipykernel.kernelspec
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from traitlets import default

    class _HereSpecs(KernelSpecManager):
        """'python3' is always this interpreter, whatever kernels the machine has installed."""

        def get_kernel_spec(self, kernel_name):
            return self.kernel_spec_class(resource_dir=ipykernel.kernelspec.RESOURCES,
                                          **ipykernel.kernelspec.get_kernel_dict())

    class _HereKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _here(self):
            return _HereSpecs()

    class _Capped(NotebookClient):
        """Keeps at most OUTPUT_CHARS of printed/displayed output per cell, so a print loop cannot
        fill the grader's memory before the time limit; errors always come through."""
        sizes: dict[int, int] = {}  # characters per cell index; a new class for every run

        def output(self, outs, msg, display_id, cell_index):
            if msg["msg_type"] != "error":
                used = self.sizes.get(cell_index, 0)
                if used >= OUTPUT_CHARS:
                    return None
                self.sizes[cell_index] = used + len(str(msg["content"]))
                text = msg["content"].get("text") if msg["msg_type"] == "stream" else None
                if text is not None and used + len(text) > OUTPUT_CHARS:
                    msg["content"]["text"] = (text[:OUTPUT_CHARS - used]
                                              + f"\n[featlab grade: output beyond {OUTPUT_CHARS:,} characters dropped]\n")
            return super().output(outs, msg, display_id, cell_index)

    run = _Run()
    deadline: list[float] = []

    def remaining(cell) -> int:
        if not deadline:  # the limit counts from the first cell, not from the kernel's start-up
            deadline.append(time.monotonic() + timeout)
        return max(1, math.ceil(deadline[0] - time.monotonic()))

    def started(cell, cell_index, **_):
        run.start[cell_index] = time.monotonic()

    def finished(cell, cell_index, **_):
        run.end[cell_index] = time.monotonic()

    client = _Capped(nb, kernel_name="python3", kernel_manager_class=_HereKernelManager,
                     timeout_func=remaining, allow_errors=True, shutdown_kernel="immediate",
                     on_cell_execute=started, on_cell_executed=finished,
                     resources={"metadata": {"path": str(cwd)}})
    # the kernel's own stderr (start-up warnings) is dropped; cell output comes by messages
    job = client.async_execute(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _run_coroutine(job)
    except CellTimeoutError:
        run.stop, run.stopped = ("timeout", _running(run)), time.monotonic()
    except DeadKernelError:
        run.stop, run.stopped = ("died", _running(run)), time.monotonic()
    return run


def _run_coroutine(coro) -> None:
    """``asyncio.run`` (a fresh loop that cancels nbclient's leftover tasks on exit), in a helper
    thread when this thread already runs a loop (grading from inside a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def _running(run: _Run) -> int | None:
    """Index of the cell that had started but not finished, if any."""
    open_cells = [i for i in run.start if i not in run.end]
    return max(open_cells) if open_cells else None


def grade_notebook(path: str | Path, reference: str | Path, timeout: float = 120,
                   student: str = "") -> list[dict]:
    """Execute one student notebook and grade it against its reference exercise.

    ``path``: the student's notebook; ``reference``: the exercise (``exercises/NN_name.ipynb``)
    whose ``check``-tagged cells define the checks; ``timeout``: seconds for the whole notebook.
    Returns one row per check (keys ``FIELDS``). Never raises because of the submission: an
    unreadable file, a broken cell, an endless loop or a dead kernel become rows."""
    nbformat = _nbformat()
    path, reference = Path(path), Path(reference)
    ref_cells = _check_cells(nbformat.read(str(reference), as_version=4))
    if not ref_cells:
        raise ValueError(f"reference exercise {reference} has no code cell tagged 'check'; "
                         "tag its check cells (cell metadata tags: ['check']).")
    exercise = reference.stem

    def every(status: str, message: str) -> list[dict]:
        return [_row(student, exercise, name, status, message) for name, _ in ref_cells]

    try:
        with open(path, encoding="utf-8") as f:
            nb = nbformat.read(f, as_version=4)
        cells = list(nb.cells)
        # the cell calling each check: prefer tagged cells, then any code cell; the last one wins
        where: dict[str, int | None] = {}
        for name, _ in ref_cells:
            hits = [i for i, c in enumerate(cells) if c.cell_type == "code" and _calls(c.source, name)]
            tagged = [i for i in hits if "check" in cells[i].metadata.get("tags", [])]
            where[name] = (tagged or hits or [None])[-1]
    except Exception as e:  # not JSON, not a notebook, unreadable
        return every("error", f"not a valid notebook ({path.name}): {type(e).__name__}: {_one_line(e)}")
    if all(i is None for i in where.values()):
        return every("missing", "no cell calls this check (deleted or edited)")

    try:
        guard = nbformat.v4.new_code_cell(GUARD_SOURCE)
        nb.cells = [guard] + cells  # indices shift by one while running
        run = _execute(nb, path.parent, timeout)
    except Exception as e:  # kernel would not start, or nbclient failed on a malformed notebook
        return every("error", f"could not run the notebook: {type(e).__name__}: {e}")

    rows = []
    stop_reason, stop_at = run.stop if run.stop else (None, None)
    why = (f"the notebook's time limit ({timeout:g} s) was reached" if stop_reason == "timeout"
           else "the kernel died")
    for name, ref_source in ref_cells:
        if where[name] is None:
            rows.append(_row(student, exercise, name, "missing",
                             "no cell calls this check (deleted or edited)"))
            continue
        j = where[name] + 1  # index in the executed notebook (after the guard cell)
        cell = nb.cells[j]
        note = "check cell edited; " if _squeeze(cell.source) != _squeeze(ref_source) else ""

        def add(status: str, message: str, seconds: float | None = None) -> None:
            rows.append(_row(student, exercise, name, status, (note + message).rstrip("; "), seconds))

        if j in run.end:
            seconds = run.end[j] - run.start[j]
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if not errors:
                add("pass", "", seconds)
            elif errors[0].get("ename") == "ExerciseError":
                add("fail", _one_line(errors[0].get("evalue", "")), seconds)
            else:
                add("error", f"{errors[0].get('ename', 'Error')}: {_one_line(errors[0].get('evalue', ''))}",
                    seconds)
        elif stop_at == j:
            add("error", f"{why} while this check ran", run.stopped - run.start[j])
        elif run.stop is None:  # nbclient skips cells tagged 'skip-execution'
            add("not-run", "the cell was skipped (tag 'skip-execution')")
        else:
            at = f" in cell {stop_at} ({_snippet(nb.cells[stop_at].source)})" if stop_at else ""
            add("not-run", f"{why}{at}")
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


def grade_folder(folder: str | Path, reference_dir: str | Path | None = None, timeout: float = 120,
                 workers: int = 1, log: Callable[[str], None] | None = None) -> list[dict]:
    """Grade every student of a submissions folder; rows sorted by student, exercise, check order.

    Grades the reference exercises (``reference_dir``, default the course's ``exercises/``) that at
    least one student submitted; a student without that notebook gets ``missing`` rows.
    ``workers``: notebooks run at once (each in its own kernel). ``log`` receives progress lines."""
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
    checks = {stem: check_names(references[stem]) for stem in graded}
    jobs = [(s, stem) for s in sorted(subs) for stem in graded]
    lock = threading.Lock()

    def one(job):
        student, stem = job
        path = subs[student].get(stem)
        if path is None:
            return [_row(student, stem, name, "missing", f"no notebook submitted ({stem}.ipynb)")
                    for name in checks[stem]]
        t0 = time.monotonic()
        rows = grade_notebook(path, references[stem], timeout=timeout, student=student)
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
        writer.writerows({k: ("" if r[k] is None else r[k]) for k in FIELDS} for r in rows)


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
