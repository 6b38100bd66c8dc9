"""Checks for ``exercises/06_*.ipynb`` (Grad-CAM; notebook ``notebooks/06_*``)."""
from __future__ import annotations

import torch

from ..i18n import _
from ._common import ExerciseError, _bool, _close, _ok, _tensor, learner_check

__all__ = ['check_channel_weights', 'check_grad_cam_map', 'check_pointing_hit']


@learner_check
def check_channel_weights(channel_weights) -> None:
    """``channel_weights(grads)``: (N, K, h, w) gradients -> (N, K) Grad-CAM weights alpha."""
    torch.manual_seed(60)
    grads = torch.randn(2, 5, 3, 4)
    got = _tensor(channel_weights(grads), "channel_weights(grads)")
    want = grads.mean(dim=(2, 3))
    if tuple(got.shape) == (2, 5) and torch.allclose(got, grads.sum(dim=(2, 3))):
        raise ExerciseError(_("channel_weights sums the gradients; Grad-CAM averages them over (h, w)."))
    if tuple(got.shape) != (2, 5):
        raise ExerciseError(_("channel_weights(grads) has shape {got_shape}; expected (N, K) = (2, 5): average "
                              "over the two spatial dimensions (dim=(2, 3)) only.").format(
                                      got_shape=tuple(got.shape)))
    _close(got, want, "channel_weights(grads)")
    _ok(_("channel_weights: alpha_k = mean over (h, w) of dy/dA_k"))


@learner_check
def check_grad_cam_map(grad_cam_map) -> None:
    """``grad_cam_map(acts, grads)``: (N, K, h, w) twice -> raw (N, h, w) ReLU(sum_k alpha_k A_k)."""
    from torch import nn

    from ..cam import grad_cam, layer_gradients

    torch.manual_seed(61)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    x = torch.randn(3, 3, 8, 8)
    acts, grads, __ = layer_gradients(model, x, "2", target=[0, 1, 3])
    want = grad_cam(model, x, "2", target=[0, 1, 3], upsample=False, normalize=False)
    got = _tensor(grad_cam_map(acts, grads), "grad_cam_map(acts, grads)")
    if tuple(got.shape) != tuple(want.shape):
        raise ExerciseError(_("grad_cam_map gives shape {got_shape}; expected (N, h, w) = {want_shape}: weight "
                              "each channel by alpha, then sum over channels.").format(
                                      got_shape=tuple(got.shape), want_shape=tuple(want.shape)))
    if (got < 0).any():
        raise ExerciseError(_("the map has negative values: apply the ReLU after summing the channels."))
    unweighted = acts.sum(dim=1).clamp_min(0)
    if torch.allclose(got, unweighted, atol=1e-5) and not torch.allclose(want, unweighted, atol=1e-5):
        raise ExerciseError(_("the channels are summed without their weights alpha_k = mean of the gradient."))
    _close(got, want, "grad_cam_map(acts, grads)", atol=1e-5)
    _ok(_("grad_cam_map equals fl.grad_cam(..., upsample=False, normalize=False)"))


@learner_check
def check_pointing_hit(pointing_hit) -> None:
    """``pointing_hit(heatmap, box)``: is the (H, W) map's maximum inside box (x0, y0, x1, y1)?

    The course's box: x = column, y = row, x1 and y1 excluded (as ``torchvision.ops``). The map is
    10 × 12 and the boxes are non-square and off the diagonal, so that reading the box as
    (y0, x0, y1, x1), as (x, y, width, height), or with x1/y1 included gives a wrong answer on at
    least one case.
    """
    torch.manual_seed(62)
    cases = []
    for peak, box in [((5, 7), (6, 4, 10, 6)),     # hit; read as (y0, x0, y1, x1): miss
                      ((5, 7), (3, 2, 5, 4)),      # miss; read as (x, y, w, h): hit
                      ((5, 7), (2, 1, 7, 6)),      # miss (column 7 = x1); x1 included: hit
                      ((5, 7), (0, 0, 12, 5)),     # miss (row 5 = y1); y1 included: hit
                      ((5, 7), (7, 5, 8, 6)),      # the single pixel (x 7, y 5): hit
                      ((5, 7), (0, 5, 12, 6)),     # row 5 only: hit; row taken as i // H = 6: miss
                      ((0, 0), (0, 0, 4, 3)),      # hit at the corner
                      ((9, 2), (0, 0, 3, 10)),     # hit; swapped: miss
                      ((2, 9), (0, 0, 3, 10))]:    # miss; swapped: hit
        heat = torch.rand(10, 12) * 0.5
        heat[peak] = 1.0
        r, c = peak
        x0, y0, x1, y1 = box
        cases.append((heat, box, x0 <= c < x1 and y0 <= r < y1))
    for heat, box, want in cases:
        got = _bool(pointing_hit(heat.clone(), box), f"pointing_hit(heatmap, box={box})")
        if got != want:
            r, c = divmod(int(heat.argmax()), heat.shape[1])
            raise ExerciseError(
                _("pointing_hit gave {got} for a map whose maximum is at (row {r}, col {c}) and box (x0, y0, x1, "
                  "y1) = {box}; expected {want}. x is the column and y the row; x1 and y1 are ends (not a width "
                  "and height) and are excluded: the box covers columns x0 … x1 - 1 and rows y0 … y1 - 1. The "
                  "row of a flat index i is i // W, the column i % W.").format(
                          got=bool(got), r=r, c=c, box=box, want=want))
    _ok(_("pointing_hit finds the maximum and tests it against the box (x0, y0, x1, y1), x1 and y1 excluded"))
