"""The online learner's path, tested offline.

A learner with internet has torchvision's ImageNet files for vgg16, vgg19, resnet18 and resnet50
in ``$TORCH_HOME/hub/checkpoints``, so the notebooks' "weights present" branches run for them,
and never in CI, which has no weights. Here a temporary ``TORCH_HOME`` holds seeded random state
dicts saved under torchvision's exact file names; featlab finds and reads them through its
ordinary code path (it checks no hash: torch.load with weights_only=True, file names as
torchvision's URLs give them), and every notebook with such a branch is executed in a kernel that
sees that ``TORCH_HOME``. Numbers are meaningless, code paths are real.

Only the cells that branch on the weights run again, with the statements of earlier cells they
need (what they name, followed back through the notebook: :func:`branch_slice`); nbval runs the
whole notebook, once, without the weights.
"""
from __future__ import annotations

import ast
import functools
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import torch

import featlab as fl
from helpers import kernel, run_afresh

ROOT = Path(__file__).resolve().parents[1]

# torchvision's IMAGENET1K_V1 files, the names an online fl.load_model(name) saves them under.
CHECKPOINTS = {
    "vgg16": "vgg16-397923af.pth",
    "vgg19": "vgg19-dcbb9e9d.pth",
    "resnet18": "resnet18-f37072fd.pth",
    "resnet50": "resnet50-0676ba61.pth",
}
SHIPPED = {"efficientnet_lite0": 4_652_008}  # weights in a pip package; number of parameters

# Every notebook with a weights-present branch: the text that finds the branch cell, patterns
# the branch prints only when the weights are present, and what it prints when they are not.
_VGG16_ROW = r"^{}\s+\(\d+, \d+, \d+\)\s+active \d\.\d\d\s+spread \d\.\d\d\s+edge r -?\d\.\d\d$"
_VGG19_ROW = r"^{}\s+\d+\.\d\s+(   \d\.\d\d \d\.\d\d){{3}}$"
BRANCHES = {
    "notebooks/00_setup_and_tour.ipynb": (
        'fl.load_model("vgg16")',
        [r"^vgg16 weights are cached in ~/\.cache/torch/hub/checkpoints$"],
        "pretrained weights for 'vgg16' are not on this machine"),
    "notebooks/05_feature_maps.ipynb": (
        '"vgg16" in fl.available_models()',
        [_VGG16_ROW.format(re.escape(L))
         for L in ["features.0", "features.5", "features.10", "features.17", "features.28"]],
        "VGG16 weights not found (optional cell)"),
    "notebooks/07_embeddings_retrieval.ipynb": (
        '"vgg19" in fl.available_models()',
        [r"^layer     \|avg vector\|"]
        + [_VGG19_ROW.format(L) for L in ["conv3_4", "conv4_4", "conv5_4", "fc6", "fc7"]]
        + [r"^concat raw  ", r"^fl\.fuse all "],
        "VGG19 weights are not installed"),
}
# Run before a branch cell, in the test only: fewer pictures or pixels, the same code path (07's VGG19 branch
# on 144 pictures of 224 × 224 takes 38 s on 2 cores; at 64 × 64, VGG's adaptive pooling still
# feeds fc6 and fc7, and the branch prints the same table).
SMALLER = {
    "notebooks/05_feature_maps.ipynb": "pictures = pictures[:2]",
    "notebooks/07_embeddings_retrieval.ipynb":
        "gallery = [p.resize((64, 64)) for p in gallery]\nqueries = [p.resize((64, 64)) for p in queries]",
}
# A code cell that takes a different path when torchvision's weights are present.
_BRANCH = re.compile(r"available_models\(\)|WeightsUnavailableError|"
                     r"load_model\(\s*[\"'](?:" + "|".join(CHECKPOINTS) + r")[\"']\s*\)")


def _notebooks() -> list[Path]:
    return sorted([*(ROOT / "notebooks").glob("*.ipynb"), *(ROOT / "exercises").glob("*.ipynb"),
                   *(ROOT / "exercises" / "solutions").glob("*.ipynb")])


def _branch_cell(nb, needle: str):
    cells = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert len(cells) == 1, f"expected one code cell containing {needle!r}, found {len(cells)}"
    return cells[0]


# --- the slice of a notebook that the branch cells need ------------------------------------------

def _names_in_order(node: ast.AST, local: frozenset = frozenset()):
    """(name, is_store) for each use of a module-level name in ``node``, in the order Python
    evaluates them (the value of an assignment before its target, a loop's iterable before its
    variable, a comprehension's loops before its element); inside a function or lambda, its
    arguments and the names it assigns are its own and are left out."""
    walk = functools.partial(_names_in_order, local=local)
    if isinstance(node, ast.Name):
        if node.id not in local:
            yield node.id, isinstance(node.ctx, (ast.Store, ast.Del))
    elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)):
        yield from walk(node.value) if node.value is not None else ()
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
            yield from walk(target)
    elif isinstance(node, ast.AugAssign):                      # x += v reads x first
        if isinstance(node.target, ast.Name) and node.target.id not in local:
            yield node.target.id, False
        yield from walk(node.value)
        yield from walk(node.target)
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        for part in [node.iter, node.target, *node.body, *node.orelse]:
            yield from walk(part)
    elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        for gen in node.generators:
            for part in [gen.iter, gen.target, *gen.ifs]:
                yield from walk(part)
        for part in ([node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]):
            yield from walk(part)
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = node.args
        yield from (x for d in [*a.defaults, *a.kw_defaults] if d is not None for x in walk(d))
        own = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x}
        body = [node.body] if isinstance(node, ast.Lambda) else node.body
        own |= {n.id for b in body for n in ast.walk(b) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Store)}
        if not isinstance(node, ast.Lambda):
            yield from (x for d in node.decorator_list for x in walk(d))
        for b in body:
            yield from _names_in_order(b, local | own)
        if not isinstance(node, ast.Lambda):
            yield node.name, True
    elif isinstance(node, ast.ClassDef):
        for child in ast.iter_child_nodes(node):
            yield from walk(child)
        yield node.name, True
    else:
        for child in ast.iter_child_nodes(node):
            yield from walk(child)


def _root(node: ast.AST) -> str | None:
    """``a`` for ``a``, ``a.b[0].c`` and ``a.b(...)``; None for anything else."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _statement(node: ast.stmt, modules: set[str]) -> tuple[set[str], set[str]]:
    """(names the statement binds or changes, names it reads before binding them)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}, set()
    binds, reads = set(), set()
    for name, is_store in _names_in_order(node):
        if is_store:
            binds.add(name)
        elif name not in binds:
            reads.add(name)
    # changed in place: x[k] = v, x.a = v, x.append(v) (not module functions such as plt.show())
    targets = [t for n in ast.walk(node) if isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign))
               for t in (n.targets if isinstance(n, ast.Assign) else [n.target])]
    changed = [_root(t) for t in targets if isinstance(t, (ast.Attribute, ast.Subscript))]
    changed += [_root(n.value.func) for n in ast.walk(node)
                if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                and isinstance(n.value.func, ast.Attribute)]
    binds |= {r for r in changed if r and r not in modules}
    return binds, reads


def branch_slice(nb, is_branch) -> list[str]:
    """The sources of a notebook that run its branch cells: every code cell for which
    ``is_branch(source)`` holds, whole, and before each, those top-level statements of earlier
    cells that bind or change a name the later kept code reads (followed back transitively),
    one string per cell that keeps something, in notebook order. Imports are always kept.
    ``nb``'s cells must be valid Python after IPython's own rewriting of ``%`` and ``!`` lines."""
    from IPython.core.inputtransformer2 import TransformerManager
    python = TransformerManager()                  # %magic and !shell lines -> get_ipython() calls
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    statements = []                                # (cell, text, node)
    for i, source in enumerate(cells):
        text = python.transform_cell(source)
        statements += [(i, text, node) for node in ast.parse(text).body]
    modules = {a for _, _, n in statements if isinstance(n, (ast.Import, ast.ImportFrom))
               for a in _statement(n, set())[0]}
    kept_cells = {i for i, source in enumerate(cells) if is_branch(source)}
    assert kept_cells, "no branch cell found"
    last = max(kept_cells)
    # A function reads globals when it is called, so a name is followed to every statement
    # that binds it before the last branch cell, not only the nearest one: repeat to a fixed point.
    facts = [(i, *_statement(node, modules), isinstance(node, (ast.Import, ast.ImportFrom)))
             for i, _, node in statements]
    kept: set[int] = set()
    while True:
        needed = set().union(*(facts[k][2] for k in kept))
        now = {k for k, (i, binds, _, is_import) in enumerate(facts)
               if i <= last and (i in kept_cells or is_import or binds & needed)}
        if now == kept:
            break
        kept = now
    out = []
    for i, source in enumerate(cells):
        if i in kept_cells:
            out.append(source)
            continue
        parts = ["".join(f"@{ast.get_source_segment(text, d)}\n" for d in getattr(node, "decorator_list", []))
                 + ast.get_source_segment(text, node)
                 for k, (j, text, node) in enumerate(statements) if j == i and k in kept]
        if parts:
            out.append("\n".join(parts))
    return out


def test_branch_slice_keeps_what_the_branch_needs_and_no_more():
    """On a made-up notebook: names used in functions, changed in place, shadowed by a loop."""
    sources = [
        "%matplotlib inline\nimport numpy as np\nimport matplotlib.pyplot as plt\nslow = np.ones(9)",
        "a = 1\nb = 2\n@staticmethod\ndef f(x):\n    y = a + x\n    return y\nplt.show()",
        "c = [b]\nc.append(3)\nunused = [slow]",
        "for a in range(3):\n    pass\nwith open('f') as handle:\n    pass",
        "if WEIGHTS_PRESENT:\n    print(f(1), c, [handle for handle in c])",
        "after = 1",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    got = branch_slice(nb, lambda s: "WEIGHTS_PRESENT" in s)
    assert got == [
        "import numpy as np\nimport matplotlib.pyplot as plt",
        "a = 1\nb = 2\n@staticmethod\ndef f(x):\n    y = a + x\n    return y",
        "c = [b]\nc.append(3)",
        "for a in range(3):\n    pass",             # rebinds a: kept (f reads the last a)
        sources[4],
    ], got


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.output_type == "stream" and o.name == "stdout")


@pytest.fixture(scope="session")
def torch_home(tmp_path_factory):
    """A TORCH_HOME whose hub/checkpoints holds a seeded random state dict per torchvision model."""
    from torchvision.models import get_model
    home = tmp_path_factory.mktemp("torch_home")
    folder = home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    for seed, (name, file) in enumerate(CHECKPOINTS.items()):
        torch.manual_seed(seed)
        torch.save(get_model(name, weights=None).state_dict(), folder / file)
    yield home
    shutil.rmtree(home)  # 1.3 GB


@pytest.fixture
def online(torch_home, monkeypatch):
    """This process sees the checkpoints, and any download attempt fails the test."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home))

    def no_download(url, *a, **k):
        raise AssertionError(f"featlab tried to download {url}: the cached file was not found")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    return torch_home


def test_file_names_are_torchvisions():
    from torchvision.models import get_model_weights
    for name, file in CHECKPOINTS.items():
        assert get_model_weights(name)["IMAGENET1K_V1"].url.endswith("/" + file)


def test_every_model_is_covered():
    """A model added to featlab's registry needs a checkpoint here (or a place in SHIPPED)."""
    assert sorted(fl.model_names()) == sorted([*CHECKPOINTS, *SHIPPED])


def test_every_model_is_available(online):
    assert fl.available_models() == fl.model_names()


@pytest.mark.parametrize("name", [*CHECKPOINTS, *SHIPPED])
def test_load_model_reads_the_cached_file(online, name):
    from torchvision.models import get_model_weights
    model = fl.load_model(name, device="cpu")
    if name in CHECKPOINTS:                               # the weights are the file's, exactly
        saved = torch.load(online / "hub" / "checkpoints" / CHECKPOINTS[name], weights_only=True)
        ours = model.state_dict()
        assert list(ours) == list(saved)
        assert all(torch.equal(ours[k], saved[k]) for k in saved)
        n_params = get_model_weights(name)["IMAGENET1K_V1"].meta["num_params"]
    else:
        n_params = SHIPPED[name]
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert model.featlab_name == name and not model.training
    with torch.inference_mode():
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)
    (top,) = fl.predict(model, "chelsea", topk=3)          # preprocessing and labels of `name`
    assert len(top) == 3 and all(label in fl.imagenet_labels() for label, _ in top)


def test_every_branch_is_listed():
    """Each notebook whose code depends on torchvision's weights being present is in BRANCHES."""
    found = {p.relative_to(ROOT).as_posix() for p in _notebooks()
             if any(c.cell_type == "code" and _BRANCH.search(c.source)
                    for c in nbformat.read(p, 4).cells)}
    assert found == set(BRANCHES)


@pytest.mark.parametrize("path", BRANCHES)
def test_stored_outputs_took_the_offline_path(path):
    """The committed outputs (made without the weights) show the 'not available' text and none of
    the markers, so finding the markers below proves that the other branch ran."""
    needle, markers, absent = BRANCHES[path]
    text = _stdout(_branch_cell(nbformat.read(ROOT / path, 4), needle))
    assert absent in text
    assert not [m for m in markers if re.search(m, text, re.M)]


@pytest.fixture(scope="module")
def online_kernel(torch_home):
    """One kernel for the branches of every notebook (its namespace reset before each): it sees
    the checkpoints, and a download through a proxy would fail, not succeed."""
    env = dict(os.environ, TORCH_HOME=str(torch_home), MPLBACKEND="agg")
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        env[var] = "http://127.0.0.1:9"
    env.pop("no_proxy", None), env.pop("NO_PROXY", None)
    assert {Path(p).parent for p in BRANCHES} == {Path("notebooks")}  # one working folder for all
    with kernel(ROOT / "notebooks", env) as km:
        yield km


@pytest.mark.parametrize("path", BRANCHES)
def test_notebook_runs_with_the_weights_present(online_kernel, path):
    """The notebook's branch cells (and the code they need) run in a kernel that sees the
    checkpoints and no network; the listed cell takes the weights-present path."""
    needle, markers, absent = BRANCHES[path]
    sources = branch_slice(nbformat.read(ROOT / path, 4), _BRANCH.search)
    if path in SMALLER:
        (at,) = [i for i, s in enumerate(sources) if needle in s]
        sources.insert(at, SMALLER[path])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    run_afresh(online_kernel, nb, timeout=600)  # a cell that raises fails the test here
    cell = _branch_cell(nb, needle)
    text = _stdout(cell)
    assert absent not in text, text
    stderr = [o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not stderr, f"the weights-present branch wrote to stderr: {stderr}"
    missing = [m for m in markers if not re.search(m, text, re.M)]
    assert not missing, f"the weights-present branch did not print {missing}; it printed:\n{text}"
