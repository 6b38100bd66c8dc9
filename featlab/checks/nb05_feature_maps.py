"""Checks for ``exercises/05_*.ipynb`` (feature maps; notebook ``notebooks/05_*``)."""
from __future__ import annotations

import torch

from ..i18n import _
from ._common import ExerciseError, _close, _describe, _int, _items, _ok, _same, _tensor, learner_check

__all__ = ['check_capture', 'check_fraction_active', 'check_top_channels']


class _ModelError(RuntimeError):
    """Raised on purpose inside a model, to see that capture() removes its hook after an error."""


def _capture_model():
    """Conv → in-place ReLU → Conv (the layer to capture) → in-place ReLU → Conv, and an input."""
    from torch import nn

    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(6, 4, 3, padding=1),
                          nn.ReLU(inplace=True), nn.Conv2d(4, 2, 1)).eval()
    return model, torch.randn(2, 3, 12, 12)


@learner_check
def check_capture(capture) -> None:
    """``capture(model, module, x)`` must return ``module``'s output (pre-ReLU) and remove its hook,
    also when the model raises."""
    import torch.nn.functional as F
    from torch import nn

    model, x = _capture_model()
    module = model[2]                       # not the first layer: module(x) alone is not its output
    with torch.no_grad():
        want = F.conv2d(model[1](model[0](x)), module.weight, module.bias, padding=1)
    got = capture(model, module, x.clone())
    if module._forward_hooks or module._forward_pre_hooks:
        raise ExerciseError(_("the hook is still registered after capture(): call handle.remove() (in a "
                              "finally: block, so it is removed after errors too)."))
    got = _tensor(got, "capture(model, module, x)")
    if got.shape == want.shape and torch.allclose(got, want.clamp_min(0)) and (want < 0).any():
        raise ExerciseError(_("the recorded map has no negative values: the in-place ReLU after the layer "
                              "rewrote it. Store out.clone(), not out."))
    if tuple(got.shape) == (2, 2, 12, 12):
        raise ExerciseError(_("capture returned the model's final output: return what `module` produced (a "
                              "forward hook on module records it)."))
    _close(got, want, "capture(model, module, x)")

    class Fails(nn.Module):
        def forward(self, t):
            raise _ModelError(_("a layer after the captured one failed"))

    broken = nn.Sequential(model[0], model[1], model[2], Fails())
    try:
        capture(broken, model[2], x.clone())
    except ExerciseError as e:
        if not isinstance(e.__cause__, _ModelError):
            raise
    if model[2]._forward_hooks:
        raise ExerciseError(_("when model(x) raises, the hook stays registered on the module (and records "
                              "every later forward pass): remove it in a finally: block (handle = "
                              "module.register_forward_hook(...); try: model(x) finally: handle.remove())."))
    _ok(_("capture records the module's output and cleans up its hook, even after an error"))


@learner_check
def check_fraction_active(fraction_active) -> None:
    """``fraction_active(f)``: (N, C, H, W) -> (N,), share of entries > 0 per image."""
    torch.manual_seed(6)
    f = torch.randn(3, 5, 4, 4)             # image 0: before a ReLU, with negative values
    f[1] = 0                                # image 1: all zero
    f[2] = f[2].clamp_min(0)                # image 2: after a ReLU, with a zero band
    f[2, :, :2] = 0
    what = "fraction_active(f)"
    got = _tensor(fraction_active(f.clone()), what)
    want = (f > 0).float().mean(dim=(1, 2, 3))
    if tuple(got.shape) == (3,) and not _same(got, want):
        for hint, value in [
                (_("zeros are counted as active: count entries > 0 (strictly positive)."),
                 (f >= 0).float().mean(dim=(1, 2, 3))),
                (_("negative entries are counted as active (f != 0): count entries > 0 only; this map was "
                   "taken before its ReLU."), (f != 0).float().mean(dim=(1, 2, 3))),
                (_("this is a count, not a share: take the mean, not the sum."), (f > 0).float().sum(dim=(1, 2, 3))),
                (_("this is the share of positive entries minus the share of negative ones (sign().mean()): "
                   "count entries > 0."), f.sign().mean(dim=(1, 2, 3)))]:
            if _same(got, value):
                raise ExerciseError(_("{what} gave {values}: {hint}").format(
                                      what=what, values=[round(v, 3) for v in got.tolist()], hint=hint))
    _close(got, want, what)
    _ok(_("fraction_active is right, one value per image (strictly positive entries)"))


@learner_check
def check_top_channels(top_channels) -> None:
    """``top_channels(fmap, k)``: (C, H, W) -> the k channel indices with the largest mean."""
    from ..plot import top_channels as reference

    g = torch.Generator().manual_seed(7)
    means = torch.tensor([0.1, 0.9, -2.0, 0.5, 0.3, 1.2, 0.05, 0.7, -1.5, 0.2])
    fmap = torch.rand(10, 6, 6, generator=g) * 0.2 + means[:, None, None]
    fmap[6, 2, 3] = 10.0                    # one hot pixel: the largest maximum, not the largest mean
    fmap[4] += torch.linspace(-3, 3, 6)     # channel 4: mean 0.4, but the second largest maximum
    for k in (4, 1):
        got = top_channels(fmap.clone(), k)
        if got is None:
            raise ExerciseError(_("top_channels returned None: fill in the TODO."))
        rows = _items(got)
        if rows is None:
            raise ExerciseError(_("top_channels(fmap, {k}) should return a list of {k} channel indices (ints); "
                                  "got {given}.").format(k=k, given=_describe(got)))
        got = [_int(i, _("top_channels(fmap, {k}): an index").format(k=k)) for i in rows]
        want = reference(fmap, k)
        if sorted(got) != sorted(want):
            by = {_("largest maximum"): fmap.amax(dim=(1, 2)), _("largest mean |activation|"): fmap.abs().mean(dim=(1, 2)),
                  _("smallest mean"): -fmap.mean(dim=(1, 2))}
            hint = next((_(" You ranked by {name}.").format(name=name) for name, v in by.items()
                         if sorted(v.topk(k).indices.tolist()) == sorted(got)), "")
            raise ExerciseError(_("top_channels(fmap, {k}) gave {got}; the {k} channels with the largest mean "
                                  "activation are {want}.{hint} Rank by fmap.mean(dim=(1, 2)) and take the k "
                                  "largest.").format(k=k, got=got, want=want, hint=hint))
    _ok(_("top_channels picks the strongest channels by mean (k = 4 and k = 1)"))
