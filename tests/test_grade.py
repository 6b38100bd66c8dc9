"""featlab grade: a synthetic class graded end to end, with the exact status of every check.

The class is built from exercises/01_convolution_math (skeleton) and its solution, with the ways
a student could try to pass without an answer. Cases that need no featlab (limits, a dying
kernel, the network guard, the flat layout, the CLI) use a tiny reference exercise written here,
so their kernels start in about a second. Each class is graded once per module (kernels are slow).
"""
from __future__ import annotations

import csv
import html
import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from featlab import grade, grade_kernel, grade_report
from featlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
NAME = "01_convolution_math.ipynb"
CHECKS = ["check_conv_output_size", "check_conv2d_unfold", "check_conv1x1_matmul"]


def statuses(rows, student):
    return [r["status"] for r in rows if r["student"] == student]


def messages(rows, student):
    return [r["message"] for r in rows if r["student"] == student]


# --- the class: exercise 01 ---------------------------------------------------------------

def code_index(nb, start: str) -> int:
    """Index of the code cell whose source starts with ``start``."""
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.startswith(start))


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    skeleton = lambda: nbformat.read(ROOT / "exercises" / NAME, 4)  # noqa: E731
    solution = lambda: nbformat.read(ROOT / "exercises" / "solutions" / NAME, 4)  # noqa: E731

    def put(student, nb):
        (root / student).mkdir()
        nbformat.write(nb, root / student / NAME)

    put("ada", solution())                                   # correct
    dan = skeleton()                                         # syntax error in the import cell
    dan.cells[code_index(dan, "import torch")].source = "import torch\nimport featlab as fl)\n"
    put("dan", dan)
    fay = solution()                                         # check 2 deleted, check 3 commented out
    del fay.cells[code_index(fay, "fl.checks.check_conv2d_unfold")]
    j = code_index(fay, "fl.checks.check_conv1x1_matmul")
    fay.cells[j].source = "# " + fay.cells[j].source
    put("fay", fay)
    (root / "gus").mkdir()                                   # not a notebook at all
    (root / "gus" / NAME).write_text("print('my answers')  # saved as .ipynb by mistake\n")
    (root / "hal").mkdir()                                   # submitted nothing
    (root / "hal" / "notes.txt").write_text("sorry")
    kit = skeleton()                                         # nothing done, and a forged featlab
    i = code_index(kit, "import torch")                      # beside the notebook, imported first
    kit.cells[i].source = "import os, sys\nsys.path.insert(0, os.getcwd())\n" + kit.cells[i].source
    put("kit", kit)
    (root / "kit" / "featlab").mkdir()
    (root / "kit" / "featlab" / "__init__.py").write_text(
        "class checks:\n    ExerciseError = AssertionError\n"
        + "".join(f"    {c} = staticmethod(lambda f: print('✓'))\n" for c in CHECKS))
    put("tom", gaming(skeleton()))                           # the three tries of issue 19
    log = []
    rows = grade.grade_folder(root, ROOT / "exercises", timeout=120, workers=2, log=log.append)
    return root, rows, log


def gaming(nb):
    """The skeleton with its three checks gamed: check 1 inside try/except, check 2 replaced by a
    print of ✓, and before check 3 a cell that makes every check_* of featlab.checks (and its
    submodules) a no-op and replaces ExerciseError."""
    i = code_index(nb, "fl.checks.check_conv_output_size")
    nb.cells[i].source = "try:\n    " + nb.cells[i].source + "\nexcept Exception:\n    pass"
    nb.cells[code_index(nb, "fl.checks.check_conv2d_unfold")].source = (
        'print("✓ check_conv2d_unfold(conv2d_unfold): matches F.conv2d")')
    nb.cells.insert(code_index(nb, "fl.checks.check_conv1x1_matmul"), new_code_cell(
        "import sys\n"
        "for name, module in list(sys.modules.items()):\n"
        "    if name.startswith('featlab.checks'):\n"
        "        for attr in dir(module):\n"
        "            if attr.startswith('check_'):\n"
        "                setattr(module, attr, lambda *a, **k: print('✓ fine'))\n"
        "        module.ExerciseError = type('ExerciseError', (Exception,), {})"))
    return nb


STUDENTS = ["ada", "dan", "fay", "gus", "hal", "kit", "tom"]


def test_every_student_gets_a_row_per_check(klass):
    _, rows, log = klass
    assert [(r["student"], r["check"]) for r in rows] == [(s, c) for s in STUDENTS for c in CHECKS]
    assert {r["exercise"] for r in rows} == {"01_convolution_math"}
    assert {r["points"] for r in rows} == {1.0}
    assert len(log) == 6 and any(line.startswith("ada/01_convolution_math.ipynb: 3/3 passed") for line in log)


def test_exact_status_per_check(klass):
    _, rows, _ = klass
    assert statuses(rows, "ada") == ["pass", "pass", "pass"]
    assert statuses(rows, "dan") == ["fail", "error", "error"]  # the checks import featlab themselves
    assert statuses(rows, "fay") == ["pass", "missing", "missing"]
    assert statuses(rows, "gus") == ["error", "error", "error"]
    assert statuses(rows, "hal") == ["missing", "missing", "missing"]


def test_gaming_tries_are_not_graded_pass(klass):
    _, rows, _ = klass
    assert statuses(rows, "tom") == ["fail", "fail", "fail"]
    tries = messages(rows, "tom")   # the exercise's checks ran: they say what is wrong
    assert [m.startswith("check cell edited; ") for m in tries] == [True, True, False]
    assert all("returned None" in m for m in tries)
    assert statuses(rows, "kit") == ["fail", "fail", "fail"]  # the course's checks, not kit's featlab


def test_messages_say_what_happened(klass):
    _, rows, _ = klass
    assert messages(rows, "ada") == ["", "", ""]
    assert all("returned None: fill in the TODO" in m for m in messages(rows, "kit"))
    assert messages(rows, "dan")[1:] == ["NameError: name 'conv2d_unfold' is not defined",
                                         "NameError: name 'conv1x1_matmul' is not defined"]
    assert messages(rows, "fay")[1:] == [
        "check cell deleted: no cell calls this check; restore the cell from the exercise"] * 2
    assert all(m.startswith("not a valid notebook (01_convolution_math.ipynb): NotJSONError")
               for m in messages(rows, "gus"))
    assert messages(rows, "hal") == ["no notebook submitted (01_convolution_math.ipynb)"] * 3
    assert all("\n" not in r["message"] and len(r["message"]) <= grade.MESSAGE_CHARS for r in rows)
    ran = [r for r in rows if r["student"] in ("ada", "dan", "kit", "tom")]
    assert all(isinstance(r["seconds"], float) and r["seconds"] >= 0 for r in ran)


def test_submissions_are_not_modified(klass):
    root, _, _ = klass
    nb = nbformat.read(root / "tom" / NAME, 4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_summary_table_and_csv(klass, tmp_path):
    _, rows, _ = klass
    text = grade.summary(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["student", "01", "total"]
    assert [line.split() for line in lines[1:8]] == [
        ["ada", "3/3", "3/3"], ["dan", "0/3", "0/3"],
        ["fay", "1/3", "1/3"], ["gus", "0/3", "0/3"], ["hal", "-", "0/3"], ["kit", "0/3", "0/3"],
        ["tom", "0/3", "0/3"]]
    assert lines[8] == ("7 students, 1 exercise, 21 checks: "
                        "4 pass, 7 fail, 5 error, 5 missing, 0 not-run")
    out = tmp_path / "grades.csv"
    grade.write_csv(rows, out)
    with open(out, newline="", encoding="utf-8") as f:
        back = list(csv.DictReader(f))
    assert list(back[0]) == list(grade.FIELDS)
    assert [(r["student"], r["check"], r["status"]) for r in back] == [
        (r["student"], r["check"], r["status"]) for r in rows]
    hal = [r for r in back if r["student"] == "hal"]
    assert hal[0]["seconds"] == "" and float(back[0]["seconds"]) >= 0 and back[0]["points"] == "1"


def test_endless_loop_is_stopped_and_its_kernel_killed(tmp_path):
    nb = nbformat.read(ROOT / "exercises" / NAME, 4)
    i = code_index(nb, "import torch")
    nb.cells[i].source = "while True:\n    pass"
    nb.cells.insert(i, new_code_cell("import os\nopen('kernel.pid', 'w').write(str(os.getpid()))"))
    nbformat.write(nb, tmp_path / NAME)
    rows = grade.grade_notebook(tmp_path / NAME, ROOT / "exercises" / NAME, timeout=2, student="eve")
    assert [r["status"] for r in rows] == ["not-run"] * 3
    assert [r["check"] for r in rows] == CHECKS
    assert rows[0]["message"] == f"the notebook's time limit (2 s) was reached in cell {i + 2} (while True:)"
    pid = int((tmp_path / "kernel.pid").read_text())   # the kernel ran in the notebook's folder
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_an_endless_print_loop_keeps_a_bounded_output(tmp_path):
    nb = new_notebook(cells=[new_code_cell("while True:\n    print('x' * 1000)"),
                             new_code_cell("1 / 0")])
    run = grade_kernel.execute(nb, tmp_path, grade_kernel.Limits(timeout=3))
    assert run.stop[0] == "timeout"
    kept = sum(len(o.get("text", "")) for o in nb.cells[0].outputs)
    assert grade_kernel.OUTPUT_CHARS <= kept < grade_kernel.OUTPUT_CHARS + 100   # uncapped: millions in 3 s
    assert nb.cells[0].outputs[-1].text.endswith("characters dropped]\n")
    nb = new_notebook(cells=[new_code_cell("for _ in range(300):\n    print('x' * 1000)\n1 / 0")])
    grade_kernel.execute(nb, tmp_path, grade_kernel.Limits(timeout=30))
    assert [o.output_type for o in nb.cells[0].outputs][-1] == "error"  # errors pass the cap


# --- a tiny exercise: timeouts, a dying kernel, the network guard, layouts, the CLI -------------

TINY_SETUP = '''\
import os, socket

class ExerciseError(AssertionError):
    pass

def check_add(f):
    if f(2, 3) != 5:
        raise ExerciseError(f"add(2, 3) = {f(2, 3)}, expected 5")
    print("✓ add")

def check_double(f):
    if f(4) != 8:
        raise ExerciseError(f"double(4) = {f(4)}, expected 8")
    print("✓ double")

def check_last():
    print("✓ last")
'''


def tiny(add="return None", double="return None", double_cell_head="", add_check="check_add(add)"):
    nb = new_notebook()
    check = {"tags": ["check"]}
    nb.cells = [new_markdown_cell("# Tiny exercise"), new_code_cell(TINY_SETUP),
                new_code_cell(f"def add(a, b):\n    {add}"), new_code_cell(add_check, metadata=check),
                new_code_cell(f"{double_cell_head}def double(x):\n    {double}"),
                new_code_cell("check_double(double)", metadata=check),
                new_code_cell("check_last()", metadata=check)]
    return nb


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    ref = tmp_path_factory.mktemp("tiny_ref")
    nbformat.write(tiny(), ref / "01_tiny.ipynb")
    return ref


LIMITS = grade_kernel.Limits(timeout=4, memory=400 * 2**20, processes=8, file_size=8 * 2**20)


def kernel_pid_cell():
    return new_code_cell("import os\nwith open('kernel.pid', 'w') as f:\n    f.write(str(os.getpid()))")


@pytest.fixture(scope="module")
def tiny_class(tiny_reference, tmp_path_factory):
    """Students of the tiny exercise, graded once with two workers: the limits, a dying kernel,
    the network guard, tampering with the grader's reports, both layouts."""
    subs = tmp_path_factory.mktemp("tiny_class")
    for student, nb in {
        "slow": tiny(add="return a + b", double="while True:\n        pass"),
        "dies": tiny(add="return a + b", double="os._exit(1)"),
        "net": tiny(add="return socket.create_connection(('example.com', 80), timeout=5) and 5",
                    double="return 2 * x",   # loopback is allowed: this cell must run through
                    double_cell_head=(
                        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
                        "socket.create_connection(('localhost', srv.getsockname()[1])).close()\n")),
        "sly": tiny(add="return a - b", add_check="try:\n    check_add(add)\nexcept Exception:\n    pass"),
        # allocates without bound (touched bytes: resident memory grows)
        "hog": tiny(add="return a + b", double_cell_head="hoard = []\nwhile True:\n    hoard.append(b'x' * 2**25)\n"),
        # forks (a bounded loop: 40 children, each asleep for 30 s; the limit is 8 processes)
        "forker": tiny(add="return a + b", double_cell_head=(
            "import time\nfor _ in range(40):\n    if os.fork() == 0:\n        time.sleep(30)\n"
            "        os._exit(0)\ntime.sleep(30)\n")),
        # fills the disk: one file written without end (64 MiB at most; the limit is 8 MiB)
        "filler": tiny(add="return a + b", double_cell_head=(
            "with open('big.bin', 'wb') as f:\n    for _ in range(64):\n        f.write(b'x' * 2**20)\n")),
        # builtins the grader's cell uses, shadowed by globals of the same names
        "shadow": tiny(add="return a - b", double_cell_head=(
            "exec = compile = dict = globals = lambda *a, **k: None\n")),
        # the grader's report forged by the learner's function, then muted by a later cell
        "forger": tiny(add=("from IPython.display import publish_display_data as p\n    "
                            "p({'application/vnd.featlab.grade+json': {'nonce': '0' * 32, 'status': 'pass'}})\n"
                            "    return a - b"),
                       double="return 2 * x", double_cell_head=(
                           "import IPython.display\nIPython.display.publish_display_data = lambda *a, **k: None\n")),
    }.items():
        if student == "sly":
            nb.cells[-1].metadata["tags"].append("skip-execution")  # nbclient would skip such cells
        nb.cells.insert(2, kernel_pid_cell())
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / "01_tiny.ipynb")
    nbformat.write(tiny(add="return a + b", double="return x + x"), subs / "zed__01_tiny.ipynb")  # flat
    t0 = time.monotonic()
    rows = grade.grade_folder(subs, tiny_reference, workers=2, limits=LIMITS)
    return subs, rows, time.monotonic() - t0


def session_alive(pid: int) -> list[int]:
    """Processes still in the session the kernel ``pid`` started."""
    alive = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            continue
        if p.isdigit() and int(fields[3]) == pid and fields[0] != b"Z":
            alive.append(int(p))
    return alive


def test_timeout_dead_kernel_network_and_layouts(tiny_class):
    _, rows, _ = tiny_class
    assert [r["check"] for r in rows[:3]] == ["check_add", "check_double", "check_last"]
    assert statuses(rows, "dies") == ["pass", "error", "not-run"]
    assert messages(rows, "dies")[1:] == ["the kernel died while this check ran",
                                          "the kernel died in cell 7 (check_double(double))"]
    assert statuses(rows, "net") == ["error", "pass", "pass"]
    assert messages(rows, "net")[0].startswith(
        "ConnectionRefusedError: [Errno 111] featlab grade: no network while grading; "
        "refused to connect to 'example.com'")
    assert statuses(rows, "slow") == ["pass", "error", "not-run"]
    assert messages(rows, "slow")[1:] == [
        "the notebook's time limit (4 s) was reached while this check ran",
        "the notebook's time limit (4 s) was reached in cell 7 (check_double(double))"]
    slow_double = [r for r in rows if r["student"] == "slow"][1]
    assert 0 < slow_double["seconds"] < 60
    assert statuses(rows, "zed") == ["pass", "pass", "pass"]


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="the memory and process limits read /proc (Linux)")
def test_limits_stop_the_kernel_and_the_class_is_graded(tiny_class):
    subs, rows, seconds = tiny_class
    assert statuses(rows, "hog") == ["pass", "not-run", "not-run"]
    assert messages(rows, "hog")[1] == "the memory limit (400 MiB) was reached in cell 6 (hoard = [])"
    assert statuses(rows, "forker") == ["pass", "not-run", "not-run"]
    assert messages(rows, "forker")[1] == "the process limit (8) was reached in cell 6 (import time)"
    assert statuses(rows, "filler") == ["pass", "not-run", "not-run"]
    assert messages(rows, "filler")[1] == (
        "the file-size limit (8 MiB) was reached in cell 6 (with open('big.bin', 'wb') as f:)")
    assert (subs / "filler" / "big.bin").stat().st_size <= LIMITS.file_size
    for student in ("hog", "forker", "filler", "slow", "dies"):
        pid = int((subs / student / "kernel.pid").read_text())
        assert session_alive(pid) == [], student   # the kernel and all it started are gone
    assert statuses(rows, "zed") == ["pass", "pass", "pass"]     # graded after them
    assert seconds < 120                                          # the forker's 30 s sleeps were cut


def test_reports_cannot_be_muted_or_forged(tiny_class):
    _, rows, _ = tiny_class
    assert statuses(rows, "sly") == ["fail", "fail", "pass"]    # the reference check ran, skip tag or not
    assert messages(rows, "sly")[0] == "check cell edited; add(2, 3) = -1, expected 5"
    assert statuses(rows, "forger") == ["error", "error", "error"]
    assert messages(rows, "forger") == ["the check did not report a result "
                                        "(its output was suppressed or forged)"] * 3
    assert statuses(rows, "shadow") == ["fail", "fail", "pass"]


def test_a_notebook_that_changes_the_graders_files_stops_grading(tiny_reference, tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "01_tiny.ipynb").write_bytes((tiny_reference / "01_tiny.ipynb").read_bytes())
    nb = tiny(add="return a + b")
    nb.cells.insert(2, new_code_cell(f"open({str(ref / '02_new.ipynb')!r}, 'w').write('{{}}')"))
    (tmp_path / "subs" / "rex").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "subs" / "rex" / "01_tiny.ipynb")
    with pytest.raises(grade.GradingTampered, match="changed while rex/01_tiny.ipynb was graded"):
        grade.grade_folder(tmp_path / "subs", ref, timeout=30)


def test_find_submissions_layouts(tmp_path):
    (tmp_path / "amy").mkdir()
    nbformat.write(new_notebook(), tmp_path / "amy" / "01_tiny-Copy1.ipynb")      # unique 01_: used
    nbformat.write(new_notebook(), tmp_path / "amy" / "scratch.ipynb")
    (tmp_path / "ben").mkdir()
    for n in ["01_tiny (1).ipynb", "01_tiny (2).ipynb"]:                         # ambiguous: skipped
        nbformat.write(new_notebook(), tmp_path / "ben" / n)
    nbformat.write(new_notebook(), tmp_path / "cat__01_tiny.ipynb")
    nbformat.write(new_notebook(), tmp_path / "stray.ipynb")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    log = []
    found = grade.find_submissions(tmp_path, ["01_tiny", "02_other"], log.append)
    assert found == {"amy": {"01_tiny": tmp_path / "amy" / "01_tiny-Copy1.ipynb"}, "ben": {},
                     "cat": {"01_tiny": tmp_path / "cat__01_tiny.ipynb"}}
    assert any("stray.ipynb" in m for m in log) and any("amy: ignored scratch.ipynb" in m for m in log)
    assert any(m.startswith("ben: several notebooks start with 01_") for m in log)


def test_limits_are_validated_once():
    assert [grade_kernel.parse_size(t) for t in ("300M", "1.5G", "4g", "512MiB", "1048576")] == [
        300 * 2**20, int(1.5 * 2**30), 4 * 2**30, 512 * 2**20, 2**20]
    for bad in ("lots", "0", "-1G", "4 X"):
        with pytest.raises(ValueError, match="must be a positive size such as 512M or 4G"):
            grade_kernel.parse_size(bad)
    with pytest.raises(ValueError, match="Limits.memory must be a positive number"):
        grade_kernel.Limits(memory=0)
    with pytest.raises(ValueError, match="Limits.processes must be at least 2"):
        grade_kernel.Limits(processes=1)
    assert grade_kernel.Limits(memory=400 * 2**20).describe("memory") == "the memory limit (400 MiB)"


def test_check_calls_are_found_outside_comments():
    assert grade._calls("fl.checks.check_a(f)", "check_a")
    assert grade._calls("x = 1\nfeatlab.checks.check_a (f)  # run me", "check_a")
    assert not grade._calls("# fl.checks.check_a(f)", "check_a")
    assert not grade._calls("y = 2  # check_a(f)", "check_a")
    assert not grade._calls("fl.checks.check_ab(f)", "check_a")


def test_reference_without_checks_is_refused(tmp_path):
    nbformat.write(new_notebook(cells=[new_code_cell("1 + 1")]), tmp_path / "01_none.ipynb")
    with pytest.raises(ValueError, match="no code cell tagged 'check'"):
        grade.grade_notebook(tmp_path / "01_none.ipynb", tmp_path / "01_none.ipynb")


def test_cli_grade(tiny_reference, tmp_path, capsys):
    subs = tmp_path / "subs"
    (subs / "kim").mkdir(parents=True)
    nbformat.write(tiny(add="return a + b", double="return 2 * x"), subs / "kim" / "01_tiny.ipynb")
    (subs / "lou").mkdir()
    (subs / "lou" / "01_tiny.ipynb").write_bytes(b"\x00\x01 not json")
    out = tmp_path / "grades.csv"
    assert main(["grade", str(subs), "--out", str(out), "--timeout", "30", "--memory", "1G",
                 "--processes", "16", "--file-size", "64M", "--reference", str(tiny_reference)]) == 0
    printed = capsys.readouterr()
    lines = printed.out.strip().splitlines()
    assert [line.split() for line in lines[:3]] == [["student", "01", "total"], ["kim", "3/3", "3/3"],
                                                    ["lou", "0/3", "0/3"]]
    assert lines[3].startswith(
        "2 students, 1 exercise, 6 checks: 3 pass, 0 fail, 3 error, 0 missing, 0 not-run, ")
    assert lines[4] == f"wrote {out}"
    report = tmp_path / "grades-report"
    assert lines[5].startswith(f"wrote {report / 'feedback'}/")
    assert sorted(p.name for p in (report / "feedback").iterdir()) == ["kim.html", "lou.html"]
    assert (report / "totals.csv").read_text().splitlines() == [
        "student,01_tiny,total,possible", "kim,3,3,3", "lou,0,0,3"]
    assert "kim/01_tiny.ipynb: 3/3 passed" in printed.err
    with open(out, newline="", encoding="utf-8") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["pass"] * 3 + ["error"] * 3
    assert main(["grade", str(tmp_path / "nowhere"), "--reference", str(tiny_reference)]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["grade", str(subs), "--memory", "lots"])
    assert "--memory must be a positive size such as 512M or 4G; got 'lots'" in capsys.readouterr().err


def test_cli_grade_help_and_example(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["grade", "--help"])
    text = capsys.readouterr().out
    for option in ("--memory", "--processes", "--file-size", "--report", "--example", "--workers"):
        assert option in text
    assert "featlab grade --example demo" in text and "summary.html" in text
    assert main(["grade", "--example", str(tmp_path / "demo")]) == 0
    subs = tmp_path / "demo" / "submissions"
    assert sorted(p.name for p in subs.iterdir()) == ["ada", "bob", "cyd", "tom"]
    assert grade.find_submissions(subs, ["01_convolution_math"])["tom"]
    assert main(["grade", "--example", str(tmp_path / "demo")]) == 2     # never overwrites
    assert "exists already" in capsys.readouterr().err


# --- reports: feedback pages, totals, the class summary (rows made here, no kernel) ---------------

def row(student, check, status, message="", points=1.0, exercise="01_tiny"):
    return {"student": student, "exercise": exercise, "check": check, "status": status,
            "points": points, "message": message, "seconds": None}


SYNTHETIC = [  # 4 students x 3 checks; check_b fails most, with one message twice
    row("amy", "check_a", "pass"), row("amy", "check_b", "fail", "b is off by one", 2.0),
    row("amy", "check_c", "pass"),
    row("ben", "check_a", "pass"), row("ben", "check_b", "fail", "b is off by one", 2.0),
    row("ben", "check_c", "error", "NameError: name 'c' is not defined"),
    row("cat", "check_a", "fail", "a is None"), row("cat", "check_b", "fail", "b has the wrong shape", 2.0),
    row("cat", "check_c", "pass"),
    row("dan", "check_a", "pass"), row("dan", "check_b", "pass", "", 2.0), row("dan", "check_c", "pass"),
]


def test_reference_points_and_sections(tmp_path):
    nb = new_notebook(cells=[
        new_markdown_cell("# Exercise\n## Task 1 — sums"), new_code_cell("check_a(f)", metadata={"tags": ["check"]}),
        new_markdown_cell("## Task 2 — products"),
        new_code_cell("check_b(g)", metadata={"tags": ["check"], "points": 2}),
        new_code_cell("check_a(f)  # again", metadata={"tags": ["check"]})])   # a repeat: not a new check
    nbformat.write(nb, tmp_path / "01_tiny.ipynb")
    checks = grade.reference_checks(tmp_path / "01_tiny.ipynb")
    assert [(c.names, c.points, c.section) for c in checks] == [
        (("check_a",), 1.0, "Task 1 — sums"), (("check_b",), 2.0, "Task 2 — products")]
    nb.cells[3].metadata["points"] = "two"
    nbformat.write(nb, tmp_path / "01_tiny.ipynb")
    with pytest.raises(ValueError, match="points='two'; give a number >= 0"):
        grade.reference_checks(tmp_path / "01_tiny.ipynb")


def test_totals_csv(tmp_path):
    grade_report.write_totals(SYNTHETIC + [row("amy", "check_z", "pass", exercise="02_other")],
                              tmp_path / "totals.csv")
    with open(tmp_path / "totals.csv", newline="", encoding="utf-8") as f:
        back = list(csv.reader(f))
    assert back == [["student", "01_tiny", "02_other", "total", "possible"],
                    ["amy", "2", "1", "3", "5"], ["ben", "1", "0", "1", "4"],
                    ["cat", "1", "0", "1", "4"], ["dan", "4", "0", "4", "4"]]


def test_class_summary_counts_chart_and_messages(tmp_path):
    checks = grade_report.failing_checks(SYNTHETIC)
    assert [(c["check"], c["failed"]) for c in checks] == [("check_b", 3), ("check_a", 1), ("check_c", 1)]
    assert checks[0]["counts"] == {"pass": 1, "fail": 3, "error": 0, "missing": 0, "not-run": 0}
    assert checks[0]["messages"] == [("b is off by one", 2), ("b has the wrong shape", 1)]
    page, png = grade_report.write_summary(SYNTHETIC, tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    text = page.read_text(encoding="utf-8")
    body = [re.sub(r"<[^>]+>", " ", tr).split() for tr in re.findall(r"<tr>(.*?)</tr>", text)]
    assert body[0][:8] == ["exercise", "check", "not", "passed", "pass", "fail", "error", "missing"]
    assert [b[:8] for b in body[1:]] == [["01_tiny", "check_b", "3", "1", "3", "0", "0", "0"],
                                         ["01_tiny", "check_a", "1", "3", "1", "0", "0", "0"],
                                         ["01_tiny", "check_c", "1", "3", "0", "1", "0", "0"]]
    assert "2 × b is off by one" in text and 'src="summary.png"' in text


def test_feedback_pages_of_the_class(klass, tmp_path):
    _, rows, _ = klass
    grade_report.write_reports(rows, tmp_path, ROOT / "exercises")
    pages = sorted(p.stem for p in (tmp_path / "feedback").iterdir())
    assert pages == STUDENTS
    text = (tmp_path / "feedback" / "tom.html").read_text(encoding="utf-8")
    assert "<b>0 of 3 points</b>: 0 of 3 checks passed." in text
    cells = [[html.unescape(re.sub(r"<[^>]+>", "", td)) for td in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
             for tr in re.findall(r"<tr>(.*?)</tr>", text)[1:]]
    assert [c[1:4] for c in cells] == [[c, "fail", "0 / 1"] for c in CHECKS]
    assert cells[1][5] == ("Re-read “Task 2 — convolution as im2col + one matrix product” in "
                           "exercises/01_convolution_math.ipynb; fix your function until its check cell prints ✓.")
    fay = (tmp_path / "feedback" / "fay.html").read_text(encoding="utf-8")
    assert fay.count("Restore the check cell of “Task") == 2 and "https://" not in fay  # offline
    hal = html.unescape((tmp_path / "feedback" / "hal.html").read_text(encoding="utf-8"))
    assert "Submit 01_convolution_math.ipynb" in hal
    with open(tmp_path / "totals.csv", newline="", encoding="utf-8") as f:
        totals = {r["student"]: (r["total"], r["possible"]) for r in csv.DictReader(f)}
    assert totals["ada"] == ("3", "3") and totals["tom"] == ("0", "3") and totals["fay"] == ("1", "3")
