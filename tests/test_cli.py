import h5py
import pytest
import torch

import featlab as fl
from featlab import store
from featlab.cli import main
from helpers import held_open


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_pics")
    for name in ["chelsea", "coffee", "rocket"]:
        fl.load_image(name).resize((96, 80)).save(root / f"{name}.jpg")
    (root / "broken.png").write_bytes(b"not a png")
    return root


@pytest.fixture(autouse=True)
def on_cpu(monkeypatch):
    monkeypatch.setenv("FEATLAB_DEVICE", "cpu")


def test_extract_summary_and_rerun(folder, tmp_path, capsys):
    out = tmp_path / "cli.h5"
    assert main(["extract", str(folder), "--out", str(out), "--batch-size", "2"]) == 0
    captured = capsys.readouterr()
    last = captured.out.strip().splitlines()[-1]
    assert last.startswith("3 new, 3 total, 1 skipped, ") and last.endswith(f"images/s -> {out}")
    assert "skipped broken.png: " in captured.err and "not an image" in captured.err
    assert "featlab extract" in captured.err and "img" in captured.err  # the progress bar
    assert main(["extract", str(folder), "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(
        "0 new, 3 total, 0 skipped (1 skipped by earlier runs, not retried: --retry-skipped), ")
    assert main(["extract", str(folder), "--out", str(out), "--no-progress", "--retry-skipped"]) == 0
    assert capsys.readouterr().out.startswith("0 new, 3 total, 1 skipped, ")


def test_options_reach_the_file(folder, tmp_path, capsys):
    out = tmp_path / "opts.h5"
    assert main(["extract", str(folder), "--out", str(out), "--layers", "block4,head", "--pool", "none",
                 "--dtype", "float16", "--workers", "0", "--streams", "1", "--device", "cpu", "--no-progress"]) == 0
    paths, feats = store.load_features(out)
    with h5py.File(out) as f:
        assert f.attrs["streams"] == "1"
    assert len(paths) == 3 and feats["head"].shape == (3, 1280 * 7 * 7) and feats["block4"].dtype.name == "float16"


def test_speed_options_reach_the_file(folder, tmp_path, capsys, monkeypatch):
    real, inputs = fl.FeatureExtractor.maps, []
    monkeypatch.setattr(fl.FeatureExtractor, "maps", lambda ex, x: inputs.append(x) or real(ex, x))
    out = tmp_path / "fast.h5"
    assert main(["extract", str(folder), "--out", str(out), "--precision", "bfloat16", "--no-channels-last",
                 "--fast-decode", "--no-progress"]) == 0
    with h5py.File(out) as f:
        assert (f.attrs["precision"], f.attrs["decode"]) == ("bfloat16", "pillow-draft")
    assert inputs and all(x.is_contiguous() for x in inputs)  # NCHW, as asked (the default is NHWC)


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "--batch-size: must be a whole number of at least 1; got '0'"),
    (["--batch-size", "-3"], "--batch-size: must be a whole number of at least 1"),
    (["--workers", "-1"], "--workers: must be a whole number >= 0"),
    (["--streams", "0"], "--streams: must be a whole number of at least 1"),
    (["--pool", "mean"], "invalid choice: 'mean'"),
    (["--dtype", "int8"], "invalid choice: 'int8'"),
])
def test_bad_options_are_refused_clearly(folder, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        main(["extract", str(folder), "--out", str(tmp_path / "x.h5"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "range()" not in err and "Traceback" not in err


def test_errors_are_one_line_not_a_traceback(folder, tmp_path, capsys):
    out = tmp_path / "cli.h5"

    def one_line(argv, text):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("featlab: error: ") and err.count("\n") == 1 and err.endswith("\n"), err
        assert text in err

    one_line(["extract", str(tmp_path / "nowhere"), "--out", str(out)], "is not a folder")
    one_line(["extract", str(folder), "--out", str(out), "--layers", "hed", "--no-progress"], "unknown layer 'hed'")
    if not torch.cuda.is_available():
        one_line(["extract", str(folder), "--out", str(out), "--device", "cuda"], "sees no CUDA GPU")


def test_second_run_on_the_same_file(folder, tmp_path, capsys):
    out = tmp_path / "busy.h5"
    with held_open(out):
        assert main(["extract", str(folder), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"featlab: error: '{out}' is being written by another run")


def test_models_command(capsys):
    assert main(["models"]) == 0 and "ready" in capsys.readouterr().out.splitlines()[0]
