import h5py
import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

import featlab as fl
from featlab import store
from featlab.cli import main
from featlab.search import search, search_file


def reference(features, queries, k):
    """Brute force: sklearn's cosine matrix in float64, sorted best first, lower row on ties."""
    sim = cosine_similarity(np.asarray(queries, np.float64), np.asarray(features, np.float64))
    idx = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sim, idx, axis=1), idx


def random_data(n=203, d=16, q=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.standard_normal((q, d)).astype(np.float32)


def write_file(path, layers, paths, count):
    """A feature file in extract_folder's layout; rows past ``count`` are an interrupted batch."""
    with h5py.File(path, "w") as f:
        f.attrs["count"] = count
        f.create_dataset("paths", data=np.array(paths, dtype=object), dtype=h5py.string_dtype())
        g = f.create_group("features")
        for name, a in layers.items():
            g.create_dataset(name, data=a)


@pytest.mark.parametrize("chunk_rows", [1, 7, 50, 203, 10_000])  # 203 rows: no chunk size divides it
def test_matches_sklearn_across_chunks(chunk_rows):
    x, q = random_data()
    ref_s, ref_i = reference(x, q, 10)
    for features in (x, torch.from_numpy(x)):
        s, i = search(features, q, k=10, chunk_rows=chunk_rows)
        assert s.shape == i.shape == (5, 10) and s.dtype == np.float32 and i.dtype == np.int64
        np.testing.assert_array_equal(i, ref_i)
        np.testing.assert_allclose(s, ref_s, atol=1e-5)
    s1, i1 = search(x, q[0], k=3, chunk_rows=chunk_rows)  # one (D,) query
    np.testing.assert_array_equal(i1, ref_i[:1, :3])


def test_float16_storage_is_searched_in_float32():
    x, q = random_data(n=120)
    x16 = x.astype(np.float16)
    ref_s, ref_i = reference(x16.astype(np.float32), q, 7)
    s, i = search(x16, q, k=7, chunk_rows=32)
    assert s.dtype == np.float32
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(s, ref_s, atol=1e-5)


@pytest.mark.parametrize("chunk_rows", [2, 3, 100])
def test_ties_list_the_lower_row_first(chunk_rows):
    x = np.tile(np.eye(3, dtype=np.float32), (4, 1))  # rows 0, 3, 6, 9 are the same direction
    x[6] *= 5  # a longer vector, same cosine
    s, i = search(x, np.array([[2.0, 0, 0]]), k=6, chunk_rows=chunk_rows)
    np.testing.assert_array_equal(i, [[0, 3, 6, 9, 1, 2]])
    np.testing.assert_array_equal(s, [[1, 1, 1, 1, 0, 0]])


def test_file_search_ignores_uncommitted_rows(tmp_path):
    x, q = random_data(n=60)
    tail = np.repeat(q[:1], 5, axis=0)  # an interrupted batch that would win every search
    path = tmp_path / "f.h5"
    names = [f"img{j:03d}.jpg" for j in range(65)]
    write_file(path, {"head": np.concatenate([x, tail]).astype(np.float16)}, names, count=60)
    ref_s, ref_i = reference(x.astype(np.float16).astype(np.float32), q, 4)
    s, i, hits = search_file(path, q, k=4)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(s, ref_s, atol=1e-5)
    assert hits == [[names[j] for j in row] for row in ref_i]
    with store.open_features(path) as ff:
        assert ff.layers == ["head"] and ff.paths == names[:60] and ff.count == 60
        view = ff.features["head"]
        assert view.shape == (60, 16) and len(view) == 60 and view.dtype == np.float16
        np.testing.assert_array_equal(view[:], x.astype(np.float16))
        np.testing.assert_array_equal(view[55:1000], x[55:].astype(np.float16))
        np.testing.assert_array_equal(view[-1], x[59].astype(np.float16))
        chunks = list(ff.iter_chunks("head", rows=25))
        assert [start for start, _ in chunks] == [0, 25, 50] and [len(c) for _, c in chunks] == [25, 25, 10]
        with pytest.raises(IndexError):
            view[60]
        s2, i2 = search(view, q, k=4, chunk_rows=7)
        np.testing.assert_array_equal(i2, ref_i)
    with pytest.raises(ValueError, match="k = 61 is more than the N = 60 rows"):
        search_file(path, q, k=61)


def test_an_hdf5_dataset_is_never_read_whole(tmp_path, monkeypatch):
    x, q = random_data(n=100)
    path = tmp_path / "big.h5"
    write_file(path, {"head": x}, [f"{j}.jpg" for j in range(100)], count=100)
    rows_read = []
    original = h5py.Dataset.__getitem__

    def spy(self, key):
        out = original(self, key)
        if self.name == "/features/head":
            rows_read.append(len(out))
        return out

    monkeypatch.setattr(h5py.Dataset, "__getitem__", spy)
    ref_s, ref_i = reference(x, q, 5)
    with h5py.File(path, "r") as f:  # a plain h5py dataset
        s, i = search(f["features/head"], q, k=5, chunk_rows=16)
    np.testing.assert_array_equal(i, ref_i)
    assert len(rows_read) == 7 and max(rows_read) <= 16 and sum(rows_read) == 100
    rows_read.clear()
    _, i, _ = search_file(path, q, k=5, chunk_rows=30)  # through open_features
    np.testing.assert_array_equal(i, ref_i)
    assert rows_read == [30, 30, 30, 10]


def test_faiss_backend_equals_torch_backend(tmp_path):
    pytest.importorskip("faiss")
    x, q = random_data(n=500, d=32, q=25)  # 25 queries: faiss takes its BLAS path (>= 20)
    for chunk_rows in (64, 1000):
        st, it = search(x, q, k=8, chunk_rows=chunk_rows, backend="torch")
        sf, i_f = search(x, q, k=8, chunk_rows=chunk_rows, backend="faiss")
        np.testing.assert_array_equal(i_f, it)
        np.testing.assert_allclose(sf, st, atol=1e-5)
    np.testing.assert_array_equal(it, reference(x, q, 8)[1])
    sa, ia = search(x, q, k=8, backend="auto")
    np.testing.assert_array_equal(ia, it)


def test_errors_say_what_is_wrong(monkeypatch, tmp_path):
    x, q = random_data(n=10)
    with pytest.raises(ValueError, match=r"D = 16 like the features; got shape \(5, 15\)"):
        search(x, q[:, :15])
    with pytest.raises(ValueError, match="k must be a whole number >= 1"):
        search(x, q, k=0)
    with pytest.raises(ValueError, match="k = 11 is more than the N = 10 rows"):
        search(x, q, k=11)
    bad = q.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="queries contain NaN"):
        search(x, bad)
    with pytest.raises(ValueError, match=r"features must be \(N, D\)"):
        search(x[0], q)
    with pytest.raises(ValueError, match="backend must be one of"):
        search(x, q, backend="annoy")
    with pytest.raises(ValueError, match="chunk_rows must be"):
        search(x, q, chunk_rows=0)
    monkeypatch.setitem(__import__("sys").modules, "faiss", None)  # faiss not installed
    with pytest.raises(ImportError, match=r"pip install featlab\[search\]"):
        search(x, q, backend="faiss")
    path = tmp_path / "two.h5"
    write_file(path, {"block4": x, "head": x}, [f"{j}.jpg" for j in range(10)], count=10)
    with pytest.raises(ValueError, match="holds several layers \\(block4, head\\)"):
        search_file(path, q)
    with pytest.raises(ValueError, match="unknown layer 'hed' .* it holds: block4, head"):
        search_file(path, q, layer="hed")
    with pytest.raises(FileNotFoundError, match="no such feature file"):
        search_file(tmp_path / "nowhere.h5", q)
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        search_file(tmp_path / "text.h5", q)
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = x
    with pytest.raises(ValueError, match="not a featlab feature file"):
        search_file(tmp_path / "other.h5", q)


# --- the command line, end to end on a tiny folder -------------------------------------------

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("search_pics")
    for name in ["chelsea", "coffee", "rocket", "astronaut"]:
        fl.load_image(name).resize((96, 80)).save(root / f"{name}.jpg")
    return root


@pytest.fixture(autouse=True)
def on_cpu(monkeypatch):
    monkeypatch.setenv("FEATLAB_DEVICE", "cpu")


@pytest.fixture(scope="module")
def feats(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("search_h5") / "f.h5"
    assert main(["extract", str(folder), "--out", str(out), "--layers", "block4,head", "--dtype", "float16",
                 "--no-progress"]) == 0
    return out


def table(text):
    """{query: [(rank, score, path), ...]} from the printed tables."""
    out, query = {}, None
    for line in text.splitlines():
        if line.startswith("query "):
            query = line[len("query "):]
            out[query] = []
        elif line.strip() and not line.strip().startswith("rank"):
            rank, score, path = line.split()
            out[query].append((int(rank), float(score), path))
    return out


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_cli_finds_the_query_itself_first(folder, feats, capsys, backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    queries = [str(folder / "coffee.jpg"), str(folder / "rocket.jpg")]
    assert main(["search", str(feats), *queries, "-k", "3", "--layer", "head", "--backend", backend]) == 0
    hits = table(capsys.readouterr().out)
    assert list(hits) == queries
    for query, rows in hits.items():
        assert [r[0] for r in rows] == [1, 2, 3]
        assert rows[0][2] == query.rsplit("/", 1)[-1] and rows[0][1] == pytest.approx(1.0, abs=1e-3)
        assert rows[1][1] < 0.99 and rows[1][1] >= rows[2][1]
    # the printed scores are fl.search's on the stored features and fl.extract's query vectors
    paths, stored = store.load_features(feats)
    model = fl.load_model("efficientnet_lite0", device="cpu")
    q = fl.pool(fl.extract(model, [folder / "coffee.jpg"], "head")["head"], "avg")
    s, i = fl.search(stored["head"], q, k=3)
    assert [paths[j] for j in i[0]] == [r[2] for r in hits[queries[0]]]
    np.testing.assert_allclose(s[0], [r[1] for r in hits[queries[0]]], atol=1e-4)


def test_cli_errors_are_one_line(folder, feats, tmp_path, capsys):
    q = str(folder / "chelsea.jpg")
    cases = [
        ([str(tmp_path / "nowhere.h5"), q], "no such feature file"),
        ([str(folder / "chelsea.jpg"), q], "is not an HDF5 file"),
        ([str(feats), q], "holds several layers (block4, head)"),
        ([str(feats), q, "--layer", "hed"], "unknown layer 'hed'"),
        ([str(feats), str(tmp_path / "missing.jpg"), "--layer", "head"], "no such image file"),
        ([str(feats), q, "--layer", "head", "-k", "9"], "k = 9 is more than the N = 4 rows"),
    ]
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    cases.append(([str(feats), str(tmp_path / "broken.jpg"), "--layer", "head"], "is not an image PIL can read"))
    for args, message in cases:
        assert main(["search", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("featlab: error: ") and message in err and "Traceback" not in err, err
