"""Exercise 13 checks: the solution passes, the skeleton and plausible wrong answers fail."""
import copy
import math

import pytest
import torch
from torch import nn

import featlab as fl
from helpers import SKELETON, fails


# --- the solution, as in exercises/src/13_debugging.py --------------------------------------

def gray_first_conv(conv):
    gray = copy.deepcopy(conv)
    gray.weight = nn.Parameter(conv.weight.detach().sum(dim=1, keepdim=True))
    gray.in_channels = 1
    return gray


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def output_shape(layers, input_size, *, pad=True, dil=True, stride=True, chans=True, pools=True,
                 rnd=lambda a, b: a // b, swap=False):
    """The solution; the keyword switches make the plausible wrong answers below."""
    c, h, w = input_size
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            c = layer.out_channels if chans else c
        elif not isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)) or not pools:
            continue
        k, s, p = _pair(layer.kernel_size), _pair(layer.stride), _pair(layer.padding)
        d = _pair(getattr(layer, "dilation", 1))
        i, j = (1, 0) if swap else (0, 1)
        h = rnd(h + 2 * p[i] * pad - (d[i] if dil else 1) * (k[i] - 1) - 1, s[i] if stride else 1) + 1
        w = rnd(w + 2 * p[j] * pad - (d[j] if dil else 1) * (k[j] - 1) - 1, s[j] if stride else 1) + 1
    return c, h, w


def count_params(module):
    return sum(p.numel() for p in module.parameters())


# --- 1. gray_first_conv -------------------------------------------------------------------------

def test_gray_first_conv_solution_and_skeleton(capsys):
    fl.checks.check_gray_first_conv(gray_first_conv)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_gray_first_conv, SKELETON, "returned None")


def _gray_copy(conv, weight, in_channels=1):
    gray = copy.deepcopy(conv)
    gray.weight = nn.Parameter(weight)
    gray.in_channels = in_channels
    return gray


def _rebuilt(conv, padding_mode=True):
    """A new nn.Conv2d from the attributes: right for plain Conv2d, wrong for timm's Conv2dSame."""
    new = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None, conv.padding_mode if padding_mode else "zeros")
    with torch.no_grad():
        new.weight.copy_(conv.weight.sum(1, keepdim=True))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _in_place(conv):
    conv.weight = nn.Parameter(conv.weight.detach().sum(1, keepdim=True))
    conv.in_channels = 1
    return conv


def _no_bias(conv):
    gray = gray_first_conv(conv)
    gray.bias = None
    return gray


def _bias_times_3(conv):
    gray = gray_first_conv(conv)
    if gray.bias is not None:
        gray.bias = nn.Parameter(gray.bias.detach() * 3)
    return gray


def _plain_tensor(conv):
    gray = copy.deepcopy(conv)
    del gray.weight
    gray.weight = conv.weight.detach().sum(1, keepdim=True)
    gray.in_channels = 1
    return gray


def test_gray_first_conv_alternatives_pass():
    fl.checks.check_gray_first_conv(lambda c: _gray_copy(c, c.weight.detach().sum(1, keepdim=True)))

    def with_data(conv):
        gray = copy.deepcopy(conv)
        gray.weight.data = conv.weight.data.sum(1, keepdim=True)
        gray.in_channels = 1
        return gray
    fl.checks.check_gray_first_conv(with_data)


@pytest.mark.parametrize("wrong, needle", [
    (lambda c: _gray_copy(c, c.weight.detach().mean(1, keepdim=True)), "MEAN"),
    (lambda c: _gray_copy(c, c.weight.detach()[:, :1].clone()), "one colour's kernel"),
    (lambda c: _gray_copy(c, c.weight.detach().sum(1, keepdim=True), in_channels=3), "in_channels is still 3"),
    (lambda c: _gray_copy(c, c.weight.detach().sum(1)), "keepdim=True"),
    (lambda c: _gray_copy(c, c.weight.detach().sum(0, keepdim=True)), "dim=1"),
    (_no_bias, "bias was dropped"),
    (_bias_times_3, "bias differs"),
    (_in_place, "original layer was changed"),
    (lambda c: _rebuilt(c, padding_mode=False), "padding_mode"),
    (_rebuilt, "Conv2dSame"),
    (_plain_tensor, "nn.Parameter"),
    (lambda c: c.weight.sum(1, keepdim=True), "should return an nn.Conv2d"),
    (lambda c: _gray_copy(c, c.weight.detach().sum(1, keepdim=True) + 0.01), "differs from conv"),
])
def test_gray_first_conv_wrong(wrong, needle):
    fails(fl.checks.check_gray_first_conv, wrong, needle)


def test_gray_first_conv_learner_exception_is_feedback():
    fails(fl.checks.check_gray_first_conv, lambda c: c.weight.sum(5), "raised IndexError")


# --- 2. output_shape ----------------------------------------------------------------------------

def test_output_shape_solution_and_skeleton(capsys):
    fl.checks.check_output_shape(output_shape)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_output_shape, SKELETON, "returned None")


def test_output_shape_alternatives_pass():
    fl.checks.check_output_shape(lambda layers, size: list(output_shape(layers, size)))
    fl.checks.check_output_shape(lambda layers, size: torch.Size(output_shape(layers, size)))

    def via_featlab(layers, size):
        c, h, w = size
        for m in layers:
            if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
                h, w = fl.conv_output_size((h, w), _pair(m.kernel_size), _pair(m.stride), _pair(m.padding),
                                           _pair(getattr(m, "dilation", 1)))
                c = getattr(m, "out_channels", c)
        return c, h, w
    fl.checks.check_output_shape(via_featlab)


@pytest.mark.parametrize("mistake, needle", [
    (dict(pad=False), "padding is missing"),
    (dict(dil=False), "dilation is missing"),
    (dict(stride=False), "stride is missing"),
    (dict(rnd=lambda a, b: math.ceil(a / b)), "rounded up"),
    (dict(chans=False), "C did not change"),
    (dict(pools=False), "pooling layers were skipped"),
    (dict(swap=True), "H and W are swapped"),
])
def test_output_shape_wrong(mistake, needle):
    fails(fl.checks.check_output_shape, lambda layers, size: output_shape(layers, size, **mistake), needle)


def test_output_shape_malformed():
    fails(fl.checks.check_output_shape, lambda layers, size: output_shape(layers, size, rnd=lambda a, b: a / b),
          "whole numbers")
    fails(fl.checks.check_output_shape, lambda layers, size: (1, *output_shape(layers, size)), "batch dimension")
    fails(fl.checks.check_output_shape, lambda layers, size: output_shape(layers, size)[1:], "channels C")
    fails(fl.checks.check_output_shape, lambda layers, size: tuple(float(v) for v in output_shape(layers, size)),
          "return ints")
    fails(fl.checks.check_output_shape, lambda layers, size: "(3, 4, 5)", "tuple (C, H, W)")
    fails(fl.checks.check_output_shape, lambda layers, size: size, "a forward pass gives")


# --- 3. count_params ----------------------------------------------------------------------------

def test_count_params_solution_and_skeleton(capsys):
    fl.checks.check_count_params(count_params)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_count_params, SKELETON, "returned None")


def test_count_params_alternatives_pass():
    fl.checks.check_count_params(lambda m: sum(p.numel() for p in dict(m.named_parameters()).values()))
    fl.checks.check_count_params(lambda m: torch.tensor([p.numel() for p in m.parameters()]).sum())
    fl.checks.check_count_params(lambda m: float(count_params(m)))


@pytest.mark.parametrize("wrong, needle", [
    (lambda m: sum(v.numel() for v in m.state_dict().values()), "buffers"),
    (lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad), "frozen"),
    (lambda m: sum(p.numel() for sub in m.modules() for p in sub.parameters()), "once per enclosing module"),
    (lambda m: sum(p.numel() for _, p in m.named_parameters(remove_duplicate=False)), "ONE set of weights"),
    (lambda m: sum(p.numel() for sub in m.children() for p in sub.parameters(recurse=False)), "nested"),
    (lambda m: count_params(m) + 1, "expected"),
])
def test_count_params_wrong(wrong, needle):
    fails(fl.checks.check_count_params, wrong, needle)


def test_count_params_malformed():
    fails(fl.checks.check_count_params, lambda m: [p.numel() for p in m.parameters()], "an int")
    fails(fl.checks.check_count_params, lambda m: torch.tensor([p.numel() for p in m.parameters()]), "one number")
    fails(fl.checks.check_count_params, lambda m: count_params(m) + 0.5, "whole number")
    fails(fl.checks.check_count_params, lambda m: next(m.parameters()).numel_(), "raised AttributeError")


def test_checks_are_exported():
    names = fl.checks.nb13_debugging.__all__
    assert set(names) == {"check_gray_first_conv", "check_output_shape", "check_count_params"}
    assert all(hasattr(fl.checks, n) for n in names)


# --- more wrong answers, one per plausible mistake (counted in the report of issue 19) ----------

def _gray_rebuilt(conv):
    new = nn.Conv2d(1, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                    bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _gray_tensor_weight(conv):
    gray = copy.deepcopy(conv)
    gray.weight = conv.weight.detach().sum(dim=1, keepdim=True)      # not an nn.Parameter: TypeError
    return gray


def _gray_red_times_three(conv):
    gray = copy.deepcopy(conv)
    gray.weight = nn.Parameter(3 * conv.weight.detach()[:, :1])
    gray.in_channels = 1
    return gray


WRONG = {
    "gray: rebuilt without dilation and padding_mode": (fl.checks.check_gray_first_conv, _gray_rebuilt, ""),
    "gray: plain tensor as weight": (fl.checks.check_gray_first_conv, _gray_tensor_weight, "raised TypeError"),
    "gray: 3 times the red kernel": (fl.checks.check_gray_first_conv, _gray_red_times_three, ""),
    "shape: pool padding ignored": (fl.checks.check_output_shape, lambda layers, size: output_shape(
        [nn.MaxPool2d(l.kernel_size, l.stride, 0, getattr(l, "dilation", 1)) if isinstance(l, (nn.MaxPool2d, nn.AvgPool2d))
         else l for l in layers], size), ""),
    "shape: kernel_size[0] of an int": (fl.checks.check_output_shape, lambda layers, size: output_shape(layers, size)
                                        if all(not isinstance(l, nn.MaxPool2d) for l in layers)
                                        else layers[3].kernel_size[0], "raised TypeError"),
    "params: weights only": (fl.checks.check_count_params,
                             lambda m: sum(x.weight.numel() for x in m.modules() if getattr(x, "weight", None) is not None), ""),
    "params: number of tensors": (fl.checks.check_count_params, lambda m: len(list(m.parameters())), ""),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
