"""What several test modules share: exercise-check assertions, a second writer of an HDF5 file,
one kernel for several notebooks."""
import difflib
import importlib.util
import subprocess
import sys
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest

from featlab.checks import ExerciseError

SKELETON = lambda *a: None  # noqa: E731  (what an unsolved exercise function returns)


def fails(check, fn, *hints):
    """``check(fn)`` must raise ExerciseError whose message contains every hint."""
    with pytest.raises(ExerciseError) as e:
        check(fn)
    for h in hints:
        assert h in str(e.value), f"expected {h!r} in: {e.value}"


@contextmanager
def held_open(path):
    """Another process holds the HDF5 file ``path`` open for writing while the block runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import h5py, sys; f = h5py.File(sys.argv[1], 'a'); print('ready', flush=True); "
                               "sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield
    finally:
        holder.communicate("")


def first_difference(a, b, names=("notebook", "source")) -> str:
    """Where two lists of (cell type, source, tags) first differ, with a short diff."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            lines = difflib.unified_diff(x[1].splitlines(), y[1].splitlines(), *names, lineterm="", n=1)
            return f"cell {i} (type, tags: {x[0]}, {x[2]} vs {y[0]}, {y[2]}):\n" + "\n".join(lines)
    return f"the {names[0]} has {len(a)} cells, the {names[1]} {len(b)}"


@cache
def build_exercises():
    """tools/build_exercises.py as a module (tools/ is not a package; it imports nbgrader, so
    only the tests that need it load it)."""
    spec = importlib.util.spec_from_file_location(
        "build_exercises", Path(__file__).resolve().parents[1] / "tools" / "build_exercises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def kernel(cwd, env: dict | None = None):
    """A python3 kernel started in ``cwd`` (with ``env``, else this process's environment) for the
    block: one kernel's imports for several notebooks, each run with :func:`run_afresh`."""
    from jupyter_client.manager import KernelManager
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(cwd), **({} if env is None else {"env": env}))
    try:
        yield km
    finally:
        km.shutdown_kernel(now=True)


def run_afresh(km, nb, **client):
    """Execute ``nb`` in the shared kernel ``km`` after a first cell that empties the namespace and
    closes the figures (nothing of the notebook before is left); returns that first cell."""
    import nbformat
    from nbclient import NotebookClient
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        "get_ipython().run_line_magic('reset', '-f')\nimport matplotlib.pyplot as plt; plt.close('all')"))
    NotebookClient(nb, km=km, **client).execute()
    return nb.cells[0]
