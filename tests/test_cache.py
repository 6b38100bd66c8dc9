import h5py
import numpy as np
import pytest
import torch

import featlab as fl
import featlab.cache as cache
from featlab.cli import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pics")
    (root / "sub").mkdir()
    for i, name in enumerate(["chelsea", "coffee", "rocket", "astronaut", "china", "flower", "brick"]):
        target = root / ("sub" if i % 2 else "") / f"{name}.jpg"
        fl.load_image(name).resize((96, 80)).save(target)
    (root / "broken.png").write_bytes(b"not a png")
    (root / "notes.txt").write_text("ignored: not an image suffix")
    return root


def test_extract_folder_matches_extract(folder, lite0, tmp_path):
    out = tmp_path / "f.h5"
    summary = cache.extract_folder(lite0, folder, ["head", "block4"], out, batch_size=3, progress=False)
    assert summary["done"] == 7 and summary["total"] == 7 and list(summary["skipped"]) == ["broken.png"]
    assert "not an image" in summary["skipped"]["broken.png"]
    paths, feats = cache.load_features(out)
    assert paths == [p for p in cache.list_images(folder) if p != "broken.png"]
    assert feats["head"].shape == (7, 1280) and feats["block4"].shape == (7, 80)
    direct = fl.extract(lite0, [folder / p for p in paths], "head")["head"].mean(dim=(2, 3))
    np.testing.assert_allclose(feats["head"], direct.cpu().numpy(), rtol=1e-4, atol=1e-5)


def test_interrupted_run_resumes_without_loss_or_duplicates(folder, lite0, tmp_path, monkeypatch):
    out = tmp_path / "f.h5"
    real = cache.extract
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(cache, "extract", flaky)
    with pytest.raises(KeyboardInterrupt):
        cache.extract_folder(lite0, folder, "head", out, batch_size=2, progress=False)
    assert cache.load_features(out)[0] == ["brick.jpg"]   # batch 1 = broken.png (skipped) + brick.jpg
    # a crash in the middle of a write leaves rows beyond `count`: they must be dropped
    with h5py.File(out, "a") as f:
        for ds in (f["paths"], f["features/head"]):
            ds.resize(ds.shape[0] + 1, axis=0)
    monkeypatch.setattr(cache, "extract", real)
    summary = cache.extract_folder(lite0, folder, "head", out, batch_size=2, progress=False)
    assert summary["done"] == 6 and summary["total"] == 7
    paths, feats = cache.load_features(out)
    assert len(paths) == len(set(paths)) == 7 and feats["head"].shape == (7, 1280)
    fresh = tmp_path / "g.h5"
    cache.extract_folder(lite0, folder, "head", fresh, batch_size=7, progress=False)
    p2, f2 = cache.load_features(fresh)
    order = [paths.index(p) for p in p2]
    np.testing.assert_allclose(feats["head"][order], f2["head"], rtol=1e-4, atol=1e-5)
    assert cache.extract_folder(lite0, folder, "head", out, progress=False)["done"] == 0


def test_mismatched_file_and_bad_layer(folder, lite0, tmp_path):
    out = tmp_path / "f.h5"
    cache.extract_folder(lite0, folder, "head", out, progress=False)
    with pytest.raises(ValueError, match="another --out"):
        cache.extract_folder(lite0, folder, "block4", out, progress=False)
    with pytest.raises(ValueError, match="unknown layer 'hed'"):
        cache.extract_folder(lite0, folder, "hed", tmp_path / "x.h5", progress=False)


def test_pool():
    f = torch.arange(8.0).view(1, 2, 2, 2)
    assert cache.pool(f, "avg").tolist() == [[1.5, 5.5]] and cache.pool(f, "max").tolist() == [[3.0, 7.0]]


def test_cli(folder, tmp_path, capsys):
    out = tmp_path / "cli.h5"
    assert main(["extract", str(folder), "--out", str(out), "--layers", "head", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "7 new, 7 in" in captured.out and "skipped broken.png" in captured.err
    assert main(["extract", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["models"]) == 0 and "ready" in capsys.readouterr().out.splitlines()[0]
