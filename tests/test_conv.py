"""featlab.conv against torch.nn.functional.conv2d, nn.Conv2d / nn.MaxPool2d shapes and nn.Linear."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from featlab import conv

IMPLS = [conv.conv2d_loops, conv.conv2d_unfold, conv.conv2d]

# (C_in, C_out, kernel, stride, padding, dilation, groups, H, W)
CASES = [
    (3, 4, (3, 3), 1, 0, 1, 1, 7, 7),
    (3, 4, (3, 3), 1, 1, 1, 1, 7, 6),
    (3, 5, (3, 3), 2, 1, 1, 1, 8, 9),
    (2, 3, (1, 3), 1, (0, 1), 1, 1, 5, 6),          # non-square kernel
    (2, 3, (3, 1), (2, 1), (1, 0), 1, 1, 7, 5),     # non-square kernel and stride
    (2, 3, (2, 4), (1, 2), (0, 2), 1, 1, 6, 9),     # even, non-square
    (3, 2, (3, 3), 1, 2, 2, 1, 8, 8),               # dilation
    (3, 2, (3, 2), 2, (1, 3), (2, 3), 1, 9, 10),    # anisotropic dilation, stride, padding
    (4, 6, (3, 3), 1, 1, 1, 2, 6, 6),               # groups
    (6, 6, (3, 3), 2, 1, 1, 6, 7, 7),               # depthwise
    (6, 3, (1, 1), 1, 0, 1, 3, 4, 5),               # grouped 1x1
    (4, 8, (5, 5), 3, 2, 1, 4, 11, 10),
    (1, 1, (4, 4), 4, 0, 1, 1, 8, 8),               # patchify (ViT-style)
]


def _inputs(c_in, c_out, k, groups, h, w, seed, bias=True, n=2, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, w, generator=g, dtype=dtype)
    weight = torch.randn(c_out, c_in // groups, *k, generator=g, dtype=dtype)
    b = torch.randn(c_out, generator=g, dtype=dtype) if bias else None
    return x, weight, b


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_matches_F_conv2d(impl, case, bias):
    c_in, c_out, k, s, p, d, g, h, w = case
    x, weight, b = _inputs(c_in, c_out, k, g, h, w, seed=hash(case) % 1000, bias=bias)
    want = F.conv2d(x, weight, b, stride=s, padding=p, dilation=d, groups=g)
    got = impl(x, weight, b, stride=s, padding=p, dilation=d, groups=g)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_float32_and_batch_of_one():
    x, weight, b = _inputs(3, 4, (3, 3), 1, 6, 6, seed=1, n=1, dtype=torch.float32)
    want = F.conv2d(x, weight, b, padding=1)
    for impl in IMPLS:
        torch.testing.assert_close(impl(x, weight, b, padding=1), want, rtol=1e-5, atol=1e-5)


def test_loops_really_loop_over_groups():
    """A grouped conv differs from the dense one: the group bookkeeping is exercised."""
    x, weight, _ = _inputs(4, 4, (3, 3), 2, 5, 5, seed=2)
    dense_w = torch.zeros(4, 4, 3, 3, dtype=weight.dtype)
    dense_w[:2, :2], dense_w[2:, 2:] = weight[:2], weight[2:]
    grouped = conv.conv2d_loops(x, weight, groups=2)
    torch.testing.assert_close(grouped, F.conv2d(x, dense_w))


@pytest.mark.parametrize("size,k,s,p,d", list(itertools.product(
    [1, 5, 7, 8, 224], [1, 2, 3, 5, 7], [1, 2, 3], [0, 1, 2, 3], [1, 2])))
def test_output_size_vs_conv2d(size, k, s, p, d):
    if size + 2 * p < d * (k - 1) + 1:
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv.conv_output_size(size, k, s, p, d)
        return
    layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
    with torch.no_grad():
        want = layer(torch.zeros(1, 1, size, size)).shape[-1]
    assert conv.conv_output_size(size, k, s, p, d) == want


@pytest.mark.parametrize("hw,k,s,p,d", [
    ((224, 200), (7, 3), (2, 1), (3, 1), (1, 2)),
    ((13, 8), (1, 5), (3, 2), (0, 2), (1, 1)),
    ((9, 16), (3, 3), (1, 4), (2, 0), (3, 1)),
])
def test_output_size_tuples(hw, k, s, p, d):
    layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
    with torch.no_grad():
        want = tuple(layer(torch.zeros(1, 1, *hw)).shape[-2:])
    got = conv.conv_output_size(hw, k, s, p, d)
    assert isinstance(got, tuple) and got == want


@pytest.mark.parametrize("size,k,s,p,ceil", list(itertools.product(
    [5, 6, 7, 13, 14, 55, 112], [2, 3, 4], [1, 2, 3], [0, 1], [False, True])))
def test_output_size_vs_maxpool(size, k, s, p, ceil):
    if p > k // 2:
        return  # PyTorch requires padding <= kernel / 2 for pooling
    pool = nn.MaxPool2d(k, stride=s, padding=p, ceil_mode=ceil)
    want = pool(torch.zeros(1, 1, size, size)).shape[-1]
    assert conv.conv_output_size(size, k, s, p, ceil_mode=ceil) == want


def test_ceil_mode_matters_and_drops_window_in_padding():
    # 6 = 2*2 + 2: floor gives 2, ceil gives 3 (the last window hangs over the edge)
    assert conv.conv_output_size(6, 2, 2, ceil_mode=False) == 3
    assert conv.conv_output_size(7, 2, 2, ceil_mode=False) == 3
    assert conv.conv_output_size(7, 2, 2, ceil_mode=True) == 4
    # ceil would give 4 windows, but the 4th starts inside the right padding -> 3 (PyTorch rule)
    assert conv.conv_output_size(5, 2, 2, padding=1, ceil_mode=True) == \
        nn.MaxPool2d(2, 2, padding=1, ceil_mode=True)(torch.zeros(1, 1, 5, 5)).shape[-1] == 3


@pytest.mark.parametrize("bias", [True, False])
def test_conv1x1_equals_linear(bias):
    torch.manual_seed(0)
    layer = nn.Conv2d(5, 7, 1, bias=bias).double()
    x = torch.randn(3, 5, 4, 6, dtype=torch.float64)
    want = layer(x)
    got = conv.conv1x1_as_linear(x, layer.weight, layer.bias)
    torch.testing.assert_close(got, want)
    # and the same numbers come out of an nn.Linear holding the same weights
    lin = nn.Linear(5, 7, bias=bias).double()
    with torch.no_grad():
        lin.weight.copy_(layer.weight[:, :, 0, 0])
        if bias:
            lin.bias.copy_(layer.bias)
    torch.testing.assert_close(lin(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), want)
    torch.testing.assert_close(conv.conv1x1_as_linear(x, layer.weight[:, :, 0, 0], layer.bias), want)


def test_conv1x1_rejects_bigger_kernel():
    with pytest.raises(ValueError, match="1×1"):
        conv.conv1x1_as_linear(torch.randn(1, 3, 4, 4), torch.randn(2, 3, 3, 3))


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.__name__)
def test_bad_inputs(impl):
    x, weight, b = torch.randn(1, 3, 5, 5), torch.randn(4, 3, 3, 3), torch.randn(4)
    with pytest.raises(ValueError, match=r"channels-last.*permute\(0, 3, 1, 2\)"):
        impl(x.permute(0, 2, 3, 1), weight, b)
    with pytest.raises(ValueError, match="unsqueeze"):
        impl(x[0], weight, b)
    with pytest.raises(ValueError, match="bias must have shape"):
        impl(x, weight, torch.randn(3))
    with pytest.raises(ValueError, match="groups=2 must divide"):
        impl(x, weight, b, groups=2)
    with pytest.raises(ValueError, match="expects C_in=6"):
        impl(x, torch.randn(4, 6, 3, 3), b)
    with pytest.raises(ValueError, match="float tensor"):
        impl(x.to(torch.uint8), weight, b)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        impl(x, weight, b, stride=0)
    with pytest.raises(ValueError, match="padding must be >= 0"):
        impl(x, weight, b, padding=-1)
    with pytest.raises(ValueError, match="pair of ints"):
        impl(x, weight, b, stride=(1, 2, 3))
    with pytest.raises(ValueError, match="larger than the padded input"):
        impl(x, torch.randn(4, 3, 7, 7), b)
    with pytest.raises(TypeError, match="torch.Tensor"):
        impl(x.numpy(), weight, b)
