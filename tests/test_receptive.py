"""featlab.receptive: analytic fields against hand-computed numbers and against gradients.

Independent references: a from-scratch recursion over hand-written layer lists, torch
autograd (the support of one unit's input gradient), and the real layers' output shapes.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import featlab as fl
from featlab.receptive import (ReceptiveField, empirical_receptive_field, receptive_field,
                               receptive_field_table)


def recursion(layers):
    """Reference: (size, stride, padding) after layers [(kernel, stride, padding, dilation)]."""
    r, s, p = 1, 1, 0
    for k, st, pad, d in layers:
        r, p, s = r + d * (k - 1) * s, p + pad * s, s * st
    return r, s, p


def units(rf):
    (h, w) = rf.output_size
    return [(h // 2, w // 2), (0, 0), (h - 1, w - 1), (0, w - 1)]


def assert_matches_gradient(model, layer, input_size, rf=None, n_units=4):
    rf = rf or receptive_field(model, layer, input_size)
    for u in units(rf)[:n_units]:
        emp = empirical_receptive_field(model, layer, input_size, unit=u)
        assert emp.box == rf.box(*u, clip=True), (layer, u, emp.box, rf)
    return rf


# --- hand-computed cases ---------------------------------------------------------------------

def tiny():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, (3, 5), stride=(1, 2), padding=(1, 2)),   # non-square kernel and stride
        nn.ReLU(),
        nn.MaxPool2d(2, 2, ceil_mode=True),                       # ceil mode
        nn.Conv2d(2, 2, 3, dilation=2),                           # dilation, no padding
        nn.AvgPool2d((1, 3), stride=(1, 2), padding=(0, 1)),
    ).eval()


def test_tiny_sequential_by_hand():
    m = tiny()
    # rows: conv k3 s1 p1, pool k2 s2, conv k3 d2, avgpool k1;  cols: k5 s2 p2, k2 s2, k3 d2, k3 s2 p1
    want = {"0": ((3, 5), (1, 2), (1, 2)), "2": ((4, 7), (2, 4), (1, 2)),
            "3": ((12, 23), (2, 4), (1, 2)), "4": ((12, 31), (2, 8), (1, 6))}
    for layer, (r, s, p) in want.items():
        rf = receptive_field(m, layer, (31, 45))
        assert (rf.size, rf.stride, rf.padding) == (r, s, p), layer
    assert recursion([(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 0, 2), (1, 1, 0, 1)]) == (12, 2, 1)
    assert recursion([(5, 2, 2, 1), (2, 2, 0, 1), (3, 1, 0, 2), (3, 2, 1, 1)]) == (31, 8, 6)


@pytest.mark.parametrize("size", [(31, 45), (30, 44), (17, 29)])
def test_tiny_sequential_matches_gradients_and_shapes(size):
    m = tiny()
    x = torch.zeros(1, 1, *size)
    for layer in ["0", "2", "3", "4"]:
        rf = assert_matches_gradient(m, layer, size)
        out = m[: int(layer) + 1](x)
        assert rf.output_size == tuple(out.shape[-2:])
        assert rf.input_size == size


def test_ceil_mode_last_unit_reaches_past_the_image():
    m = nn.Sequential(nn.MaxPool2d(2, 2, ceil_mode=True)).eval()
    rf = receptive_field(m, "0", 7)
    assert rf.output_size == (4, 4)
    assert rf.box(3, 3) == (6, 6, 8, 8)            # half of the last window is outside
    assert rf.box(3, 3, clip=True) == (6, 6, 7, 7)
    assert_matches_gradient(m, "0", 7)


def test_branches_take_the_union():
    class TwoBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3, padding=1)
            self.wide = nn.Conv2d(1, 1, 5, padding=2)
            self.merge = nn.Identity()

        def forward(self, x):
            a = self.a(F.pad(x, (0, 2, 0, 2)))      # sees pixels i .. i+2
            b = self.b(x)                          # sees pixels i-1 .. i+1
            y = self.merge(a + b)                  # i-1 .. i+2: size 4, padding 1
            return torch.cat([y, self.wide(x)], 1)  # with i-2 .. i+2: size 5, padding 2

    m = TwoBranches().eval()
    assert (receptive_field(m, "merge", 12).size, receptive_field(m, "merge", 12).padding) == ((4, 4), (1, 1))
    table = receptive_field_table(m, 12)
    assert_matches_gradient(m, "merge", 12)
    assert table["wide"].size == (5, 5)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_functional_same_padding_and_dilation():
    class Same(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.Conv2d(3, 1, 1)        # 1×1: changes nothing
            self.w = nn.Parameter(torch.randn(2, 1, 3, 4))
            self.out = nn.Identity()

        def forward(self, x):
            return self.out(F.conv2d(self.first(x), self.w, padding="same", dilation=(2, 1)))

    m = Same().eval()
    rf = receptive_field(m, "out", 15)
    # rows: k3 d2 -> 5, pad 2;  cols: k4 d1 -> 4, total pad 3, left 1 (PyTorch puts the extra on the right)
    assert (rf.size, rf.stride, rf.padding) == ((5, 4), (1, 1), (2, 1))
    assert_matches_gradient(m, "out", 15)


def test_no_regular_field_raises():
    class SE(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.gated = nn.Identity()

        def forward(self, x):
            y = self.conv(x)
            return self.gated(y * y.mean((2, 3), keepdim=True).sigmoid())

    with pytest.raises(ValueError, match="global context"):
        receptive_field(SE().eval(), "gated", 16)
    assert receptive_field(SE().eval(), "conv", 16).size == (3, 3)
    table = receptive_field_table(SE().eval(), 16)
    assert table["gated"] is None and "—" in repr(table)
    up = nn.Sequential(nn.Conv2d(3, 3, 3), nn.Upsample(scale_factor=2)).eval()
    with pytest.raises(ValueError, match="no regular receptive field"):
        receptive_field(up, "1", 16)
    with pytest.raises(ValueError, match="unknown layer"):
        receptive_field(up, "conv9", 16)


def test_box_center_and_inside():
    rf = ReceptiveField(size=(5, 3), stride=(2, 2), padding=(2, 1), input_size=(9, 8), output_size=(5, 4))
    assert rf.box(0, 0) == (-1, -2, 2, 3)                 # (x0, y0, x1, y1): 3 columns, 5 rows
    assert rf.box(0, 0, clip=True) == (0, 0, 2, 3)
    assert rf.center(1, 2) == (2.0, 4.0)                  # (row, column)
    x0, y0, x1, y1 = rf.box(1, 2)
    assert rf.center(1, 2) == ((y0 + y1 - 1) / 2, (x0 + x1 - 1) / 2)
    rows, cols = rf.fully_inside()
    assert list(rows) == [1, 2, 3] and list(cols) == [1, 2, 3]
    for i in range(5):
        for j in range(4):
            x0, y0, x1, y1 = rf.box(i, j)
            assert (y0 >= 0 and y1 <= 9) == (i in rows) and (x0 >= 0 and x1 <= 8) == (j in cols)


def test_box_is_xyxy_like_torchvision():
    """The box is (x0, y0, x1, y1) with x = column: checked on a field that is taller than wide,
    at a unit off the diagonal, against the gradient support boxed by torchvision (no featlab)."""
    from torchvision.ops import masks_to_boxes
    conv = nn.Conv2d(1, 1, (5, 3), stride=(2, 1), padding=(1, 0), bias=False)
    nn.init.constant_(conv.weight, 1.0)
    m = nn.Sequential(conv).eval()
    rf = receptive_field(m, "0", (12, 10))
    x = torch.ones(1, 1, 12, 10, requires_grad=True)
    for i, j in [(1, 4), (3, 2), (0, 7), (4, 0)]:      # (row, column) of the output map
        (g,) = torch.autograd.grad(m(x)[0, 0, i, j], x)
        want = masks_to_boxes(g[0] != 0)[0].long() + torch.tensor([0, 0, 1, 1])   # x1, y1 exclusive
        assert rf.box(i, j, clip=True) == tuple(want.tolist()), (i, j)
        x0, y0, x1, y1 = rf.box(i, j, clip=True)
        assert bool((g[0, 0, y0:y1, x0:x1] != 0).all()) and int((g != 0).sum()) == (y1 - y0) * (x1 - x0)
        assert empirical_receptive_field(m, "0", (12, 10), unit=(i, j)).box == tuple(want.tolist())


# --- the lesson networks (random weights: the geometry does not depend on them) -------------

@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {n: fl.load_model(n, pretrained=False, device="cpu")
            for n in ("vgg16", "resnet18", "resnet50", "efficientnet_lite0")}


def vgg16_layers():
    conv, pool = (3, 1, 1, 1), (2, 2, 0, 1)
    return [conv] * 2 + [pool] + [conv] * 2 + [pool] + ([conv] * 3 + [pool]) * 3


def resnet_main_path(blocks, convs_per_block):
    """Stem (conv7 s2 p3, maxpool3 s2 p1), then each block's 3×3 convs (the first one of
    layer2..4 with stride 2): the longest path, which the 1×1 shortcuts cannot exceed."""
    layers = [(7, 2, 3, 1), (3, 2, 1, 1)]
    for stage, n in enumerate(blocks):
        for b in range(n):
            for c in range(convs_per_block):
                first = stage > 0 and b == 0 and c == 0
                layers.append((3, 2 if first else 1, 1, 1))
    return layers


def test_published_numbers(nets):
    vgg = receptive_field(nets["vgg16"], "conv5_3")
    assert (vgg.size, vgg.stride, vgg.padding) == ((196, 196), (16, 16), (90, 90))
    assert recursion(vgg16_layers()[:-1]) == (196, 16, 90)
    assert receptive_field(nets["vgg16"], "pool5").size == (212, 212)          # Araujo et al. 2019
    assert recursion(vgg16_layers()) == (212, 32, 90)
    r50 = receptive_field(nets["resnet50"], "layer4")
    assert (r50.size[0], r50.stride[0], r50.padding[0]) == recursion(resnet_main_path([3, 4, 6, 3], 1))
    assert r50.size == (427, 427)          # torchvision's v1.5 (stride in the 3×3 conv)
    r18 = receptive_field(nets["resnet18"], "layer4")
    assert (r18.size[0], r18.stride[0], r18.padding[0]) == recursion(resnet_main_path([2, 2, 2, 2], 2))
    assert r18.size == (435, 435)


def test_strides_agree_with_timm_feature_info(nets):
    m = nets["efficientnet_lite0"]
    for info in m.feature_info:
        rf = receptive_field(m, info["module"], 224)
        assert rf.stride == (info["reduction"],) * 2, info


@pytest.mark.parametrize("name, size, layers", [
    ("vgg16", 224, ["conv1_2", "pool1", "conv3_3", "conv4_3", "pool4", "conv5_3", "pool5"]),
    ("resnet18", 224, ["stem", "layer1", "layer2", "layer3", "layer4"]),
    ("resnet50", 480, ["stem", "layer1.0", "layer2", "layer3.2", "layer4"]),
    ("efficientnet_lite0", 224, ["stem", "block1", "block2", "block3", "block4", "block6", "head"]),
    ("efficientnet_lite0", 231, ["stem", "block2", "block3", "block5", "head"]),   # odd: TF-"same"
])
def test_analytic_equals_gradient_support(nets, name, size, layers):
    m = nets[name]
    table = receptive_field_table(m, size)
    assert table[fl.resolve_layer(m, layers[-1])] == receptive_field(m, layers[-1], size)
    for layer in layers:
        rf = table[fl.resolve_layer(m, layer)]
        assert_matches_gradient(m, layer, size, rf, n_units=2 if size > 300 else 4)


def test_exact_support_when_the_field_fits(nets):
    for name, layer, size in [("vgg16", "conv5_3", 224), ("resnet50", "layer4", 480),
                              ("efficientnet_lite0", "block4", 224)]:
        rf = receptive_field(nets[name], layer, size)
        emp = empirical_receptive_field(nets[name], layer, size)
        x0, y0, x1, y1 = emp.box
        assert (y1 - y0, x1 - x0) == rf.size, (name, layer)     # nothing clipped: the full field
        assert emp.gradient.shape == (size, size)


def test_table_shapes_match_the_real_layers(nets):
    for name, m in nets.items():
        table = receptive_field_table(m, 160)
        shapes = fl.layer_names(m, 160)
        for path, rf in table.items():
            if rf is None:   # VGG's AdaptiveAvgPool2d 5×5 -> 7×7 at 160 px: overlapping windows
                assert name == "vgg16" and path.split(".")[0] in ("avgpool", "classifier"), path
                continue
            shape = shapes[path]
            assert rf.output_size == (tuple(shape[-2:]) if len(shape) == 3 else (1, 1)), path
        assert "stride" in repr(table)
    assert receptive_field_table(nets["vgg16"], 160)["avgpool"] is None


def test_empirical_leaves_the_model_alone(nets):
    m = nets["resnet18"]
    before = {k: v.clone() for k, v in m.state_dict().items()}
    empirical_receptive_field(m, "layer2", 64)
    x = torch.randn(2, 3, 64, 64)
    real = empirical_receptive_field(m, "layer2", 64, images=x, linearize=False)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    # linearize=False is the plain gradient of the real model
    x = x.clone().requires_grad_(True)
    with fl.Capture(m, ["layer2"], clone=False) as cap:
        m(x)
    y = cap.outputs["layer2"]
    (g,) = torch.autograd.grad(y[:, :, y.shape[2] // 2, y.shape[3] // 2].sum(), x)
    torch.testing.assert_close(real.gradient, g.abs().sum(1).mean(0))
