import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet18, vgg16
from torchvision.models.feature_extraction import create_feature_extractor

import featlab as fl


@pytest.fixture(scope="module")
def rn18():
    torch.manual_seed(0)
    return resnet18().eval()


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return vgg16().eval()


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_extract_matches_torchvision_feature_extraction(rn18):
    nodes = ["maxpool", "layer1", "layer2.0.relu", "layer3", "layer4", "avgpool"]
    x = torch.randn(3, 3, 160, 160)
    ref = create_feature_extractor(rn18, return_nodes=nodes)(x)
    ours = fl.extract(rn18, x, nodes)
    assert list(ours) == nodes
    for n in nodes:
        torch.testing.assert_close(ours[n], ref[n], msg=n)
    assert no_hooks(rn18)


def test_aliases_resolve_to_lesson_layers(rn18, vgg):
    a = fl.aliases(vgg)
    assert (a["conv1_1"], a["conv5_3"], a["pool5"], a["fc6"], a["fc7"]) == (
        "features.0", "features.28", "features.30", "classifier.0", "classifier.3")
    assert len([k for k in a if k.startswith("conv")]) == 13
    torch.manual_seed(0)
    from torchvision.models import vgg19
    assert fl.aliases(vgg19())["conv5_4"] == "features.34"
    assert fl.resolve_layer(rn18, "stem") == "maxpool"
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(fl.extract(rn18, x, "stem")["stem"],
                               create_feature_extractor(rn18, ["maxpool"])(x)["maxpool"])


def test_conv_output_is_not_changed_by_inplace_relu(vgg):
    """features.0 is followed by ReLU(inplace=True): the recorded map must stay pre-ReLU."""
    x = torch.randn(1, 3, 32, 32)
    got = fl.extract(vgg, x, "conv1_1")["conv1_1"]
    conv = vgg.features[0]
    torch.testing.assert_close(got, F.conv2d(x, conv.weight, conv.bias, padding=1))
    assert (got < 0).any()


def test_unknown_layer_lists_valid_names(rn18):
    with pytest.raises(ValueError, match=r"(?s)Did you mean 'layer4'.*Aliases: stem.*Module paths: conv1"):
        fl.extract(rn18, torch.randn(1, 3, 32, 32), "layr4")
    assert no_hooks(rn18)


def test_hooks_removed_after_an_exception():
    class Boom(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            raise RuntimeError("boom")

    m = Boom()
    with pytest.raises(RuntimeError, match="boom"):
        fl.extract(m, torch.randn(1, 3, 8, 8), "conv")
    assert no_hooks(m)


def test_layer_that_never_runs():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.unused = torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return self.conv(x)

    m = Net()
    with pytest.raises(ValueError, match="did not run"):
        fl.extract(m, torch.randn(1, 3, 8, 8), ["conv", "unused"])


def test_layout_errors(rn18):
    with pytest.raises(ValueError, match=r"\(N, H, W, C\).*permute\(0, 3, 1, 2\)"):
        fl.extract(rn18, torch.randn(2, 64, 64, 3), "layer1")
    with pytest.raises(ValueError, match="3 input channels"):
        fl.extract(rn18, torch.randn(2, 1, 64, 64), "layer1")


def test_batches_and_chunks_agree(rn18):
    x = torch.randn(5, 3, 64, 64)
    whole = fl.extract(rn18, x, ["layer2", "layer4"])
    chunked = fl.extract(rn18, x, ["layer2", "layer4"], batch_size=2)
    single = torch.cat([fl.extract(rn18, x[i:i + 1], "layer4")["layer4"] for i in range(5)])
    torch.testing.assert_close(chunked["layer4"], whole["layer4"])
    torch.testing.assert_close(single, whole["layer4"], atol=1e-5, rtol=1e-4)


def test_extract_stops_early(rn18):
    seen = []
    h = rn18.layer4.register_forward_pre_hook(lambda *a: seen.append(1))
    try:
        fl.extract(rn18, torch.randn(1, 3, 64, 64), "layer2")
    finally:
        h.remove()
    assert seen == []


def test_layer_names_order_and_shapes(rn18):
    names = fl.layer_names(rn18)
    keys = list(names)
    assert keys.index("conv1") < keys.index("layer1") < keys.index("layer1.0") < keys.index("layer4") < keys.index("fc")
    assert names["layer4"] == (512, 7, 7) and names["conv1"] == (64, 112, 112) and names["fc"] == (1000,)
    ref = create_feature_extractor(rn18, ["layer2"])(torch.zeros(1, 3, 224, 224))
    assert names["layer2"] == tuple(ref["layer2"].shape[1:])
    assert no_hooks(rn18)


def test_capture_context_manager(rn18):
    x = torch.randn(1, 3, 64, 64)
    with fl.Capture(rn18, ["layer1", "fc"]) as cap:
        with torch.no_grad():
            out = rn18(x)
    torch.testing.assert_close(cap.outputs["fc"], out)
    assert no_hooks(rn18)


def test_real_pictures_on_pretrained_lite0(lite0):
    f = fl.extract(lite0, ["chelsea", "coffee"], ["stem", "block4", "head"])
    assert f["stem"].shape == (2, 32, 112, 112) and f["head"].shape == (2, 1280, 7, 7)
    assert (f["head"] >= 0).all() and (f["head"] <= 6).all()  # ReLU6 output
