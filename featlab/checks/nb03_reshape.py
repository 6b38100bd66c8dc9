"""Checks for ``exercises/03_*.ipynb`` (reshape / permute; notebook ``notebooks/03_*``)."""
from __future__ import annotations

import torch

from ._common import ExerciseError, _close, _ok, _tensor

__all__ = ['check_to_tokens', 'check_from_tokens', 'check_space_to_depth']


def check_to_tokens(to_tokens) -> None:
    """``to_tokens(f)``: (N, C, H, W) -> (N, H*W, C), token h*W + w = pixel (h, w)."""
    g = torch.Generator().manual_seed(31)
    f = torch.randn(2, 5, 3, 4, generator=g)
    got = _tensor(to_tokens(f), "to_tokens(f)")
    if tuple(got.shape) == (2, 12, 5) and torch.equal(got, f.reshape(2, 12, 5)):
        raise ExerciseError("to_tokens uses f.reshape(N, H*W, C): right shape, scrambled values. "
                            "Keep C together: flatten H and W, then move C last.")
    _close(got, f.flatten(2).transpose(1, 2), "to_tokens(f)", atol=0, rtol=0)
    _ok("to_tokens gives (N, H·W, C) in raster order")


def check_from_tokens(from_tokens) -> None:
    """``from_tokens(t, h, w)``: (N, H*W, C) -> (N, C, H, W), the inverse of to_tokens."""
    g = torch.Generator().manual_seed(32)
    f = torch.randn(2, 6, 3, 5, generator=g)
    tokens = f.flatten(2).transpose(1, 2)
    got = _tensor(from_tokens(tokens, 3, 5), "from_tokens(tokens, 3, 5)")
    _close(got, f, "from_tokens(tokens, 3, 5)", atol=0, rtol=0)
    _ok("from_tokens inverts to_tokens exactly")


def check_space_to_depth(space_to_depth) -> None:
    """``space_to_depth(x, r)``: (N, C, H, W) -> (N, C*r*r, H/r, W/r), equal to F.pixel_unshuffle."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(33)
    for r, shape in [(2, (2, 3, 6, 8)), (3, (1, 2, 9, 6))]:
        x = torch.randn(*shape, generator=g)
        _close(space_to_depth(x, r), F.pixel_unshuffle(x, r), f"space_to_depth(x of {shape}, r={r})",
               atol=0, rtol=0)
    _ok("space_to_depth equals F.pixel_unshuffle")
