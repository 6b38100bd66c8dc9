"""Checks for ``exercises/14_*.ipynb`` (dense features; notebook ``notebooks/14_dense_features``).

Soft-argmax of keypoint heatmaps, a 1×1 segmentation head's per-pixel logits, and mean IoU.
References are written here in a few lines (``F.conv2d`` for the 1×1 head, a confusion matrix
from ``torch.bincount`` for IoU), so the checks do not depend on the learner's notebook.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..i18n import _
from ._common import ExerciseError, _call, _ok, _same, _scalar, _tensor, learner_check
from ._common import _diagnose as diagnose

__all__ = ["check_soft_argmax", "check_pixel_logits", "check_mean_iou"]



# --- 1. soft-argmax -----------------------------------------------------------------------------

def _soft_argmax(heatmaps: torch.Tensor, temperature: float) -> torch.Tensor:
    """(N, K, H, W) -> (N, K, 2) expected (x, y) under softmax(heatmap / temperature) over H·W."""
    n, k, h, w = heatmaps.shape
    p = torch.softmax(heatmaps.reshape(n, k, h * w) / temperature, dim=-1).reshape(n, k, h, w)
    cols = torch.arange(w, dtype=heatmaps.dtype)
    rows = torch.arange(h, dtype=heatmaps.dtype)
    return torch.stack([(p.sum(2) * cols).sum(-1), (p.sum(3) * rows).sum(-1)], dim=-1)


def _xy_tensor(out, shape, what: str) -> torch.Tensor:
    out = _tensor(out, what).detach().cpu().double()
    if tuple(out.shape) != shape:
        raise ExerciseError(_("{what} has shape {out_shape}; expected (N, K, 2) = {shape}: one (x, y) pair per "
                              "image and keypoint (torch.stack([x, y], dim=-1)).").format(
                                      what=what, out_shape=tuple(out.shape), shape=shape))
    return out


@learner_check
def check_soft_argmax(soft_argmax) -> None:
    """``soft_argmax(heatmaps, temperature)``: (N, K, H, W) -> (N, K, 2) coordinates (x, y)."""
    what = "soft_argmax(heatmaps, temperature)"
    n, k, h, w = 2, 3, 6, 9                        # H != W and K != H, W: wrong axes show up
    # (a) flat heatmaps: every position equally likely -> the centre of the grid
    flat = torch.full((n, k, h, w), 0.7, dtype=torch.float64)
    got = _xy_tensor(_call(soft_argmax, what, flat.clone(), 0.5), (n, k, 2), what)
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], dtype=torch.float64).expand(n, k, 2)
    if not _same(got, centre):
        if _same(got, centre.flip(-1)):
            raise ExerciseError(_("on a flat heatmap you return (y, x), x and y swapped: x is the COLUMN (last "
                                  "axis, width W), y is the ROW (axis -2, height H); return (x, y)."))
        if _same(got, torch.zeros_like(got)):
            raise ExerciseError(_("on a flat heatmap you return (0, 0), the first position: is it the argmax? "
                                  "Soft-argmax is the expected position under softmax(heatmap / temperature), "
                                  "a weighted mean of the coordinates: here the centre of the grid."))
        raise ExerciseError(
            _("on a flat heatmap every position is equally likely, so the answer is the centre (x, y) = "
              "({x_mid}, {y_mid}); you return {got}. The weights of one heatmap must sum to 1 over its H·W "
              "positions: softmax over the flattened last two axes (heatmaps.flatten(2).softmax(-1)), not over "
              "the keypoints, rows or columns alone.").format(
                      x_mid=(w - 1) / 2, y_mid=(h - 1) / 2, got=got[0, 0].tolist()))
    # (b) one sharp peak at a known place
    peak = torch.zeros((1, 1, h, w), dtype=torch.float64)
    peak[0, 0, 4, 1] = 50.0
    got = _xy_tensor(_call(soft_argmax, what, peak.clone(), 1.0), (1, 1, 2), what)
    if torch.allclose(got, torch.tensor([[[4.0, 1.0]]], dtype=torch.float64), atol=1e-3):
        raise ExerciseError(_("a sharp peak at row 4, column 1 gives (4, 1): x and y are swapped. x is the "
                              "column (last axis), y is the row; return (x, y) = (1, 4)."))
    if not torch.allclose(got, torch.tensor([[[1.0, 4.0]]], dtype=torch.float64), atol=1e-3):
        raise ExerciseError(_("a sharp peak at row 4, column 1 should give (x, y) = (1, 4); you return {got}.").format(
                              got=got[0, 0].tolist()))
    # (c) smooth random heatmaps with a temperature that matters
    g = torch.Generator().manual_seed(1400)
    heat = torch.randn((n, k, h, w), generator=g, dtype=torch.float64) * 2
    for t in (0.5, 3.0):
        got = _xy_tensor(_call(soft_argmax, what, heat.clone(), t), (n, k, 2), what)
        want = _soft_argmax(heat, t)
        if _same(got, want):
            continue
        if _same(got, _soft_argmax(heat, 1.0)):
            raise ExerciseError(_("with temperature {t} you return the temperature-1 answer: divide the "
                                  "heatmap by the temperature before the softmax.").format(t=t))
        if _same(got, _soft_argmax(heat, 1 / t)):
            raise ExerciseError(_("you multiply the heatmap by the temperature; divide by it (a small "
                                  "temperature should make the softmax sharper)."))
        flat_idx = heat.flatten(2).argmax(-1)
        hard = torch.stack([flat_idx % w, flat_idx // w], dim=-1).double()
        if _same(got, hard):
            raise ExerciseError(_("you return the argmax position: soft-argmax is the expected position under "
                                  "softmax(heatmap / temperature), a weighted mean of the coordinates."))
        err = (got - want).abs().max().item()
        raise ExerciseError(_("{what}: coordinates differ from the reference by up to {err:.3g} (temperature "
                              "{t}).").format(what=what, err=err, t=t))
    _ok(_("soft_argmax: (x, y) = expected position under softmax(heatmap / T) over the H·W positions"))


# --- 2. a 1×1 head's per-pixel logits ----------------------------------------------------------

@learner_check
def check_pixel_logits(pixel_logits) -> None:
    """``pixel_logits(features, weight, bias)``: (N, C, H, W), (K, C), (K,) -> (N, K, H, W)."""
    what = "pixel_logits(features, weight, bias)"
    g = torch.Generator().manual_seed(1401)
    n, c, h, w, k = 2, 6, 3, 5, 4
    feats = torch.randn((n, c, h, w), generator=g)
    weight, bias = torch.randn((k, c), generator=g), torch.randn((k,), generator=g) + 2
    out = _tensor(_call(pixel_logits, what, feats.clone(), weight.clone(), bias.clone()), what)
    out = out.detach().cpu()
    want = F.conv2d(feats, weight[:, :, None, None], bias)
    shape = tuple(out.shape)
    if shape == (n, h, w, k):
        raise ExerciseError(_("{what} has shape {shape} = (N, H, W, K), channels last: return (N, K, H, W) "
                              "(e.g. einsum 'nchw,kc->nkhw', or .permute(0, 3, 1, 2)).").format(
                                      what=what, shape=shape))
    if shape == (n, k, w, h):
        raise ExerciseError(_("{what} has shape {shape} = (N, K, W, H): height and width are swapped.").format(
                              what=what, shape=shape))
    if shape != (n, k, h, w):
        raise ExerciseError(_("{what} has shape {shape}; expected (N, K, H, W) = {want_shape}.").format(
                              what=what, shape=shape, want_shape=(n, k, h, w)))
    if _same(out, want):
        _ok(_("pixel_logits == F.conv2d with a 1×1 kernel: one linear classifier per pixel"))
        return
    if _same(out, want - bias[None, :, None, None]):
        raise ExerciseError(_("the bias is missing: add bias[k] to every pixel's logit k (bias[None, :, None, "
                              "None])."))
    if _same(out, want + bias[None, :, None, None]):
        raise ExerciseError(_("the bias is added twice."))
    err = (out.float() - want).abs().max().item()
    raise ExerciseError(_("{what}: values differ from F.conv2d(features, weight[:, :, None, None], bias) (max "
                          "abs error {err:.3g}). Logit k at (i, j) is sum_c weight[k, c] * features[n, c, i, "
                          "j] + bias[k].").format(what=what, err=err))


# --- 3. mean IoU -----------------------------------------------------------------------------

def _confusion(pred: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    return torch.bincount((target * k + pred).flatten(), minlength=k * k).reshape(k, k).double()


@learner_check
def check_mean_iou(mean_iou) -> None:
    """``mean_iou(pred, target, num_classes)``: integer label maps (N, H, W) -> one float."""
    what = "mean_iou(pred, target, num_classes)"
    g = torch.Generator().manual_seed(1402)
    k = 7                                              # class 6 appears nowhere: it must be skipped
    target = torch.randint(0, 4, (3, 6, 7), generator=g)
    target[0, :3, :4] = 0                              # a big background patch: classes unbalanced
    pred = target.clone()
    flip = torch.rand(target.shape, generator=g) < 0.35
    pred[flip] = torch.randint(0, 4, (int(flip.sum()),), generator=g)
    pred[pred == 3] = 2                                # class 3 never predicted: its IoU is 0, counted
    pred[1, 4:, 5:] = 4                                # classes 4 and 5 predicted, never true: IoU 0, counted
    pred[2, :2, :2] = 5
    got = _scalar(_call(mean_iou, what, pred.clone(), target.clone(), k), what,
                  many_hint=_("Average the per-class IoUs into one number."),
                  nan_hint=_("A class that is in neither map has 0/0 = NaN: skip classes whose union is 0."))
    cm = _confusion(pred, target, k)
    inter = cm.diag()
    union = cm.sum(0) + cm.sum(1) - inter
    present = union > 0
    iou = inter[present] / union[present]
    want = float(iou.mean())
    per_image = []
    for p, t in zip(pred, target):
        c = _confusion(p, t, k)
        i_, u_ = c.diag(), c.sum(0) + c.sum(1) - c.diag()
        per_image.append(float((i_[u_ > 0] / u_[u_ > 0]).mean()))
    wrong = [
        (_("classes that are in neither map (union 0) are counted as IoU 0: average only over classes whose "
           "union is not empty."), float(iou.sum() / k)),
        (_("classes that are in neither map are counted as IoU 1: skip them instead."),
         float((iou.sum() + (~present).sum()) / k)),
        (_("that is the pixel accuracy (share of pixels right); mean IoU averages the per-CLASS intersection / "
           "union."), float(inter.sum() / cm.sum())),
        (_("that is one IoU over all pixels (total intersection / total union); compute one IoU per class, "
           "then average the classes."), float(inter.sum() / union.sum())),
        (_("you average per-image mean IoUs; count intersections and unions over the whole batch, then average "
           "over classes."), sum(per_image) / len(per_image)),
        (_("the background (class 0) is left out; it is a class like the others here."),
         float(iou[1:].mean())),
        (_("only the classes present in the TARGET are averaged: a class that is predicted but never true "
           "(here classes 4 and 5) has IoU 0 and counts too. Average over the classes whose union is not empty."),
         float((inter / union)[cm.sum(1) > 0].mean())),
        (_("only the classes present in the PREDICTION are averaged: a class that is true but never predicted "
           "(here class 3) has IoU 0 and counts too. Average over the classes whose union is not empty."),
         float((inter / union)[cm.sum(0) > 0].mean())),
    ]
    diagnose(got, want, wrong, what, 1e-6, 1e-9)
    _ok(_("mean_iou = {want:.4f}: per-class IoU over the whole batch, averaged over the present classes").format(
          want=want))
