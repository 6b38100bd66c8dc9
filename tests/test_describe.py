"""fl.describe: output shapes against torchvision's feature extraction and a manual forward,
parameter counts against the model's named parameters, hooks and train flags left as found."""
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

import featlab as fl


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None).eval()


@pytest.fixture(scope="module")
def lite0():
    return fl.load_model("efficientnet_lite0", pretrained=False, device="cpu")


def _params_by_prefix(model, path):
    """Parameters whose name lies under ``path`` (an independent count from named_parameters)."""
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(path + "."))


def _no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_resnet18_shapes_match_torchvision_feature_extraction(resnet):
    rows = fl.describe(resnet, (3, 160, 192), depth=2, batch_size=2, verbose=False)
    got = {r.path: r.output_shape for r in rows}
    leaves = ["conv1", "bn1", "relu", "maxpool", "avgpool", "fc"]
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    extractor = create_feature_extractor(
        resnet, leaves + blocks,
        tracer_kwargs={"leaf_modules": [torchvision.models.resnet.BasicBlock]})
    with torch.no_grad():
        want = {k: tuple(v.shape) for k, v in extractor(torch.randn(2, 3, 160, 192)).items()}
    want.update({f"layer{i}": want[f"layer{i}.1"] for i in range(1, 5)})   # a Sequential = its last block
    assert got == want
    assert [r.path for r in rows] == ["conv1", "bn1", "relu", "maxpool",
                                      "layer1", "layer1.0", "layer1.1", "layer2", "layer2.0", "layer2.1",
                                      "layer3", "layer3.0", "layer3.1", "layer4", "layer4.0", "layer4.1",
                                      "avgpool", "fc"]
    assert got["fc"] == (2, 1000) and got["layer4"] == (2, 512, 5, 6)


def test_resnet18_params(resnet):
    rows = fl.describe(resnet, depth=None, verbose=False)
    for r in rows:
        assert r.params == _params_by_prefix(resnet, r.path), r.path
    by_path = {r.path: r for r in rows}
    assert by_path["conv1"].params == 64 * 3 * 7 * 7
    assert by_path["fc"].params == 512 * 1000 + 1000
    assert by_path["layer1.0.conv1"].type == "Conv2d"
    assert by_path["layer1.0.relu"].calls == 2          # a BasicBlock uses its ReLU twice
    assert sum(by_path[p].params for p in ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"]) \
        == 11_689_512


def _manual_lite0(model, x):
    """Shapes of Lite0's top-level layers and blocks by running them one after another."""
    shapes = {}
    for name in ["conv_stem", "bn1"]:
        x = getattr(model, name)(x)
        shapes[name] = tuple(x.shape)
    for i, stage in enumerate(model.blocks):
        for j, block in enumerate(stage):
            x = block(x)
            shapes[f"blocks.{i}.{j}"] = tuple(x.shape)
        shapes[f"blocks.{i}"] = tuple(x.shape)
    shapes["blocks"] = tuple(x.shape)
    for name in ["conv_head", "bn2", "global_pool", "classifier"]:
        x = getattr(model, name)(x)
        shapes[name] = tuple(x.shape)
    return shapes, x


def test_lite0_shapes_and_params_match_a_manual_forward(lite0):
    rows = fl.describe(lite0, (3, 200, 232), depth=3, verbose=False)
    with torch.no_grad():
        x = torch.randn(1, 3, 200, 232)
        want, logits = _manual_lite0(lite0, x)
        assert torch.allclose(logits, lite0(x), atol=1e-5)          # the manual forward is the model's
    got = {r.path: r.output_shape for r in rows}
    assert {k: got[k] for k in want} == want
    assert got["blocks.6"] == (1, 320, 7, 8) and got["classifier"] == (1, 1000)
    for r in rows:
        assert r.params == _params_by_prefix(lite0, r.path), r.path
    assert sum(r.params for r in rows if "." not in r.path) == 4_652_008
    assert max(r.path.count(".") for r in rows) == 2                 # depth=3: blocks.0.0, not deeper


def test_depth(resnet):
    one = fl.describe(resnet, depth=1, verbose=False)
    assert [r.path for r in one] == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                                     "layer4", "avgpool", "fc"]
    everything = fl.describe(resnet, depth=None, verbose=False)
    ran = {n for n, _ in resnet.named_modules() if n}
    assert {r.path for r in everything} == ran                      # every resnet18 module runs
    with pytest.raises(ValueError, match="depth"):
        fl.describe(resnet, depth=0)


def test_prints_table_and_total(resnet, capsys):
    rows = fl.describe(resnet, depth=1)
    out = capsys.readouterr().out
    assert "total params: 11,689,512 (trainable 11,689,512)" in out
    assert "(1, 512, 7, 7)" in out and "513,000" in out
    assert len(rows) == 10
    fl.describe(resnet, depth=1, verbose=False)
    assert capsys.readouterr().out == ""


def test_hooks_removed_and_modes_restored(lite0):
    assert _no_hooks(lite0)
    lite0.train()
    lite0.classifier.eval()
    before = {k: v.clone() for k, v in lite0.state_dict().items()}
    fl.describe(lite0, verbose=False)
    assert _no_hooks(lite0)
    assert lite0.training and lite0.bn1.training and not lite0.classifier.training
    # it ran in eval mode: BatchNorm running statistics (and everything else) unchanged
    assert all(torch.equal(before[k], v) for k, v in lite0.state_dict().items())
    lite0.eval()


def test_wrong_input_size_errors(resnet, lite0):
    with pytest.raises(ValueError, match=r"2 numbers.*\(3, 224, 224\).*'conv1'.*C = 3"):
        fl.describe(resnet, (224, 224))
    with pytest.raises(ValueError, match=r"C = 1 channel.*'conv_stem'.*expects 3.*\(3, 224, 224\)"):
        fl.describe(lite0, (1, 224, 224))
    with pytest.raises(ValueError, match=r"\(H, W, C\).*input_size=\(3, 64, 48\)"):
        fl.describe(lite0, (64, 48, 3))
    with pytest.raises(ValueError, match="4 numbers.*without the batch"):
        fl.describe(resnet, (1, 3, 224, 224))
    with pytest.raises(ValueError, match="got 224"):
        fl.describe(resnet, 224)
    with pytest.raises(ValueError, match="positive ints"):
        fl.describe(resnet, (3, 0, 224))
    gray = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
    assert fl.describe(gray, (1, 8, 8), verbose=False)[0].output_shape == (1, 4, 6, 6)
    assert _no_hooks(resnet) and _no_hooks(lite0)


def test_failing_forward_names_the_layer():
    head = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))
    assert fl.describe(head, (3, 32, 32), verbose=False)[-1].output_shape == (1, 10)
    with pytest.raises(RuntimeError) as e:
        fl.describe(head, (3, 40, 40))
    text = str(e.value)
    assert "failed in '2' (Linear(in_features=2048" in text
    assert "input had shape (1, 3200)" in text
    assert "'1' -> (1, 3200)" in text and "mat1 and mat2" in text
    assert isinstance(e.value.__cause__, RuntimeError)
    assert _no_hooks(head)


class _Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        y = self.conv(x)
        return y, y.mean((2, 3))


class _WithUnused(nn.Module):
    def __init__(self):
        super().__init__()
        self.pair = _Pair()
        self.unused = nn.Linear(5, 5)                                # never runs: no row, but in the total

    def forward(self, x):
        return self.pair(x)


def test_tuple_outputs_dtype_and_unused_modules(capsys):
    model = _WithUnused().double()
    rows = fl.describe(model, (3, 4, 4), depth=None, batch_size=3)
    assert [(r.path, r.output_shape) for r in rows] == [("pair", ((3, 2, 4, 4), (3, 2))),
                                                        ("pair.conv", (3, 2, 4, 4))]
    assert rows[0].params == 8
    assert "total params: 38 " in capsys.readouterr().out


def test_model_without_parameters():
    rows = fl.describe(nn.Sequential(nn.MaxPool2d(2), nn.Flatten()), (2, 6, 6), verbose=False)
    assert [r.output_shape for r in rows] == [(1, 2, 3, 3), (1, 18)]
    assert all(r.params == 0 for r in rows)
