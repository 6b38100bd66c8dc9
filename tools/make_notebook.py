"""Build a notebook from a plain-text source, so notebooks are written and reviewed as text.

Usage: python tools/make_notebook.py SRC.py OUT.ipynb

SRC.py is split into cells at lines that start with ``# %%`` (code) or ``# %% [markdown]``
(markdown; each line of the cell starts with ``# ``). A code cell whose first line is
``# NBVAL_CHECK_OUTPUT`` has its printed output compared by nbval; ``# %% tags=check`` marks
an exercise check cell (cell tag ``check``).
"""
import sys

import nbformat


def build(src: str):
    cells, kind, tags, buf = [], None, [], []

    def flush():
        if kind is None:
            return
        text = "\n".join(buf).strip("\n")
        if kind == "markdown":
            text = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.splitlines())
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
        if tags:
            cell.metadata["tags"] = list(tags)
        cells.append(cell)

    for line in src.splitlines():
        if line.startswith("# %%"):
            flush()
            rest = line[4:].strip()
            kind = "markdown" if "[markdown]" in rest else "code"
            tags = [t for part in rest.split() if part.startswith("tags=") for t in part[5:].split(",")]
            buf = []
        else:
            buf.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


if __name__ == "__main__":
    src, out = sys.argv[1], sys.argv[2]
    nbformat.write(build(open(src).read()), out)
