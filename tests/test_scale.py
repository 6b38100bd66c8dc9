"""featlab.scale: Ray Data jobs give featlab's own features (extract_folder as the reference).

One local Ray (2 CPUs) for the module; the README's job is run as written there.
"""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

import featlab as fl
from featlab import scale

ray = pytest.importorskip("ray")
import ray.data  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")

README = Path(__file__).resolve().parents[1] / "README.md"
LAYERS = ("block5", "head")
RGB_JPEGS = ["chelsea", "coffee", "rocket", "astronaut"]
GREY = ["camera", "coins", "brick", "gravel"]


def small(a: np.ndarray) -> Image.Image:
    img = Image.fromarray(a)
    img.thumbnail((120, 120))
    return img


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """12 pictures from skimage.data (RGB and grey JPEGs, PNGs, RGBA, EXIF-rotated, binary), one
    corrupt JPEG, a text file; some in a subfolder."""
    root = tmp_path_factory.mktemp("pics")
    (root / "sub").mkdir()
    for i, name in enumerate(RGB_JPEGS + GREY):
        small(getattr(data, name)()).save(root / ("sub" if i % 3 == 1 else "") / f"{name}.jpg")
    small(data.astronaut()).save(root / "astronaut.png")
    small((data.horse() * 255).astype(np.uint8)).convert("1").save(root / "horse.png")
    rgba = np.dstack([data.chelsea(), np.tile(np.linspace(0, 255, 451, dtype=np.uint8), (300, 1))])
    small(rgba).save(root / "chelsea_rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    small(data.coffee()).save(root / "coffee_rotated.jpg", exif=exif)
    (root / "broken.jpg").write_bytes((root / "chelsea.jpg").read_bytes()[:600])  # truncated
    (root / "notes.txt").write_text("not a picture")
    return root


@pytest.fixture(scope="module")
def model():
    return fl.load_model("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="module")
def reference(folder, model, tmp_path_factory):
    """featlab's own extraction of the folder: (paths, {layer: (N, D)}, {path: reason})."""
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    fl.pipeline.extract_folder(model, folder, LAYERS, out, progress=False, batch_size=8)
    paths, feats = fl.store.load_features(out)
    return paths, feats, fl.store.load_skipped(out)


@pytest.fixture(scope="module")
def cluster():
    for attempt in (1, 2):  # on a busy machine Ray's start can time out (ray-project/ray#65983)
        try:
            ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20,
                     log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def readme_job() -> str:
    section = README.read_text().split("## Beyond one machine (Ray Data)", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def job(cluster, folder, tmp_path_factory):
    """The README's job, as written there, on the test folder."""
    out = tmp_path_factory.mktemp("out")
    code = (readme_job().replace('"photos/"', repr(str(folder)))
            .replace('"feats.h5"', repr(str(out / "feats.h5")))
            .replace('"feats_parquet/"', repr(str(out / "feats_parquet"))))
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    return ns, out


def cosines(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def assert_same(paths, feats, reference):
    """``paths`` (relative) and their features equal the reference's, whatever the order."""
    ref_paths, ref_feats, _ = reference
    assert sorted(paths) == ref_paths
    order = [paths.index(p) for p in ref_paths]
    for layer in LAYERS:
        got = np.asarray(feats[layer], np.float32)[order]
        assert got.shape == ref_feats[layer].shape
        assert cosines(got, ref_feats[layer]).min() > 0.9999
        np.testing.assert_allclose(got, ref_feats[layer], rtol=1e-4, atol=1e-4)


def test_reference_is_what_the_test_assumes(folder, reference):
    paths, _, skipped = reference
    assert len(paths) == 12 and list(skipped) == ["broken.jpg"] and "truncated" in skipped["broken.jpg"]


def test_ray_job_equals_extract_folder(job, folder, reference):
    rows = job[0]["ds"].take_all()
    good = [r for r in rows if not r["error"]]
    paths = [Path(r["path"]).relative_to(folder).as_posix() for r in good]
    assert_same(paths, {layer: np.stack([r[layer] for r in good]) for layer in LAYERS}, reference)
    assert {r[layer].dtype for r in rows for layer in LAYERS} == {np.dtype("float32")}


def test_corrupt_file_gets_nan_and_the_reason_featlab_gives(job, folder, reference):
    bad = [r for r in job[0]["ds"].take_all() if r["error"]]
    assert [Path(r["path"]).name for r in bad] == ["broken.jpg"]
    assert bad[0]["error"] == reference[2]["broken.jpg"]  # the very message of extract_folder
    assert all(np.isnan(bad[0][layer]).all() and bad[0][layer].shape == reference[1][layer].shape[1:]
               for layer in LAYERS)


def test_hdf5_round_trip_is_a_featlab_file(job, folder, reference, model):
    ns, out = job
    assert ns["info"]["done"] == 12 and list(ns["info"]["skipped"]) == ["broken.jpg"]
    paths, feats = fl.store.load_features(out / "feats.h5")
    assert_same(paths, feats, reference)
    assert fl.store.load_skipped(out / "feats.h5") == reference[2]
    # featlab's own extraction sees a finished file: same settings, nothing left to do
    again = fl.pipeline.extract_folder(model, folder, LAYERS, out / "feats.h5", progress=False)
    assert (again["done"], again["skipped_earlier"], again["total"]) == (0, 1, 12)
    # and search finds each stored picture as its own best match
    scores, indices, hits = fl.search_file(out / "feats.h5", feats["head"][:3], k=1, layer="head")
    assert hits[0][0] == paths[0] and np.allclose(scores[:, 0], 1.0, atol=1e-5)
    # rows already in the file are not stored twice
    assert scale.write_hdf5(ns["ds"], out / "feats.h5", root=folder, **ns["settings"])["already"] == 13


def test_parquet_round_trip(job, folder, reference):
    ns, out = job
    paths, feats, bad = ns["paths"], ns["feats"], ns["bad"]  # the README's load_parquet line
    assert_same([Path(p).relative_to(folder).as_posix() for p in paths], feats, reference)
    assert {Path(p).name: reason for p, reason in bad.items()} == {"broken.jpg": reference[2]["broken.jpg"]}
    import pandas as pd  # plain pandas reads the same columns
    df = pd.read_parquet(out / "feats_parquet")
    assert set(df.columns) == {"path", "error", *LAYERS} and len(df) == 13


def test_image_column_and_two_stages(cluster, folder, reference):
    """Ray decodes (read_images), featlab preprocesses in CPU tasks, the model runs in an actor.
    Ray's decoding ignores EXIF orientation: that picture alone differs from featlab's."""
    names = [f"{n}.jpg" for n in RGB_JPEGS + GREY] + ["astronaut.png", "horse.png", "coffee_rotated.jpg"]
    files = [str(p) for p in sorted(folder.rglob("*")) if p.name in names]
    settings = {"model": "efficientnet_lite0", "layers": LAYERS}
    ds = (ray.data.read_images(files, mode="RGB", include_paths=True)
          .map_batches(scale.decode_batch, fn_kwargs={"model": "efficientnet_lite0"}, batch_size=4)
          .map_batches(scale.Extractor, fn_constructor_kwargs=settings, batch_size=8,
                       compute=ray.data.ActorPoolStrategy(size=1)))
    rows = ds.take_all()
    assert len(rows) == len(files) and not any(r["error"] for r in rows)
    ref_paths, ref_feats, _ = reference
    for r in rows:
        rel = Path(r["path"]).relative_to(folder).as_posix()  # read_images gives the paths as given
        cos = cosines(r["head"][None], ref_feats["head"][ref_paths.index(rel)][None])[0]
        assert (cos < 0.99) if rel == "coffee_rotated.jpg" else (cos > 0.9999), (rel, cos)


def test_bytes_column_reads_like_featlab(cluster, folder):
    """read_binary_files (cloud storage) -> the same pixels as featlab.loader, errors reported.
    Ray reads the files; decode_batch runs here, on Ray's batch."""
    ds = ray.data.read_binary_files(str(folder), include_paths=True, file_extensions=["jpg", "png"])
    batch = ds.take_batch(batch_size=100, batch_format="numpy")  # all 13 rows
    out = scale.decode_batch(batch)
    assert "bytes" not in out and out["pixels"].shape == (13, 3, 224, 224) and out["pixels"].dtype == np.uint8
    prep = fl.preprocess_for("efficientnet_lite0")
    for path, pixels, error in zip(out["path"], out["pixels"], out["error"]):
        if Path(path).name == "broken.jpg":
            assert "broken.jpg" in error and "corrupt" in error and not pixels.any()
        else:
            assert error == ""
            np.testing.assert_array_equal(pixels, fl.loader.to_uint8(path, prep).numpy())


def test_extractor_checks_its_settings():
    with pytest.raises(ValueError, match="unknown layer 'haed'.*'head'"):
        scale.Extractor(layers=("haed",), device="cpu")
    with pytest.raises(ValueError, match="clash"):
        scale.Extractor(layers=("error",), device="cpu")
    with pytest.raises(ValueError, match="precision must be one of"):
        scale.Extractor(device="cpu", precision="bf16")
    with pytest.raises(ValueError, match="column 'path'"):
        scale.decode_batch({"label": np.arange(3)})


def test_missing_ray_is_a_clear_error(monkeypatch, folder):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"pip install featlab\[scale\]"):
        scale.folder_dataset(folder)


def test_featlab_reads_parquet_without_importing_ray(job):
    """``import featlab`` does not import Ray, and load_parquet works without it."""
    code = ("import sys, featlab as fl; paths, feats, bad = fl.scale.load_parquet(sys.argv[1]); "
            "print('ray' in sys.modules, len(paths), feats['head'].shape, feats['head'].dtype, len(bad))")
    out = subprocess.run([sys.executable, "-c", code, str(job[1] / "feats_parquet")], capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "12", "(12,", "1280)", "float32", "1"]
