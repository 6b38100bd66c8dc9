"""Convolution three ways (loops, im2col + matmul, ``F.conv2d``) and its output-size formula.

Taught in ``notebooks/01_convolution_math.ipynb``. Deep-learning "convolution" is
cross-correlation (the kernel is not flipped)::

    y[n, c, h, w] = b[c] + sum_{c', i, j} x[n, c', h*s + i*d - p, w*s + j*d - p] * W[c, c', i, j]

with stride ``s``, dilation ``d``, zero padding ``p``; with ``groups=g`` output channel ``c``
only sees the ``C_in / g`` input channels of its group.
"""
from __future__ import annotations

import math
from typing import Union

import torch
import torch.nn.functional as F

__all__ = ["conv2d_loops", "conv2d_unfold", "conv2d", "conv_output_size", "conv1x1_as_linear"]

IntPair = Union[int, tuple[int, int]]


def _pair(value: IntPair, name: str, minimum: int) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(3, 1)`` stays; anything else raises a clear error."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be an int or a (height, width) pair of ints; got {value!r}.")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value!r}.")
    return pair  # type: ignore[return-value]


def _check(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, groups: int) -> None:
    """Validate (N, C_in, H, W) input, (C_out, C_in/groups, kH, kW) weight and (C_out,) bias."""
    for t, what in ((x, "x"), (weight, "weight")):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{what} must be a torch.Tensor; got {type(t).__name__}.")
        if not torch.is_floating_point(t):
            raise ValueError(f"{what} must be a float tensor; got {t.dtype}. Fix: {what}.float().")
    if x.ndim != 4:
        fix = " Fix: x.unsqueeze(0) for a single image." if x.ndim == 3 else ""
        raise ValueError(f"x must be a batch (N, C, H, W); got shape {tuple(x.shape)}.{fix}")
    if weight.ndim != 4:
        raise ValueError(f"weight must be (C_out, C_in/groups, kH, kW); got shape {tuple(weight.shape)}.")
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"groups must be a positive int; got {groups!r}.")
    c_in, c_out, c_per_group = x.shape[1], weight.shape[0], weight.shape[1]
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide both C_in={c_in} and C_out={c_out}.")
    if c_per_group * groups != c_in:
        hint = ""
        if x.shape[-1] == c_per_group * groups:
            hint = " The input looks channels-last (N, H, W, C). Fix: x.permute(0, 3, 1, 2)."
        raise ValueError(
            f"weight {tuple(weight.shape)} with groups={groups} expects C_in={c_per_group * groups} "
            f"input channels; x of shape {tuple(x.shape)} has C={c_in}.{hint}")
    if bias is not None and tuple(bias.shape) != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},) = (C_out,); got {tuple(bias.shape)}.")


def conv_output_size(size: IntPair, kernel: IntPair, stride: IntPair = 1, padding: IntPair = 0,
                     dilation: IntPair = 1, ceil_mode: bool = False) -> int | tuple[int, int]:
    """Output height/width of a convolution or pooling layer.

    ``out = floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1``.
    ``ceil_mode=True`` (pooling layers) rounds up instead, but, as PyTorch does, drops a last
    window that would start in the right padding. Each argument is an int or an (h, w) pair;
    the result is an int when every argument is an int, else an (h, w) tuple.
    """
    args = (size, kernel, stride, padding, dilation)
    scalar = all(isinstance(a, int) for a in args)
    size2, k2 = _pair(size, "size", 1), _pair(kernel, "kernel", 1)
    s2, p2, d2 = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    out = []
    for n, k, s, p, d in zip(size2, k2, s2, p2, d2):
        span = n + 2 * p - d * (k - 1) - 1          # room left for the window to slide
        if span < 0:
            raise ValueError(f"kernel {k} (dilation {d}) is larger than the padded input {n + 2 * p}.")
        o = (math.ceil(span / s) if ceil_mode else span // s) + 1
        if ceil_mode and (o - 1) * s >= n + p:      # last window would start in the padding
            o -= 1
        out.append(o)
    return out[0] if scalar else (out[0], out[1])


def conv2d_loops(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
                 groups: int = 1) -> torch.Tensor:
    """Cross-correlation written as plain loops over the output: (N, C_in, H, W) -> (N, C_out, H', W').

    ``weight`` is (C_out, C_in/groups, kH, kW). Readable, slow: use it on small inputs only.
    """
    _check(x, weight, bias, groups)
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    dh, dw = _pair(dilation, "dilation", 1)
    n_img, c_in, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    oh, ow = conv_output_size((h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    xp = F.pad(x, (pw, pw, ph, ph))                  # zero padding: left, right, top, bottom
    out_per_group = c_out // groups
    y = torch.zeros(n_img, c_out, oh, ow, dtype=x.dtype, device=x.device)
    for n in range(n_img):
        for c in range(c_out):
            g = c // out_per_group                   # the group this output channel belongs to
            first = g * c_per_group                  # its first input channel
            for i in range(oh):
                for j in range(ow):
                    top, left = i * sh, j * sw
                    patch = xp[n, first:first + c_per_group,
                               top:top + dh * (kh - 1) + 1:dh,
                               left:left + dw * (kw - 1) + 1:dw]   # (C_in/groups, kH, kW)
                    y[n, c, i, j] = (patch * weight[c]).sum()
            if bias is not None:
                y[n, c] += bias[c]
    return y


def conv2d_unfold(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
                  groups: int = 1) -> torch.Tensor:
    """Cross-correlation as im2col + one matrix product: (N, C_in, H, W) -> (N, C_out, H', W').

    ``F.unfold`` copies every receptive-field patch into a column, (N, C_in·kH·kW, H'·W');
    the weight, flattened to (C_out, C_in·kH·kW), multiplies them all at once (per group).
    """
    _check(x, weight, bias, groups)
    s2, p2, d2 = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    n_img, _, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    oh, ow = conv_output_size((h, w), (kh, kw), s2, p2, d2)
    cols = F.unfold(x, (kh, kw), dilation=d2, padding=p2, stride=s2)      # (N, C_in*kH*kW, L)
    cols = cols.view(n_img, groups, c_per_group * kh * kw, oh * ow)       # (N, G, K, L)
    w_mat = weight.reshape(groups, c_out // groups, c_per_group * kh * kw)  # (G, C_out/G, K)
    y = torch.einsum("gok,ngkl->ngol", w_mat, cols).reshape(n_img, c_out, oh, ow)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    return y


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: IntPair = 1, padding: IntPair = 0, dilation: IntPair = 1,
           groups: int = 1) -> torch.Tensor:
    """PyTorch's own ``F.conv2d`` with the same signature and checks as the two versions above."""
    _check(x, weight, bias, groups)
    s2, p2, d2 = _pair(stride, "stride", 1), _pair(padding, "padding", 0), _pair(dilation, "dilation", 1)
    conv_output_size(tuple(x.shape[-2:]), tuple(weight.shape[-2:]), s2, p2, d2)  # raises if too small
    return F.conv2d(x, weight, bias, stride=s2, padding=p2, dilation=d2, groups=groups)


def conv1x1_as_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """A 1×1 convolution computed as one ``Linear`` applied to every pixel.

    x (N, C_in, H, W) -> pixels (N·H·W, C_in) -> ``F.linear`` -> (N, C_out, H, W).
    ``weight`` is (C_out, C_in, 1, 1) as stored by ``nn.Conv2d``, or (C_out, C_in).
    """
    w2 = weight.reshape(weight.shape[0], -1) if weight.ndim == 4 else weight
    if weight.ndim == 4 and weight.shape[2:] != (1, 1):
        raise ValueError(f"a 1×1 convolution needs a (C_out, C_in, 1, 1) weight; got {tuple(weight.shape)}.")
    _check(x, w2[:, :, None, None], bias, 1)
    n_img, _, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(n_img * h * w, -1)          # (N*H*W, C_in)
    y = F.linear(pixels, w2, bias)                                      # (N*H*W, C_out)
    return y.view(n_img, h, w, -1).permute(0, 3, 1, 2)                  # (N, C_out, H, W)
