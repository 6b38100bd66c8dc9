"""Checks for ``exercises/01_*.ipynb`` (convolution math; notebook ``notebooks/01_*``)."""
from __future__ import annotations

import torch

from ..i18n import _
from ._common import ExerciseError, _close, _int, _ok, _tensor, learner_check

__all__ = ['check_conv_output_size', 'check_conv2d_unfold', 'check_conv1x1_matmul']


@learner_check
def check_conv_output_size(conv_output_size) -> None:
    """``conv_output_size(size, kernel, stride, padding, dilation)`` -> int, vs real nn.Conv2d outputs."""
    from torch import nn

    cases = [(224, 3, 1, 1, 1), (224, 7, 2, 3, 1), (7, 3, 2, 0, 1), (10, 3, 3, 0, 1), (9, 3, 1, 2, 2),
             (13, 5, 2, 2, 2), (5, 1, 1, 0, 1), (8, 4, 4, 0, 1)]
    for size, k, s, p, d in cases:
        with torch.no_grad():
            want = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, size, size)).shape[-1]
        got = _int(conv_output_size(size, k, s, p, d), f"conv_output_size({size}, {k}, {s}, {p}, {d})")
        if got != want:
            raise ExerciseError(
                _("conv_output_size(size={size}, kernel={k}, stride={s}, padding={p}, dilation={d}) = {got}, "
                  "but nn.Conv2d gives {want}. Hint: floor((size + 2p - d(k-1) - 1) / s) + 1.").format(
                          size=size, k=k, s=s, p=p, d=d, got=got, want=want))
    _ok(_("conv_output_size matches nn.Conv2d on {n_cases} settings").format(n_cases=len(cases)))


@learner_check
def check_conv2d_unfold(conv2d_unfold) -> None:
    """``conv2d_unfold(x, weight, bias, stride, padding)`` (N, C_in, H, W) -> (N, C_out, H', W') vs F.conv2d."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(11)
    for (c_in, c_out, kh, kw, s, p, h, w) in [(3, 4, 3, 3, 1, 1, 6, 7), (2, 5, 1, 3, 2, 0, 7, 9),
                                              (4, 3, 2, 2, 2, 1, 8, 8)]:
        x = torch.randn(2, c_in, h, w, generator=g)
        weight = torch.randn(c_out, c_in, kh, kw, generator=g)
        bias = torch.randn(c_out, generator=g)
        want = F.conv2d(x, weight, bias, stride=s, padding=p)
        _close(conv2d_unfold(x, weight, bias, s, p), want,
               _("conv2d_unfold with kernel {kh}×{kw}, stride {s}, padding {p}").format(kh=kh, kw=kw, s=s, p=p))
    _ok(_("conv2d_unfold equals F.conv2d (non-square kernels, stride, padding)"))


@learner_check
def check_conv1x1_matmul(conv1x1_matmul) -> None:
    """``conv1x1_matmul(x, weight, bias)``: x (N, C_in, H, W), weight (C_out, C_in) -> (N, C_out, H, W)."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(12)
    x = torch.randn(3, 5, 4, 6, generator=g)
    weight, bias = torch.randn(7, 5, generator=g), torch.randn(7, generator=g)
    want = F.conv2d(x, weight[:, :, None, None], bias)
    got = _tensor(conv1x1_matmul(x, weight, bias), "conv1x1_matmul(x, weight, bias)")
    if tuple(got.shape) == (3, 4, 6, 7):
        raise ExerciseError(_("the result is (N, H, W, C_out): permute it back to (N, C_out, H, W)."))
    _close(got, want, "conv1x1_matmul(x, weight, bias)")
    _ok(_("conv1x1_matmul equals a 1×1 nn.Conv2d"))
