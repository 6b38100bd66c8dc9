"""Checks for ``exercises/05_*.ipynb`` (feature maps; notebook ``notebooks/05_*``)."""
from __future__ import annotations

import torch

from ._common import ExerciseError, _close, _ok, _tensor, learner_check

__all__ = ['check_capture', 'check_fraction_active', 'check_top_channels']


@learner_check
def check_capture(capture) -> None:
    """``capture(model, module, x)`` must return ``module``'s output (pre-ReLU) and remove its hook."""
    from torch import nn

    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(6, 4, 3)).eval()
    x = torch.randn(2, 3, 12, 12)
    want = torch.nn.functional.conv2d(x, model[0].weight, model[0].bias, padding=1)
    got = capture(model, model[0], x)
    if model[0]._forward_hooks:
        raise ExerciseError("the hook is still registered after capture(): call handle.remove() "
                            "(in a finally: block, so it is removed after errors too).")
    got = _tensor(got, "capture(model, module, x)")
    if got.shape == want.shape and torch.allclose(got, want.clamp_min(0)) and (want < 0).any():
        raise ExerciseError("the recorded map has no negative values: the in-place ReLU rewrote it. "
                            "Store out.clone(), not out.")
    _close(got, want, "capture(model, module, x)")
    _ok("capture records the module's output and cleans up its hook")


@learner_check
def check_fraction_active(fraction_active) -> None:
    """``fraction_active(f)``: (N, C, H, W) -> (N,), share of entries > 0 per image."""
    torch.manual_seed(6)
    f = torch.randn(3, 5, 4, 4).clamp_min(0) * torch.tensor([1.0, 0.0, 1.0]).view(3, 1, 1, 1)
    f[2, :, :2] = 0
    _close(fraction_active(f), (f > 0).float().mean(dim=(1, 2, 3)), "fraction_active(f)")
    _ok("fraction_active is right, one value per image")


@learner_check
def check_top_channels(top_channels) -> None:
    """``top_channels(fmap, k)``: (C, H, W) -> the k channel indices with the largest mean."""
    from ..plot import top_channels as reference

    torch.manual_seed(7)
    fmap = torch.rand(10, 6, 6) * torch.arange(10).flip(0).float().view(10, 1, 1).add(1).mul(torch.rand(10, 1, 1))
    got = top_channels(fmap, 4)
    if got is None:
        raise ExerciseError("top_channels returned None: fill in the TODO.")
    got = [int(i) for i in (got.tolist() if isinstance(got, torch.Tensor) else got)]
    want = reference(fmap, 4)
    if sorted(got) != sorted(want):
        raise ExerciseError(f"top_channels(fmap, 4) gave {got}; the 4 channels with the largest mean "
                            f"activation are {want}. Rank by fmap.mean(dim=(1, 2)).")
    _ok("top_channels picks the strongest channels")
