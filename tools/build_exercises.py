"""Build every exercise from its master: exercises/src/NN_name.py -> two notebooks.

A master is a jupytext percent-format notebook whose solved code sits between the lines
`### BEGIN SOLUTION` and `### END SOLUTION`. From it this writes
- exercises/NN_name.ipynb, the student copy: each region replaced by "# TODO" / "return None"
  (nbgrader's ClearSolutions), no outputs;
- exercises/solutions/NN_name.ipynb, the solution copy: the master without the marker lines, its
  title marked "(solution)", relative links one folder deeper. Stored outputs are kept while the
  code cells are unchanged; otherwise it is written without outputs, i.e. stale.

Usage: python tools/build_exercises.py   (prints the stale solutions; `make exercises` runs them)
"""
import copy
from pathlib import Path

import jupytext
import nbformat
from nbgrader.preprocessors import ClearSolutions

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = ROOT / "exercises"
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
METADATA = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"}}


def read_master(path):
    nb = jupytext.read(path)
    nb.metadata = copy.deepcopy(METADATA)          # no jupytext metadata: a plain notebook
    return nb


def student(master):
    clear = ClearSolutions(code_stub={"python": "# TODO\nreturn None"}, enforce_metadata=False,
                           begin_solution_delimeter=BEGIN, end_solution_delimeter=END)
    return clear.preprocess(copy.deepcopy(master), {})[0]


def solution(master):
    nb = copy.deepcopy(master)
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines = cell.source.split("\n")        # drop the marker lines, as ClearSolutions finds them
            cell.source = "\n".join(x for x in lines if BEGIN not in x and END not in x)
        else:
            cell.source = cell.source.replace("](../", "](../../")   # exercises/solutions/ is deeper
    first = nb.cells[0]
    if first.cell_type == "markdown" and first.source.startswith("# "):
        title, sep, rest = first.source.partition("\n")
        first.source = f"{title} (solution){sep}{rest}"
    return nb


def cells(nb, kind=None):
    """[(cell type, source, tags)] of all cells, or of those of one kind: what the master decides."""
    return [(c.cell_type, c.source, list(c.metadata.get("tags", [])))
            for c in nb.cells if kind in (None, c.cell_type)]


def write(nb, path):
    """Write only when something changed; keep the old cell ids so git diffs stay small."""
    old = nbformat.read(path, as_version=4) if path.exists() else None
    for cell, old_cell in zip(nb.cells, old.cells if old else []):
        cell.id = old_cell.id
    text = nbformat.writes(nb).rstrip("\n") + "\n"
    if old is None or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def build(master_path):
    """Write the student and solution copies of one master; return the solution path if stale."""
    master = read_master(master_path)
    name = master_path.stem + ".ipynb"
    write(student(master), EXERCISES / name)
    path, new = EXERCISES / "solutions" / name, solution(master)
    old = nbformat.read(path, as_version=4) if path.exists() else None
    if old is not None and cells(old, "code") == cells(new, "code"):   # same code: keep outputs
        code = lambda nb: [c for c in nb.cells if c.cell_type == "code"]
        for cell, old_cell in zip(code(new), code(old)):
            cell.update(outputs=old_cell.outputs, execution_count=old_cell.execution_count,
                        metadata=old_cell.metadata)
        new.metadata["language_info"] = old.metadata.get("language_info", {"name": "python"})
    write(new, path)
    if any(c.cell_type == "code" and c.source.strip() and c.execution_count is None for c in new.cells):
        return path


if __name__ == "__main__":
    stale = [build(p) for p in sorted((EXERCISES / "src").glob("*.py"))]
    print("\n".join(str(p.relative_to(ROOT)) for p in stale if p))
