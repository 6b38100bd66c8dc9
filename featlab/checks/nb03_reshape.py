"""Checks for ``exercises/03_*.ipynb`` (reshape / permute; notebook ``notebooks/03_*``)."""
from __future__ import annotations

import torch

from ..i18n import _
from ._common import ExerciseError, _close, _ok, _same, _tensor, learner_check

__all__ = ['check_to_tokens', 'check_from_tokens', 'check_space_to_depth', 'check_patchify',
           'check_layer_norm_tokens']


@learner_check
def check_to_tokens(to_tokens) -> None:
    """``to_tokens(f)``: (N, C, H, W) -> (N, H*W, C), token h*W + w = pixel (h, w)."""
    g = torch.Generator().manual_seed(31)
    f = torch.randn(2, 5, 3, 4, generator=g)
    got = _tensor(to_tokens(f), "to_tokens(f)")
    if tuple(got.shape) == (2, 12, 5) and torch.equal(got, f.reshape(2, 12, 5)):
        raise ExerciseError(_("to_tokens uses f.reshape(N, H*W, C): right shape, scrambled values. Keep C "
                              "together: flatten H and W, then move C last."))
    _close(got, f.flatten(2).transpose(1, 2), "to_tokens(f)", atol=0, rtol=0)
    _ok(_("to_tokens gives (N, H·W, C) in raster order"))


@learner_check
def check_from_tokens(from_tokens) -> None:
    """``from_tokens(t, h, w)``: (N, H*W, C) -> (N, C, H, W), the inverse of to_tokens."""
    g = torch.Generator().manual_seed(32)
    f = torch.randn(2, 6, 3, 5, generator=g)
    tokens = f.flatten(2).transpose(1, 2)
    got = _tensor(from_tokens(tokens, 3, 5), "from_tokens(tokens, 3, 5)")
    _close(got, f, "from_tokens(tokens, 3, 5)", atol=0, rtol=0)
    _ok(_("from_tokens inverts to_tokens exactly"))


@learner_check
def check_space_to_depth(space_to_depth) -> None:
    """``space_to_depth(x, r)``: (N, C, H, W) -> (N, C*r*r, H/r, W/r), equal to F.pixel_unshuffle."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(33)
    for r, shape in [(2, (2, 3, 6, 8)), (3, (1, 2, 9, 6))]:
        x = torch.randn(*shape, generator=g)
        _close(space_to_depth(x, r), F.pixel_unshuffle(x, r), f"space_to_depth(x of {shape}, r={r})",
               atol=0, rtol=0)
    _ok(_("space_to_depth equals F.pixel_unshuffle"))


def _patchify_ref(x: torch.Tensor, p: int) -> torch.Tensor:
    import torch.nn.functional as F

    return F.unfold(x, kernel_size=p, stride=p).transpose(1, 2)


@learner_check
def check_patchify(patchify) -> None:
    """``patchify(x, P)``: (N, C, H, W) -> (N, (H/P)(W/P), C*P*P), patches in raster order, each
    flattened as (c, i, j) — the order of F.unfold and of a Conv2d weight (D, C, P, P)."""
    g = torch.Generator().manual_seed(34)
    for p, shape in [(2, (2, 3, 4, 6)), (3, (1, 2, 6, 9))]:
        x = torch.randn(*shape, generator=g)
        n, c, h, w = shape
        hp, wp = h // p, w // p
        what = f"patchify(x of {shape}, P={p})"
        got = _tensor(patchify(x, p), what)
        want = _patchify_ref(x, p)
        if tuple(got.shape) == tuple(want.shape) and not _same(got, want, atol=0):
            blocks = x.view(n, c, hp, p, wp, p)
            wrong = [
                (_("you reshaped the picture without moving the patch axes together: a reshape(N, L, C*P*P) "
                   "cuts rows, not P×P patches. view to (N, C, H/P, P, W/P, P), permute, then reshape (or use "
                   "F.unfold)."), x.reshape(n, hp * wp, c * p * p)),
                (_("the tokens are in column-major order (down the first column first): token k must be the "
                   "patch in grid row k // (W/P), column k % (W/P)."),
                 want.view(n, hp, wp, -1).transpose(1, 2).reshape(n, hp * wp, -1)),
                (_("each patch vector is ordered (i, j, c), channels last; it must be (c, i, j), the order of "
                   "a Conv2d weight (D, C, P, P) flattened."),
                 blocks.permute(0, 2, 4, 3, 5, 1).reshape(n, hp * wp, -1)),
                (_("each patch vector is ordered (c, j, i): the two in-patch axes are swapped."),
                 blocks.permute(0, 2, 4, 1, 5, 3).reshape(n, hp * wp, -1)),
            ]
            for hint, value in wrong:
                if _same(got, value, atol=0):
                    raise ExerciseError(_("{what}: right shape, wrong values — {hint}").format(what=what, hint=hint))
        _close(got, want, what, atol=0, rtol=0)
    _ok(_("patchify equals F.unfold(x, P, stride=P).transpose(1, 2): raster order, (c, i, j) patch vectors"))


@learner_check
def check_layer_norm_tokens(layer_norm_tokens) -> None:
    """``layer_norm_tokens(t, eps)``: tokens (N, L, C) -> each token normalised over its C channels
    (mean 0, biased variance 1, no affine), equal to F.layer_norm(t, (C,), eps=eps)."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(35)
    t = torch.randn(3, 7, 5, generator=g) * torch.linspace(0.5, 3.0, 5) + torch.linspace(-2.0, 2.0, 5)
    t[1, 4] = 0.5 + 1e-3 * torch.tensor([-1.0, 2.0, 0.0, 1.0, -2.0])   # a nearly flat token: where eps goes shows
    eps = 1e-5
    what = "layer_norm_tokens(t of (3, 7, 5), eps=1e-5)"
    got = _tensor(layer_norm_tokens(t, eps), what)
    want = F.layer_norm(t, (5,), eps=eps)
    if tuple(got.shape) == tuple(want.shape) and not _same(got, want):
        def norm(dims, unbiased=False):
            m = t.mean(dims, keepdim=True)
            v = t.var(dims, keepdim=True, unbiased=unbiased)
            return (t - m) / (v + eps).sqrt()
        m, v = t.mean(-1, keepdim=True), t.var(-1, keepdim=True, unbiased=False)
        wrong = [
            (_("eps is missing (or not the argument eps): divide by sqrt(var + eps); it matters for a nearly "
               "flat token."), (t - m) / v.sqrt()),
            (_("eps is added outside the square root: divide by sqrt(var + eps), as LayerNorm does, not by "
               "sqrt(var) + eps."), (t - m) / (v.sqrt() + eps)),
            (_("you normalised over the token axis (dim 1, positions) instead of the channel axis: use the "
               "statistics of each token's C values (dim=-1)."), norm(1)),
            (_("you normalised over the whole (L, C) sample: a LayerNorm on tokens uses each token's own C "
               "values (dim=-1), one mean and variance per token."), norm((1, 2))),
            (_("you normalised over the batch axis (dim 0), like BatchNorm: the result then depends on the "
               "other samples. Use each token's C values (dim=-1)."), norm(0)),
            (_("use the biased variance (unbiased=False, divide by C), as LayerNorm does."), norm(-1, unbiased=True)),
            (_("divide by the standard deviation, not the variance."), (t - t.mean(-1, keepdim=True))
             / (t.var(-1, keepdim=True, unbiased=False) + eps)),
        ]
        for hint, value in wrong:
            if _same(got, value):
                raise ExerciseError(_("{what}: {hint}").format(what=what, hint=hint))
    _close(got, want, what)
    # batch independence: one sample alone gives the same result as inside the batch
    alone = _tensor(layer_norm_tokens(t[1:2], eps), "layer_norm_tokens(one sample)")
    _close(alone, want[1:2], _("layer_norm_tokens of one sample alone (must not depend on the batch)"))
    _ok(_("layer_norm_tokens normalises each token over its channels, independently of the batch"))
