"""The solution functions of an exercise, taken from its master ``exercises/src/NN_*.py``, so the
tests of the checks use exactly what the solution notebook runs (without its slow cells)."""
import ast
import re
from functools import cache
from pathlib import Path
from types import SimpleNamespace

SRC = Path(__file__).resolve().parents[1] / "exercises" / "src"


@cache
def solution(number: int) -> SimpleNamespace:
    """The imports and top-level functions of the code cells of exercise ``number`` (check cells,
    markdown and statements that run things, such as loading a model, are left out)."""
    (path,) = SRC.glob(f"{number:02d}_*.py")
    cells = re.split(r"^# %%", path.read_text(), flags=re.M)[1:]
    kept = []
    for cell in cells:
        head, _, body = cell.partition("\n")
        if "markdown" in head or "check" in head:
            continue
        tree = ast.parse(body)
        kept += [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
    namespace: dict = {}
    exec(compile(ast.Module(kept, type_ignores=[]), str(path), "exec"), namespace)
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})


def check_calls() -> list[tuple[int, str, str]]:
    """(exercise number, check name, name of the learner's function) for every check cell of the
    masters, e.g. (1, "check_conv_output_size", "conv_output_size")."""
    calls = []
    for path in sorted(SRC.glob("[0-9][0-9]_*.py")):
        for check, fn in re.findall(r"fl\.checks\.(check_\w+)\((\w+)\)", path.read_text()):
            calls.append((int(path.name[:2]), check, fn))
    return calls
