import copy
import io
import struct
import zlib

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

import featlab as fl
from featlab import extractor, loader, pipeline, store
from helpers import held_open

NAMES = ["chelsea", "coffee", "rocket", "astronaut", "china", "flower", "brick"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pics")
    (root / "sub").mkdir()
    for i, name in enumerate(NAMES):
        target = root / ("sub" if i % 2 else "") / f"{name}.jpg"
        fl.load_image(name).resize((96, 80)).save(target)
    (root / "broken.png").write_bytes(b"not a png")
    (root / "notes.txt").write_text("ignored: not an image suffix")
    return root


def cosines(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def bomb_png(width=20000, height=20000) -> bytes:
    """A valid 1-bit PNG of width × height pixels: 400 M pixels in ~50 kB (Pillow's limit is 89 M)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    z = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_extract_folder_matches_extract(folder, lite0, tmp_path):
    out = tmp_path / "f.h5"
    summary = pipeline.extract_folder(lite0, folder, ["head", "block4"], out, batch_size=3, progress=False)
    assert summary["done"] == 7 and summary["total"] == 7 and list(summary["skipped"]) == ["broken.png"]
    assert "not an image" in summary["skipped"]["broken.png"]
    assert summary["seconds"] > 0 and summary["images_per_s"] > 0
    paths, feats = store.load_features(out)
    assert paths == [p for p in loader.list_images(folder) if p != "broken.png"]
    assert feats["head"].shape == (7, 1280) and feats["block4"].shape == (7, 80)
    assert feats["head"].dtype == np.float32
    direct = fl.extract(lite0, [folder / p for p in paths], "head")["head"].mean(dim=(2, 3))
    np.testing.assert_allclose(feats["head"], direct.cpu().numpy(), rtol=1e-4, atol=1e-5)
    with h5py.File(out, "r") as f:
        a = dict(f.attrs)
    assert (a["model"], a["layers"], a["pool"], a["dtype"]) == ("efficientnet_lite0", "head,block4", "avg", "float32")
    assert a["preprocess"] == repr(fl.preprocess_for(lite0)) and "bicubic" in a["preprocess"]
    assert a["featlab_version"] == fl.__version__ and a["torch_version"] == torch.__version__
    assert a["precision"] == "float32" and a["decode"] == "pillow"


@pytest.mark.parametrize("streams", [1, 2])
def test_interrupted_run_resumes_without_loss_or_duplicates(folder, lite0, tmp_path, monkeypatch, streams):
    out = tmp_path / "f.h5"
    real = fl.FeatureExtractor.maps
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(fl.FeatureExtractor, "maps", flaky)
    with pytest.raises(KeyboardInterrupt):
        pipeline.extract_folder(lite0, folder, "head", out, batch_size=2, progress=False, streams=streams)
    written = store.load_features(out)[0]
    if streams == 1:
        assert written == ["brick.jpg", "chelsea.jpg"]  # batch 1 (broken.png skipped)
        assert list(store.load_skipped(out)) == ["broken.png"]
    else:  # two batches ran at once, either may have been interrupted: what is written is a prefix
        good = [p for p in loader.list_images(folder) if p != "broken.png"]
        assert written in ([], ["brick.jpg"]) and written == good[:len(written)]
    # a crash in the middle of a write leaves rows beyond `count`: they must be dropped
    with h5py.File(out, "a") as f:
        names = [n for n in ("paths", "features/head", "skipped/paths") if n in f]
        assert len(names) == 3 or not written  # features appear with the first written batch
        for name in names:
            f[name].resize(f[name].shape[0] + 1, axis=0)
    monkeypatch.setattr(fl.FeatureExtractor, "maps", real)
    summary = pipeline.extract_folder(lite0, folder, "head", out, batch_size=2, progress=False, streams=streams)
    assert summary["done"] == 7 - len(written) and summary["total"] == 7
    assert summary["skipped_earlier"] + len(summary["skipped"]) == 1
    if streams == 1:
        assert summary["skipped_earlier"] == 1 and summary["skipped"] == {}
    paths, feats = store.load_features(out)
    assert len(paths) == len(set(paths)) == 7 and feats["head"].shape == (7, 1280)
    fresh = tmp_path / "g.h5"
    pipeline.extract_folder(lite0, folder, "head", fresh, batch_size=7, progress=False)
    p2, f2 = store.load_features(fresh)
    order = [paths.index(p) for p in p2]
    np.testing.assert_allclose(feats["head"][order], f2["head"], rtol=1e-4, atol=1e-5)
    assert pipeline.extract_folder(lite0, folder, "head", out, progress=False)["done"] == 0


def test_bad_files_are_skipped_with_reasons_and_not_retried(lite0, tmp_path):
    root = tmp_path / "pics"
    root.mkdir()
    for name in ("chelsea", "coffee"):
        fl.load_image(name).resize((96, 80)).save(root / f"{name}.jpg")
    good = (root / "coffee.jpg").read_bytes()
    (root / "empty.jpg").write_bytes(b"")
    (root / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "text.jpg").write_text("hello, not a picture")
    (root / "bomb.png").write_bytes(bomb_png())
    nan = np.full((40, 50), 0.5, np.float32)
    nan[3, 4] = np.nan
    Image.fromarray(nan, mode="F").save(root / "nan.tif")
    out = tmp_path / "f.h5"
    s = pipeline.extract_folder(lite0, root, "head", out, batch_size=2, progress=False)
    assert s["done"] == 2 and s["total"] == 2
    reasons = s["skipped"]
    assert sorted(reasons) == ["bomb.png", "empty.jpg", "nan.tif", "text.jpg", "truncated.jpg"]
    assert "decompression bomb" in reasons["bomb.png"] and "MAX_IMAGE_PIXELS" in reasons["bomb.png"]
    assert "empty (0 bytes)" in reasons["empty.jpg"]
    assert "corrupt or truncated" in reasons["truncated.jpg"]
    assert "not an image" in reasons["text.jpg"]
    assert "NaN" in reasons["nan.tif"]
    assert store.load_skipped(out) == reasons
    again = pipeline.extract_folder(lite0, root, "head", out, progress=False)
    assert again["done"] == 0 and again["skipped"] == {} and again["skipped_earlier"] == 5
    (root / "empty.jpg").write_bytes(good)  # the user fixes one file
    assert pipeline.extract_folder(lite0, root, "head", out, progress=False)["done"] == 0
    retried = pipeline.extract_folder(lite0, root, "head", out, progress=False, retry_skipped=True)
    assert retried["done"] == 1 and len(retried["skipped"]) == 4 and retried["skipped_earlier"] == 0
    assert sorted(store.load_skipped(out)) == ["bomb.png", "nan.tif", "text.jpg", "truncated.jpg"]
    assert store.load_features(out)[0] == ["chelsea.jpg", "coffee.jpg", "empty.jpg"]


def test_second_writer_is_told_plainly(folder, lite0, tmp_path):
    out = tmp_path / "busy.h5"
    pipeline.extract_folder(lite0, folder, "head", out, progress=False)
    with held_open(out):
        with pytest.raises(store.FileInUseError, match="being written by another run.*another --out"):
            pipeline.extract_folder(lite0, folder, "head", out, progress=False)
    assert pipeline.extract_folder(lite0, folder, "head", out, progress=False)["done"] == 0  # free again


def test_bad_arguments_are_refused_clearly(folder, lite0, tmp_path):
    out = tmp_path / "f.h5"
    with pytest.raises(ValueError, match="batch_size must be a positive integer.*got 0"):
        pipeline.extract_folder(lite0, folder, "head", out, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="dtype must be one of"):
        pipeline.extract_folder(lite0, folder, "head", out, dtype="int8", progress=False)
    with pytest.raises(ValueError, match="precision must be one of"):
        pipeline.extract_folder(lite0, folder, "head", out, precision="bf16", progress=False)
    with pytest.raises(ValueError, match="pooling must be one of"):
        pipeline.extract_folder(lite0, folder, "head", out, pooling="mean", progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        next(loader.load_batches(folder, ["chelsea.jpg"], fl.preprocess_for(lite0), 0))
    assert not out.exists() or store.load_features(out)[0] == []


def test_mismatched_file_and_bad_layer(folder, lite0, tmp_path):
    out = tmp_path / "f.h5"
    pipeline.extract_folder(lite0, folder, "head", out, progress=False)
    with pytest.raises(ValueError, match="layers: file has 'head', this run 'block4'.*another --out"):
        pipeline.extract_folder(lite0, folder, "block4", out, progress=False)
    with pytest.raises(ValueError, match="dtype: file has 'float32', this run 'float16'"):
        pipeline.extract_folder(lite0, folder, "head", out, dtype="float16", progress=False)
    with pytest.raises(ValueError, match="unknown layer 'hed'"):
        pipeline.extract_folder(lite0, folder, "hed", tmp_path / "x.h5", progress=False)
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(OSError, match="not an HDF5 file"):
        pipeline.extract_folder(lite0, folder, "head", tmp_path / "text.h5", progress=False)


def test_float16_storage_agrees_with_float32(folder, lite0, tmp_path):
    pipeline.extract_folder(lite0, folder, "head", tmp_path / "a.h5", progress=False)
    pipeline.extract_folder(lite0, folder, "head", tmp_path / "b.h5", dtype="float16", progress=False)
    p32, f32 = store.load_features(tmp_path / "a.h5")
    p16, f16 = store.load_features(tmp_path / "b.h5")
    assert p32 == p16 and f16["head"].dtype == np.float16
    assert cosines(f32["head"], f16["head"]).min() > 0.9999
    s32 = fl.cosine_similarity(torch.from_numpy(f32["head"])).fill_diagonal_(-1).argmax(1)
    s16 = fl.cosine_similarity(torch.from_numpy(f16["head"].astype(np.float32))).fill_diagonal_(-1).argmax(1)
    assert torch.equal(s32, s16)  # same nearest neighbour for every picture


def test_bfloat16_on_the_cpu_agrees_with_float32(folder, lite0, tmp_path):
    pipeline.extract_folder(lite0, folder, "head", tmp_path / "a.h5", progress=False)
    fast = pipeline.extract_folder(lite0, folder, "head", tmp_path / "b.h5", progress=False,
                                precision="bfloat16", channels_last=True)
    (p32, f32), (pbf, fbf) = store.load_features(tmp_path / "a.h5"), store.load_features(tmp_path / "b.h5")
    assert p32 == pbf and fast["done"] == 7
    assert cosines(f32["head"], fbf["head"]).min() > 0.99    # the bound the docstring states
    assert not torch.equal(torch.from_numpy(f32["head"]), torch.from_numpy(fbf["head"]))  # it ran in bf16
    with h5py.File(tmp_path / "b.h5") as f:
        assert f.attrs["precision"] == "bfloat16"


def test_fast_decode_reads_large_jpegs_at_reduced_scale(lite0, tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    for name in ("chelsea", "coffee", "astronaut"):
        fl.load_image(name).resize((1200, 900)).save(root / f"{name}.jpg", quality=90)
    fl.load_image("rocket").resize((1200, 900)).save(root / "rocket.png")
    small = fl.load_image(root / "chelsea.jpg", draft=256)
    assert small.size == (600, 450)  # 1/2 scale: 1/4 would give a short side of 225 < 256
    assert fl.load_image(root / "rocket.png", draft=256).size == (1200, 900)  # not a JPEG: untouched
    exact = pipeline.extract_folder(lite0, root, "head", tmp_path / "a.h5", progress=False)
    fast = pipeline.extract_folder(lite0, root, "head", tmp_path / "b.h5", progress=False, fast_decode=True)
    assert exact["done"] == fast["done"] == 4
    (pa, fa), (pb, fb) = store.load_features(tmp_path / "a.h5"), store.load_features(tmp_path / "b.h5")
    assert pa == pb
    cos = cosines(fa["head"], fb["head"])
    assert cos.min() > 0.99                                          # the bound the docstring states
    png = pa.index("rocket.png")
    assert cos[png] > 1 - 1e-6 and (np.delete(cos, png) < 1 - 1e-6).all()  # only the JPEGs change
    with h5py.File(tmp_path / "b.h5") as f:
        assert f.attrs["decode"] == "pillow-draft"


def test_nan_features_stop_the_run_before_writing(folder, lite0, tmp_path):
    broken = copy.deepcopy(lite0)
    with torch.no_grad():
        broken.bn2.weight[0] = float("nan")
    out = tmp_path / "nan.h5"
    with pytest.raises(ValueError, match="NaN or infinite features.*Nothing of this batch was written"):
        pipeline.extract_folder(broken, folder, "head", out, progress=False)
    assert store.load_features(out)[0] == []


def test_nan_inputs_are_refused():
    x = torch.zeros(2, 3, 32, 32)
    x[1, 0, 5, 5] = float("nan")
    torch.manual_seed(0)
    from torchvision.models import resnet18
    with pytest.raises(ValueError, match="1 NaN or infinite value"):
        fl.extract(resnet18().eval(), x, "layer1")
    arr = np.full((8, 8), 0.5)
    arr[0, 0] = np.nan
    with pytest.raises(fl.ImageError, match="NaN"):
        fl.load_image(arr)


def layouts_seen(monkeypatch):
    """Records, at each forward pass of extract_folder, whether the input and the model's
    first convolution were channels_last (NHWC) or not."""
    real, seen = fl.FeatureExtractor.maps, []
    nhwc = torch.channels_last

    def spy(extractor, x):
        model = extractor.model  # the model the forward pass runs (a copy, for channels_last)
        seen.append((x.is_contiguous(memory_format=nhwc) and not x.is_contiguous(),
                     model.conv_stem.weight.is_contiguous(memory_format=nhwc) and not model.conv_stem.weight.is_contiguous()))
        return real(extractor, x)

    monkeypatch.setattr(fl.FeatureExtractor, "maps", spy)
    return seen


@pytest.mark.parametrize("streams", [1, 2])
def test_channels_last_gives_the_same_features_and_restores_the_model(folder, lite0, tmp_path, monkeypatch, streams):
    seen = layouts_seen(monkeypatch)
    pipeline.extract_folder(lite0, folder, "head", tmp_path / "a.h5", progress=False, channels_last=False,
                         streams=streams)
    assert seen and set(seen) == {(False, False)}         # NCHW: input and weights
    seen.clear()
    pipeline.extract_folder(lite0, folder, "head", tmp_path / "b.h5", progress=False, streams=streams)  # default
    assert seen and set(seen) == {(True, True)}           # NHWC: input and weights
    np.testing.assert_allclose(store.load_features(tmp_path / "a.h5")[1]["head"],
                               store.load_features(tmp_path / "b.h5")[1]["head"], rtol=1e-4, atol=1e-5)
    assert lite0.conv_stem.weight.is_contiguous()
    assert all(not t.is_inference() for t in lite0.parameters())


def test_streams_give_the_same_features_and_leave_model_and_threads_as_they_were(folder, lite0, tmp_path,
                                                                                   monkeypatch):
    import threading
    before = torch.get_num_threads()
    real, seen = fl.FeatureExtractor.maps, []

    def spy(*a, **k):  # the thread count where the forward pass runs: in a stream's own thread
        seen.append((threading.get_ident(), torch.get_num_threads()))
        return real(*a, **k)

    monkeypatch.setattr(fl.FeatureExtractor, "maps", spy)
    runs = {}
    for streams, batch_size in ((1, 16), (2, 16), (2, 3), (3, 2)):
        out = tmp_path / f"s{streams}_{batch_size}.h5"
        seen.clear()
        summary = pipeline.extract_folder(lite0, folder, "head", out, batch_size=batch_size, progress=False,
                                       streams=streams)
        share = before if streams == 1 else max(1, loader._cores() // streams)  # OpenMP's count is per thread
        assert seen and {n for _, n in seen} == {share}, (streams, seen)
        assert ({t for t, _ in seen} == {threading.get_ident()}) == (streams == 1)
        assert summary["done"] == 7 and list(summary["skipped"]) == ["broken.png"]
        assert "not an image" in summary["skipped"]["broken.png"] or "corrupt" in summary["skipped"]["broken.png"]
        runs[streams, batch_size] = store.load_features(out)
        with h5py.File(out) as f:
            assert f.attrs["streams"] == str(streams)
        assert torch.get_num_threads() == before          # each stream's share of the cores is undone
        assert all(not m._forward_hooks for m in lite0.modules())
        assert lite0.conv_stem.weight.is_contiguous() and not lite0.training
    paths, feats = runs[1, 16]
    assert paths == sorted(paths)
    for key, (p, f) in runs.items():
        assert p == paths, key                            # in order, whatever stream finished first
        np.testing.assert_allclose(f["head"], feats["head"], rtol=1e-4, atol=1e-5)


def test_a_model_that_cannot_be_copied_runs_one_stream(folder, lite0, tmp_path):
    import threading
    lite0.lock = threading.Lock()                     # deepcopy fails on a lock
    try:
        with pytest.warns(UserWarning, match="cannot be copied .*one stream"):
            summary = pipeline.extract_folder(lite0, folder, "head", tmp_path / "a.h5", progress=False, streams=2)
    finally:
        del lite0.lock
    assert summary["done"] == 7
    with h5py.File(tmp_path / "a.h5") as f:
        assert f.attrs["streams"] == "1"


def test_bad_streams_are_refused(folder, lite0, tmp_path, monkeypatch):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="streams must be a positive integer"):
            pipeline.extract_folder(lite0, folder, "head", tmp_path / "x.h5", progress=False, streams=bad)
    monkeypatch.setattr(fl.pipeline, "model_device", lambda m: torch.device("cuda", 0))
    with pytest.raises(ValueError, match="streams=2 runs pipelines side by side on CPU cores"):
        pipeline.extract_folder(lite0, folder, "head", tmp_path / "x.h5", progress=False, streams=2)
    assert not (tmp_path / "x.h5").exists()


def test_uint8_path_equals_preprocess(folder, lite0):
    prep = fl.preprocess_for(lite0)
    for name in ("chelsea.jpg", "sub/coffee.jpg"):
        x = loader.normalize(loader.to_uint8(folder / name, prep)[None], prep)
        assert torch.equal(x, prep(folder / name))
        assert torch.equal(loader.normalize(loader.to_uint8(folder / name, prep)[None], prep, channels_last=True), x)


def test_load_batches_in_order_with_or_without_threads(folder, lite0):
    prep = fl.preprocess_for(lite0)
    paths = loader.list_images(folder)
    runs = [list(loader.load_batches(folder, paths, prep, 3, workers=w)) for w in (0, 3)]
    for batches in runs:
        assert [p for b in batches for p in b.paths] == [p for p in paths if p != "broken.png"]
        assert [p for b in batches for p in b.skipped] == ["broken.png"]
    torch.testing.assert_close(torch.cat([b.x for b in runs[0]]), torch.cat([b.x for b in runs[1]]))


def test_jpeg_decoding_path_agrees_with_pillow(folder, lite0, tmp_path):
    """The GPU route (decode_jpeg, resize on tensors) run on the CPU: same files, close features."""
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    pipeline.extract_folder(lite0, folder, "head", a, progress=False)
    s = pipeline.extract_folder(lite0, folder, "head", b, progress=False, jpeg_on_device=True)
    assert s["done"] == 7 and list(s["skipped"]) == ["broken.png"]
    (pa, fa), (pb, fb) = store.load_features(a), store.load_features(b)
    assert pa == pb and cosines(fa["head"], fb["head"]).min() > 0.99


def jpeg_bytes(mode="RGB", **save) -> bytes:
    buf = io.BytesIO()
    fl.load_image("chelsea").resize((64, 48)).convert(mode).save(buf, "JPEG", **save)
    return buf.getvalue()


def test_jpeg_header():
    h = loader.jpeg_header(jpeg_bytes())
    assert (h.height, h.width, h.components, h.baseline, h.orientation) == (48, 64, 3, True, 1)
    assert loader._fits_nvjpeg(jpeg_bytes()) and loader._fits_nvjpeg(jpeg_bytes("L"))
    assert not loader.jpeg_header(jpeg_bytes(progressive=True)).baseline
    assert loader.jpeg_header(jpeg_bytes("CMYK")).components == 4
    exif = Image.Exif()
    exif[0x0112] = 6
    assert loader.jpeg_header(jpeg_bytes(exif=exif.tobytes())).orientation == 6
    for refused in (jpeg_bytes(progressive=True), jpeg_bytes("CMYK"), jpeg_bytes(exif=exif.tobytes()),
                    jpeg_bytes()[:-100], jpeg_bytes() + b"trailing video", b"", b"GIF89a"):
        assert not loader._fits_nvjpeg(refused)


def test_pool():
    f = torch.arange(8.0).view(1, 2, 2, 2)
    assert extractor.pool(f, "avg").tolist() == [[1.5, 5.5]] and extractor.pool(f, "max").tolist() == [[3.0, 7.0]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_extract_folder_on_cuda_agrees_with_cpu(folder, lite0, tmp_path):
    gpu = fl.load_model("efficientnet_lite0", device="cuda")
    pipeline.extract_folder(lite0, folder, "head", tmp_path / "cpu.h5", progress=False)
    fast = pipeline.extract_folder(gpu, folder, "head", tmp_path / "gpu.h5", progress=False)  # bf16, nvJPEG
    exact = pipeline.extract_folder(gpu, folder, "head", tmp_path / "gpu32.h5", progress=False,
                                 precision="float32", channels_last=False, jpeg_on_device=False)
    assert fast["done"] == exact["done"] == 7
    (p0, f0), (p1, f1), (p2, f2) = (store.load_features(tmp_path / f) for f in ("cpu.h5", "gpu.h5", "gpu32.h5"))
    assert p0 == p1 == p2
    assert cosines(f2["head"], f0["head"]).min() > 0.9999  # float32 (TF32 convolutions), Pillow
    assert cosines(f1["head"], f0["head"]).min() > 0.98     # bfloat16, nvJPEG (H100: 0.989 at worst)
    assert gpu.conv_stem.weight.is_contiguous()


def test_a_jpeg_the_gpu_decoder_refuses_goes_to_pillow(folder, lite0, monkeypatch):
    prep = fl.preprocess_for(lite0)
    monkeypatch.setattr(loader, "_decode_jpegs", lambda datas, prep, device: [None] * len(datas))
    paths = ["chelsea.jpg", "broken.png", "sub/coffee.jpg"]
    (batch,) = loader.load_batches(folder, paths, prep, 4, jpeg_on_device=True, workers=0)
    assert batch.paths == ["chelsea.jpg", "sub/coffee.jpg"] and list(batch.skipped) == ["broken.png"]
    assert torch.equal(batch.x, prep([folder / p for p in batch.paths]))


def test_default_batch_size_is_four_per_thread_of_a_stream(monkeypatch):
    monkeypatch.setattr(loader, "_cores", lambda: 2)
    assert loader.default_streams("cpu") == 2 and loader.default_batch_size("cpu", 2) == 4
    assert loader.default_batch_size("cpu", 1) == 8 and loader.default_batch_size("cuda") == 256
    monkeypatch.setattr(loader, "_cores", lambda: 16)
    assert loader.default_batch_size("cpu", 2) == 32
    monkeypatch.setattr(loader, "_cores", lambda: 1)
    assert loader.default_streams("cpu") == 1 and loader.default_batch_size("cpu", 1) == 4
    assert loader.default_streams("cuda") == 1
