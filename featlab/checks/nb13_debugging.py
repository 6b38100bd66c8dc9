"""Checks for ``exercises/13_*.ipynb`` (debugging feature pipelines; notebook ``notebooks/13_*``)."""
from __future__ import annotations

import numbers

import torch
from torch import nn

from ..i18n import N_, _
from ._common import ExerciseError, _call, _ok, learner_check

__all__ = ["check_gray_first_conv", "check_output_shape", "check_count_params"]



# --- 1. a one-channel first convolution -------------------------------------------------------

def _gray_cases() -> list[tuple[str, nn.Conv2d]]:
    from timm.layers import Conv2dSame   # EfficientNet-Lite0's stem: TensorFlow "same" padding

    g = torch.Generator().manual_seed(130)
    cases = [("Conv2d(3, 8, 3, stride=2, padding=1)", nn.Conv2d(3, 8, 3, stride=2, padding=1)),
             ("Conv2d(3, 6, (3, 5), padding=(2, 1), dilation=2, bias=False)",
              nn.Conv2d(3, 6, (3, 5), padding=(2, 1), dilation=2, bias=False)),
             ("Conv2d(3, 4, 3, padding=1, padding_mode='reflect')",
              nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")),
             (_("timm Conv2dSame(3, 5, 3, stride=2) (Lite0's stem type)"), Conv2dSame(3, 5, 3, stride=2))]
    with torch.no_grad():
        for __, conv in cases:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
            if conv.bias is not None:
                conv.bias.copy_(torch.randn(conv.bias.shape, generator=g))
    return cases


@learner_check
def check_gray_first_conv(gray_first_conv) -> None:
    """``gray_first_conv(conv)``: an RGB ``nn.Conv2d`` -> a new one-channel layer whose weight is
    the sum over the input channels, so that ``new(g) == conv(g.repeat(1, 3, 1, 1))``."""
    g = torch.Generator().manual_seed(131)
    for what, conv in _gray_cases():
        before = {k: v.clone() for k, v in conv.state_dict().items()}
        gray = _call(gray_first_conv, f"gray_first_conv({what})", conv)
        if gray is None:
            raise ExerciseError(_("gray_first_conv returned None: fill in the TODO."))
        if not isinstance(gray, nn.Conv2d):
            raise ExerciseError(_("gray_first_conv should return an nn.Conv2d; got {type_name}.").format(
                                  type_name=type(gray).__name__))
        if gray is conv or any(not torch.equal(before[k], v) for k, v in conv.state_dict().items()):
            raise ExerciseError(_("the original layer was changed: build a new one (copy.deepcopy(conv), then "
                                  "change the copy) — the RGB model must keep working."))
        w = conv.weight.detach()
        if tuple(gray.weight.shape) != (w.shape[0], 1, *w.shape[2:]):
            hint = (_(" Sum over the input-channel dimension, dim=1, with keepdim=True.")
                    if gray.weight.ndim == 4 and gray.weight.shape[1] == 3 else
                    _(" Keep the dimension you sum over: .sum(dim=1, keepdim=True)."))
            raise ExerciseError(_("the new weight has shape {weight_shape}; expected {want_shape} = "
                                  "(out_channels, 1, kh, kw).{hint}").format(
                                          weight_shape=tuple(gray.weight.shape),
                                          want_shape=(w.shape[0], 1, *w.shape[2:]), hint=hint))
        if not isinstance(gray.weight, nn.Parameter):
            raise ExerciseError(_("the weight should be an nn.Parameter (nn.Parameter(summed_weight)), so the "
                                  "layer trains and moves with the model."))
        gw = gray.weight.detach()
        if torch.allclose(gw, w.mean(1, keepdim=True), atol=1e-6):
            raise ExerciseError(_("the weight is the MEAN over R, G, B; use the SUM. conv(g, g, g) adds the "
                                  "three channels' responses: sum_c w_c * g = (sum_c w_c) * g."))
        if any(torch.allclose(gw, w[:, c:c + 1], atol=1e-6) for c in range(3)):
            raise ExerciseError(_("the weight is one colour's kernel; add the three: conv.weight.sum(dim=1, "
                                  "keepdim=True)."))
        if conv.bias is not None and gray.bias is None:
            raise ExerciseError(_("the bias was dropped: the new layer needs the original bias (unchanged)."))
        if gray.in_channels != 1:
            raise ExerciseError(_("in_channels is still {in_channels}: set it to 1 — fl.describe, repr and "
                                  "other code read it to know what the layer takes.").format(
                                          in_channels=gray.in_channels))
        x = torch.randn(2, 1, 13, 16, generator=g)
        with torch.no_grad():
            want = conv(x.repeat(1, 3, 1, 1))
            got = _call(gray, _("the new layer on a (2, 1, 13, 16) input"), x)
        if tuple(got.shape) != tuple(want.shape):
            raise ExerciseError(_("on a (2, 1, 13, 16) input the new {layer} gives {got_shape}, the original "
                                  "(on 3 copies) {want_shape}: keep stride, padding and dilation — "
                                  "copy.deepcopy(conv) keeps everything, even a subclass's own padding (timm's "
                                  "Conv2dSame pads itself per input size).").format(
                                          layer=what.split('(')[0], got_shape=tuple(got.shape),
                                          want_shape=tuple(want.shape)))
        if not torch.allclose(got, want, atol=1e-4, rtol=1e-4):
            err = (got - want).abs()
            inside = err[..., 2:-2, 2:-2].max().item() < 1e-4 if min(got.shape[-2:]) > 4 else False
            if conv.bias is not None and gray.bias is not None and torch.allclose(
                    got - gray.bias.detach().view(1, -1, 1, 1), want - conv.bias.detach().view(1, -1, 1, 1),
                    atol=1e-4):
                raise ExerciseError(_("the bias differs from the original's: keep conv.bias as it is (the "
                                      "three channels share one bias)."))
            if inside:
                raise ExerciseError(_("{what}: the values differ only at the border — keep padding_mode "
                                      "(copy.deepcopy(conv) keeps it).").format(what=what))
            raise ExerciseError(_("{what}: new(g) differs from conv(g repeated 3 times) (max abs error "
                                  "{err:.3g}).").format(what=what, err=err.max().item()))
    _ok(_("gray_first_conv: a copy with weight summed over RGB, in_channels=1; new(g) == conv(3 × g)"))


# --- 2. output shape by arithmetic ------------------------------------------------------------

def _two(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _arith(layers, size, *, padding=True, dilation=True, stride=True, channels=True, pools=True,
           rounding="floor", swap=False) -> tuple[int, int, int]:
    """The output shape by the formula, with one plausible mistake switched on."""
    import math
    c, h, w = size
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            k, s, p, d = layer.kernel_size, layer.stride, layer.padding, layer.dilation
            if channels:
                c = layer.out_channels
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            if not pools:
                continue
            k, s, p = _two(layer.kernel_size), _two(layer.stride), _two(layer.padding)
            d = _two(getattr(layer, "dilation", 1))
        else:
            continue
        if swap:
            k, s, p, d = k[::-1], s[::-1], p[::-1], d[::-1]
        out = []
        for n, kk, ss, pp, dd in zip((h, w), k, s, p, d):
            span = n + 2 * (pp if padding else 0) - (dd if dilation else 1) * (kk - 1) - 1
            ss = ss if stride else 1
            out.append({"floor": span // ss, "ceil": math.ceil(span / ss),
                        "float": span / ss}[rounding] + 1)
        h, w = out
    return c, h, w


def _stacks() -> list[tuple[list[nn.Module], tuple[int, int, int]]]:
    torch.manual_seed(132)   # layer initialisation only; the shapes do not depend on it
    return [
        ([nn.Conv2d(3, 16, 7, stride=2, padding=3), nn.BatchNorm2d(16), nn.ReLU(),
          nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(16, 32, 3, stride=2, padding=1)], (3, 225, 190)),
        ([nn.Conv2d(1, 8, (3, 5), stride=(1, 2), padding=(0, 2), dilation=(2, 1)), nn.ReLU(),
          nn.AvgPool2d(2), nn.Conv2d(8, 4, 3, dilation=3)], (1, 61, 47)),
        ([nn.Conv2d(3, 6, 5), nn.MaxPool2d(kernel_size=3, stride=2, dilation=2),
          nn.Conv2d(6, 12, 1), nn.AvgPool2d(3, stride=1, padding=1)], (3, 40, 33)),
    ]


_SHAPE_HINTS = [
    (dict(padding=False), N_("padding is missing: add 2 * padding to the size (n + 2p - d(k - 1) - 1).")),
    (dict(dilation=False), N_("dilation is missing: a dilated kernel spans d(k - 1) + 1 pixels, so subtract "
                              "d * (k - 1).")),
    (dict(stride=False), N_("the stride is missing: divide by the stride, then round down and add 1.")),
    (dict(rounding="ceil"), N_("you rounded up: PyTorch rounds DOWN (floor, //) unless ceil_mode=True.")),
    (dict(rounding="float"), N_("the sizes are not whole numbers: use floor division //.")),
    (dict(channels=False), N_("C did not change: a convolution's output has conv.out_channels channels.")),
    (dict(pools=False), N_("the pooling layers were skipped: MaxPool2d and AvgPool2d shrink H and W with the "
                           "same formula (kernel_size, stride, padding; they may be stored as ints, not pairs).")),
    (dict(swap=True), N_("H and W are swapped: kernel_size, stride, padding and dilation are (h, w) pairs; "
                         "use [0] for the height and [1] for the width.")),
]


def _as_shape(value, what: str) -> tuple:
    if value is None:
        raise ExerciseError(_("{what} returned None: fill in the TODO.").format(what=what))
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if not isinstance(value, (tuple, list, torch.Size)):
        raise ExerciseError(_("{what} should return a tuple (C, H, W); got {type_name}.").format(
                              what=what, type_name=type(value).__name__))
    value = tuple(value)
    if len(value) != 3:
        hint = (_(" Leave out the batch dimension N.") if len(value) == 4 else
                _(" Include the channels C first.") if len(value) == 2 else "")
        raise ExerciseError(_("{what} should return three numbers (C, H, W); got {n_value}: {value}.{hint}").format(
                              what=what, n_value=len(value), value=value, hint=hint))
    return value


@learner_check
def check_output_shape(output_shape) -> None:
    """``output_shape(layers, (C, H, W))``: the (C, H, W) after a list of Conv2d / MaxPool2d /
    AvgPool2d / BatchNorm2d / ReLU layers, by arithmetic; compared with a real forward pass."""
    for layers, size in _stacks():
        with torch.no_grad():
            want = tuple(nn.Sequential(*layers).eval()(torch.zeros(1, *size)).shape[1:])
        assert _arith(layers, size) == want   # the reference formula agrees with PyTorch
        got = _as_shape(_call(output_shape, f"output_shape(layers, {size})", list(layers), size),
                        "output_shape")
        if got == want and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in got):
            continue
        if tuple(float(v) for v in got) == tuple(float(v) for v in want):
            raise ExerciseError(_("output_shape gives {got}: return ints (use // and int values), expected "
                                  "{want}.").format(got=got, want=want))
        names = ", ".join(type(m).__name__ for m in layers)
        for mistake, hint in _SHAPE_HINTS:
            wrong = _arith(layers, size, **mistake)
            if wrong != want and tuple(float(v) for v in got) == tuple(float(v) for v in wrong):
                raise ExerciseError(_("output_shape([{names}], {size}) = {got}, a forward pass gives {want}: "
                                      "{hint}").format(names=names, size=size, got=got, want=want, hint=_(hint)))
        raise ExerciseError(_("output_shape([{names}], {size}) = {got}, a forward pass gives {want}.").format(
                              names=names, size=size, got=got, want=want))
    _ok(_("output_shape: floor((n + 2p - d(k - 1) - 1) / s) + 1 per conv/pool layer, C from the last conv"))


# --- 3. parameter count -----------------------------------------------------------------------

def _count_cases() -> list[tuple[str, nn.Module]]:
    torch.manual_seed(133)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Sequential(nn.Conv2d(8, 4, 1, bias=False), nn.BatchNorm2d(4)),
                        nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    for p in net[0].parameters():       # a frozen first layer: still parameters of the model
        p.requires_grad_(False)
    tied = nn.Sequential(nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 12))
    shared = nn.Linear(6, 6, bias=False)
    tied.append(shared)
    tied.append(nn.Sequential(shared))  # the same layer used twice: one set of weights
    return [(_("a conv net with BatchNorm and a frozen first layer"), net), (_("a model that uses one layer twice"), tied)]


def _number_of(value, what: str) -> int:
    if value is None:
        raise ExerciseError(_("{what} returned None: fill in the TODO.").format(what=what))
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ExerciseError(_("{what} should be one number; got a tensor of shape {value_shape}.").format(
                                  what=what, value_shape=tuple(value.shape)))
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ExerciseError(_("{what} should be an int; got {type_name}.").format(
                              what=what, type_name=type(value).__name__))
    if float(value) != int(value):
        raise ExerciseError(_("{what} = {value}: a count of numbers is a whole number (sum of p.numel()).").format(
                              what=what, value=value))
    return int(value)


@learner_check
def check_count_params(count_params) -> None:
    """``count_params(module)``: the number of parameters (each once, frozen ones too, not buffers),
    ``sum(p.numel() for p in module.parameters())``."""
    for what, module in _count_cases():
        got = _number_of(_call(count_params, f"count_params({what})", module), "count_params")
        want = sum(p.numel() for p in module.parameters())
        if got == want:
            continue
        has_buffers = any(True for __ in module.buffers())
        wrong = [
            (sum(v.numel() for v in module.state_dict().values()) if has_buffers else want,
             _("you counted the state_dict, which also holds buffers (BatchNorm's running_mean, running_var, "
               "num_batches_tracked): buffers are not parameters — count module.parameters().")),
            (sum(p.numel() for p in module.parameters() if p.requires_grad),
             _("you counted only trainable parameters (requires_grad); a frozen layer's weights are still "
               "parameters of the model — count them all.")),
            (sum(p.numel() for m in module.modules() for p in m.parameters()),
             _("module.modules() yields the model AND every sub-module, and m.parameters() is already "
               "recursive, so a parameter was counted once per enclosing module: call module.parameters() once.")),
            (sum(p.numel() for __, p in module.named_parameters(remove_duplicate=False)),
             _("a layer used twice shares ONE set of weights; module.parameters() yields each parameter once.")),
            (sum(p.numel() for m in module.modules() for p in m.parameters(recurse=False) if p.requires_grad),
             _("you counted only trainable parameters (requires_grad); count the frozen ones too.")),
            (sum(p.numel() for m in module.children() for p in m.parameters(recurse=False)),
             _("only the top-level layers were counted: nested ones (a Sequential inside) have parameters too; "
               "module.parameters() walks the whole tree.")),
        ]
        for value, hint in wrong:
            if value != want and got == value:
                raise ExerciseError(_("count_params({what}) = {got:,}, expected {want:,}: {hint}").format(
                                      what=what, got=got, want=want, hint=hint))
        raise ExerciseError(_("count_params({what}) = {got:,}, expected {want:,}.").format(
                              what=what, got=got, want=want))
    _ok(_("count_params: every parameter once — frozen ones included, buffers and repeats not"))
