"""Checks for ``exercises/15_*.ipynb`` (activation maximisation; notebook ``notebooks/15_*``)."""
from __future__ import annotations

import torch
from torch import nn

from ..i18n import _
from ._common import ExerciseError, _call, _close, _ok, _same, _scalar, _tensor, learner_check

__all__ = ["check_channel_objective", "check_fourier_scale", "check_ascent_step"]



@learner_check
def check_channel_objective(channel_objective) -> None:
    """``channel_objective(acts, channel)``: (N, C, H, W) -> one number, the mean of channel ``channel``."""
    torch.manual_seed(150)
    acts = torch.randn(4, 5, 5, 6) + torch.arange(5.0).reshape(1, 5, 1, 1)
    got = _call(channel_objective, "channel_objective(acts, 3)", acts.clone(), 3)
    if isinstance(got, torch.Tensor) and got.numel() > 1:
        if tuple(got.shape) == (4,):
            raise ExerciseError(_("channel_objective gives one number per image (shape (N,)): average over the "
                                  "batch too, acts[:, channel].mean()."))
        raise ExerciseError(_("channel_objective should be one number (a 0-d tensor); got shape {got_shape}: "
                              "average over the batch and both spatial dimensions.").format(
                                      got_shape=tuple(got.shape)))
    if got is not None and not isinstance(got, torch.Tensor):
        raise ExerciseError(_("channel_objective should return a torch.Tensor (so that .backward() works); got "
                              "{type_name}.").format(type_name=type(got).__name__))
    value = _scalar(got, "channel_objective(acts, 3)")
    want = acts[:, 3].mean().item()
    wrong = [(acts.mean().item(), _("that is the mean of the whole layer; take one channel, acts[:, channel].")),
             (acts[:, 3].sum().item(), _("that is a sum; the objective is the channel's MEAN activation.")),
             (acts[3].mean().item(),
              _("that indexes the batch dimension: the channel is dim 1, acts[:, channel].")),
             (acts[:, :, 3].mean().item(), _("that indexes a row (dim 2): the channel is dim 1, acts[:, "
                                             "channel]."))]
    if abs(value - want) > 1e-4:
        for v, hint in wrong:
            if abs(value - v) < 1e-4:
                raise ExerciseError(_("channel_objective(acts, 3) = {value:.4f}, expected {want:.4f}: {hint}").format(
                                      value=value, want=want, hint=hint))
        raise ExerciseError(_("channel_objective(acts, 3) = {value:.4f}, expected {want:.4f}.").format(
                              value=value, want=want))
    a = acts.clone().requires_grad_(True)
    out = _call(channel_objective, "channel_objective(acts, 3)", a, 3)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise ExerciseError(_("the result is cut off from the graph (no gradient flows back): do not use "
                              ".item(), .detach() or .numpy() — gradient ascent needs .backward()."))
    _ok(_("channel_objective = mean over (N, H, W) of acts[:, channel]"))


@learner_check
def check_fourier_scale(fourier_scale) -> None:
    """``fourier_scale(h, w)``: (h, w // 2 + 1) weights 1 / max(f, 1 / max(h, w))."""
    from ..visualize import fourier_scale as ref

    h, w = 5, 12
    got = _tensor(_call(fourier_scale, "fourier_scale(5, 12)", h, w), "fourier_scale(5, 12)")
    want = ref(h, w)
    if tuple(got.shape) == (h, w):
        raise ExerciseError(_("fourier_scale(5, 12) has shape (5, 12); a real picture's spectrum "
                              "(torch.fft.rfft2) keeps only w // 2 + 1 = 7 columns: use torch.fft.rfftfreq(w) "
                              "for the columns."))
    if tuple(got.shape) == (w // 2 + 1, h):
        raise ExerciseError(_("rows and columns are swapped: rows are fftfreq(h), columns rfftfreq(w)."))
    if tuple(got.shape) != tuple(want.shape):
        raise ExerciseError(_("fourier_scale(5, 12) has shape {got_shape}; expected (h, w // 2 + 1) = (5, 7).").format(
                              got_shape=tuple(got.shape)))
    got = got.float()
    if not torch.isfinite(got).all():
        raise ExerciseError(_("fourier_scale has inf/nan at the zero frequency: replace f = 0 by 1 / max(h, w) "
                              "(clamp_min) before dividing."))
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    f = torch.sqrt(fy ** 2 + fx ** 2).clamp_min(1 / max(h, w))
    if _same(got, f):
        raise ExerciseError(_("that is the frequency f itself; the scale is 1 / f (low frequencies get large "
                              "weights)."))
    if _same(got, 1 / f.clamp_min(1 / min(h, w))):
        raise ExerciseError(_("the zero frequency should use 1 / max(h, w), the lowest frequency the picture "
                              "holds."))
    fi = torch.sqrt((fy * h) ** 2 + (fx * w) ** 2).clamp_min(1.0)
    if _same(got, 1 / fi):
        raise ExerciseError(_("those are frequencies in cycles per picture (integers); use cycles per pixel, "
                              "torch.fft.fftfreq(h) and torch.fft.rfftfreq(w) without a d= argument."))
    _close(got, want, "fourier_scale(5, 12)", atol=1e-4)
    _ok(_("fourier_scale = 1 / max(f, 1 / max(h, w)) on the rfft2 frequency grid"))


def _model() -> nn.Module:
    torch.manual_seed(151)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Tanh()).eval()


def _steps(model, x0, channel, lr, n, sign=1.0, zero=True, whole=False):
    x = x0.clone().requires_grad_(True)
    for __ in range(n):
        a = model(x)
        obj = a.mean() if whole else a[:, channel].mean()
        obj.backward()
        with torch.no_grad():
            x += sign * lr * x.grad
        if zero:
            x.grad.zero_()
    return x.detach()


@learner_check(in_place=True)   # the step must change x in place
def check_ascent_step(ascent_step) -> None:
    """``ascent_step(model, x, channel, lr)``: one gradient-ascent step on the input ``x``
    (a leaf tensor with ``requires_grad``), in place, ``x.grad`` zeroed afterwards; returns ``x``."""
    model = _model()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(152)
    x0 = torch.randn(2, 3, 6, 6)                       # two images: model(x)[0, channel] is not the objective
    channel, lr = 2, 0.5
    x = x0.clone().requires_grad_(True)
    got = _tensor(_call(ascent_step, "ascent_step(model, x, 2, 0.5)", model, x, channel, lr), "ascent_step(model, x, 2, 0.5)")
    changed = any(not torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    if changed:
        raise ExerciseError(_("the model's weights changed: optimise the INPUT x, not the weights (update x "
                              "under torch.no_grad(), never call an optimiser on model.parameters())."))
    if tuple(got.shape) != tuple(x0.shape):
        raise ExerciseError(_("ascent_step returned shape {got_shape}; expected x's shape {x0_shape}.").format(
                              got_shape=tuple(got.shape), x0_shape=tuple(x0.shape)))
    got = got.detach()
    if _same(got, x0):
        raise ExerciseError(_("x did not change: add lr * x.grad to x (in place, under torch.no_grad())."))
    if _same(got, _steps(model, x0, channel, lr, 1, sign=-1.0)):
        raise ExerciseError(_("that is gradient DESCENT (x - lr * grad): to maximise the activation, step UP "
                              "the gradient, x + lr * grad."))
    if _same(got, _steps(model, x0, channel, lr, 1, whole=True)):
        raise ExerciseError(_("that step maximises the mean of the WHOLE layer; the objective is one channel, "
                              "model(x)[:, channel].mean()."))
    _close(got, _steps(model, x0, channel, lr, 1), _("x after one ascent step"), atol=1e-5)
    if x.grad is not None and x.grad.abs().max() > 0:
        raise ExerciseError(_("x.grad is not zero after the step: zero it (x.grad.zero_()), or the next "
                              "backward() adds to the old gradient."))
    nxt = got if getattr(got, "requires_grad", False) else x
    if not nxt.requires_grad:
        raise ExerciseError(_("x no longer requires a gradient: update it in place under torch.no_grad() "
                              "instead of replacing it."))
    x2 = _call(ascent_step, _("ascent_step (second call)"), model, nxt, channel, lr)
    x2 = _tensor(x2, _("ascent_step (second call)")).detach()
    if _same(x2, _steps(model, x0, channel, lr, 2, zero=False)):
        raise ExerciseError(_("the second step used the sum of both gradients: zero x.grad after each step."))
    _close(x2, _steps(model, x0, channel, lr, 2), _("x after two ascent steps"), atol=1e-5)
    _ok(_("ascent_step: x <- x + lr * d(mean of channel)/dx, gradient zeroed, weights untouched"))
