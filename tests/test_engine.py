"""The extraction engine: settings checked once, one feature extractor, model facts in the registry.

References are independent of featlab: torchvision's create_feature_extractor, plain forward
hooks and torch's own pooling, and the shapes of a real forward pass.
"""
import copy

import h5py
import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet18, vgg16
from torchvision.models.feature_extraction import create_feature_extractor

import featlab as fl
from featlab.settings import ExtractSettings, SettingsError

NAMES = ["chelsea", "coffee", "rocket", "astronaut", "brick"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("pics")
    for name in NAMES:
        fl.load_image(name).resize((160, 120)).save(root / f"{name}.jpg", quality=90)
    fl.load_image("coffee").resize((900, 600)).save(root / "big.jpg", quality=90)  # draft mode applies
    return root


@pytest.fixture(scope="module")
def rn18():
    torch.manual_seed(0)
    return resnet18().eval()


# --- settings -------------------------------------------------------------------------------

BAD = [("layers", ()), ("layers", ("head", 3)), ("model", ""), ("pooling", "mean"), ("batch_size", 0),
       ("batch_size", 2.5), ("batch_size", True), ("precision", "bf16"), ("channels_last", "yes"),
       ("fast_decode", 1), ("jpeg_on_device", "auto"), ("dtype", "int8"), ("streams", 0),
       ("streams", -1), ("workers", -1), ("workers", 1.5), ("device", "gpu")]


@pytest.mark.parametrize("name, value", BAD)
def test_each_bad_setting_is_one_line_naming_it(name, value):
    with pytest.raises(SettingsError) as e:
        ExtractSettings(**{name: value})
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith(f"{name} must be ") and f"got {value!r}" in text
    assert "Pass " in text  # how to fix it


def test_settings_resolve_per_device_and_refuse_what_cannot_go_together():
    s = ExtractSettings(layers="head").resolved("cpu")
    assert s.layers == ("head",) and s.precision == "float32" and s.streams >= 1 and s.batch_size >= 1
    assert s.jpeg_on_device is False and s.decode == "pillow"
    with pytest.raises(SettingsError, match="^streams=2 runs pipelines side by side on CPU cores.*streams=1"):
        ExtractSettings(streams=2).resolved("cuda")
    meta, info = ExtractSettings(model="m", layers=("a", "b"), precision="bfloat16", fast_decode=True,
                                 channels_last=False).resolved("cpu").file_attrs(fl.preprocess_for("efficientnet_lite0"))
    back = ExtractSettings.from_file_attrs({**meta, **info, "precision": "float32,bfloat16"})
    assert (back.model, back.layers, back.precision, back.fast_decode, back.channels_last) == (
        "m", ("a", "b"), "bfloat16", True, False)  # the most recent run's precision


def test_extract_folder_and_cli_refuse_a_bad_setting_before_writing(folder, lite0, tmp_path, capsys):
    out = tmp_path / "f.h5"
    with pytest.raises(SettingsError, match="^pooling must be one of"):
        fl.extract_folder(lite0, folder, "head", out, pooling="mean", progress=False)
    with pytest.raises(SettingsError, match="^layers must be"):
        fl.extract_folder(lite0, folder, [], out, progress=False)
    assert not out.exists()
    from featlab.cli import main
    assert main(["extract", str(folder), "--out", str(out), "--layers", "head,", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("featlab: error: layers must be") and err.count("\n") == 1
    assert not out.exists()


# --- one feature extractor ------------------------------------------------------------------

def reference_pool(t, how):
    return {"avg": t.mean(dim=(2, 3)), "max": t.amax(dim=(2, 3)), "none": t.flatten(1)}[how]


@pytest.mark.parametrize("pooling", ["avg", "max", "none"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_extractor_equals_torchvision_feature_extraction(rn18, pooling, channels_last):
    nodes = ["layer2", "layer4"]
    x = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    ref = create_feature_extractor(rn18, return_nodes=nodes)(x)
    ex = fl.FeatureExtractor(rn18, nodes, pooling, channels_last=channels_last)
    got = ex(x)
    assert list(got) == nodes
    for n in nodes:
        torch.testing.assert_close(got[n], reference_pool(ref[n], pooling), rtol=1e-4, atol=1e-4, msg=n)  # NHWC: other kernels


def test_extractor_with_aliases_equals_plain_hooks(lite0):
    x = fl.preprocess(["chelsea", "rocket"], lite0)
    kept = {}
    handles = [dict(lite0.named_modules())[path].register_forward_hook(
        lambda m, i, o, key=key: kept.update({key: o.clone()})) for key, path in (("head", "bn2"), ("block4", "blocks.3"))]
    try:
        with torch.no_grad():
            lite0(x)
    finally:
        for h in handles:
            h.remove()
    got = fl.FeatureExtractor(lite0, ["head", "block4"], "avg", channels_last=True)(x)
    for n in ("head", "block4"):
        torch.testing.assert_close(got[n], kept[n].mean(dim=(2, 3)), rtol=1e-4, atol=1e-5)


def model_fingerprint(model):
    return {"attrs": set(vars(model)), "training": [m.training for m in model.modules()],
            "formats": [p.is_contiguous() for p in model.parameters()],
            "inference": [p.is_inference() for p in model.parameters()],
            "grad": [p.requires_grad for p in model.parameters()],
            "hooks": sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()),
            "state": {k: v.clone() for k, v in model.state_dict().items()}}


def test_the_callers_model_is_left_as_it_was(folder, tmp_path):
    model = fl.load_model("efficientnet_lite0", device="cpu")
    before = model_fingerprint(model)
    fl.extract_folder(model, folder, ["head", "block5"], tmp_path / "a.h5", progress=False, streams=2, batch_size=2)
    fl.extract_folder(model, folder, "head", tmp_path / "b.h5", progress=False, streams=1, precision="bfloat16")
    ex = fl.FeatureExtractor(model, ["head"], channels_last=True)
    ex.from_pictures(["chelsea"])
    fl.embed(model, "chelsea", "head")
    after = model_fingerprint(model)
    for key in ("attrs", "training", "formats", "inference", "grad", "hooks"):
        assert after[key] == before[key], key
    assert all(torch.equal(before["state"][k], v) for k, v in after["state"].items())
    assert ex.model is not model and ex.channels_last  # it ran a channels_last copy


def test_a_model_featlab_did_not_load_needs_its_preprocessing(lite0, folder, tmp_path):
    wrapped = nn.Sequential(copy.deepcopy(lite0)).eval()  # e.g. a model wrapped by the user
    with pytest.raises(ValueError, match="not made by fl.load_model.*preprocess=fl.Preprocess"):
        fl.extract_folder(wrapped, folder, "0.bn2", tmp_path / "w.h5", progress=False)
    prep = fl.preprocess_for("efficientnet_lite0")
    fl.extract_folder(wrapped, folder, "0.bn2", tmp_path / "w.h5", progress=False, preprocess=prep)
    fl.extract_folder(lite0, folder, "head", tmp_path / "r.h5", progress=False)
    (pw, fw), (pr, fr) = fl.load_features(tmp_path / "w.h5"), fl.load_features(tmp_path / "r.h5")
    assert pw == pr
    np.testing.assert_allclose(fw["0.bn2"], fr["head"], rtol=1e-4, atol=1e-5)
    with h5py.File(tmp_path / "w.h5") as f:
        assert f.attrs["model"] == "Sequential"


# --- search queries are embedded as the stored rows were ----------------------------------

@pytest.mark.parametrize("kw", [{}, {"precision": "bfloat16"}, {"fast_decode": True, "dtype": "float16"},
                                {"channels_last": False, "pooling": "max"}])
def test_a_query_is_embedded_exactly_as_its_stored_row(folder, lite0, tmp_path, kw):
    out = tmp_path / "f.h5"
    fl.extract_folder(lite0, folder, ["head", "block5"], out, progress=False, batch_size=2, streams=1, **kw)
    paths, feats = fl.load_features(out)
    names = ["big.jpg", "chelsea.jpg"]
    for layer in ("head", "block5"):
        q = fl.query_features(out, [folder / n for n in names], layer=layer, device="cpu").numpy()
        rows = feats[layer][[paths.index(n) for n in names]].astype(np.float32)
        np.testing.assert_allclose(q, rows, rtol=1e-5, atol=1e-6, err_msg=f"{kw} {layer}")
    scores, _, hits = fl.search_file(out, q, layer="block5", k=1)
    assert [h[0] for h in hits] == names and (scores > 0.9999).all()


def test_an_unreadable_query_is_named(folder, lite0, tmp_path):
    out = tmp_path / "f.h5"
    fl.extract_folder(lite0, folder, "head", out, progress=False)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="bad.jpg"):
        fl.query_features(out, [tmp_path / "bad.jpg"], device="cpu")


# --- model facts live in the registry -------------------------------------------------------

@pytest.mark.parametrize("which", ["efficientnet_lite0", "resnet18", "vgg16"])
def test_registry_facts_match_a_real_forward_pass(which, lite0, rn18):
    torch.manual_seed(0)
    model = {"efficientnet_lite0": lite0, "resnet18": rn18, "vgg16": None}[which] or vgg16().eval()
    info = fl.model_info(model)
    shapes = fl.layer_names(model, 224)  # (C, H, W) or (D,) per module path, from a real pass
    assert info.features and fl.aliases(model) == info.aliases
    for f in info.features:
        shape = shapes[f.module]
        assert shape[0] == f.channels, f
        if f.reduction:
            assert shape[1:] == (224 // f.reduction,) * 2, f
        else:
            assert len(shape) in (1, 3) and (len(shape) == 1 or shape[1:] == (1, 1)), f
    gap = info.gap_head
    assert (gap is None) == (which == "vgg16")
    if gap is not None:
        assert fl.gap_head(model) == (info.aliases[gap[0]], info.aliases[gap[1]])


def test_dims_come_from_the_registry_without_running_the_model(lite0, monkeypatch):
    ex = fl.FeatureExtractor(lite0, ["head", "block4", "fc"], "none")
    expected = {n: v.shape[1] for n, v in ex.from_pictures(["chelsea"]).items()}
    monkeypatch.setattr(fl.FeatureExtractor, "from_pixels", lambda *a: pytest.fail("ran the model"))
    assert ex.dims() == expected
