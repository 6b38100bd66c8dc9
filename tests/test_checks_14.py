"""Exercise 14 checks: the solution passes, the skeleton and plausible wrong answers fail."""
import pytest
import torch
import torch.nn.functional as F

import featlab as fl
from helpers import SKELETON, fails


# --- the solution, as in exercises/solutions/14_dense_features.ipynb --------------------------

def soft_argmax(heatmaps, temperature):
    n, k, h, w = heatmaps.shape
    p = (heatmaps.reshape(n, k, h * w) / temperature).softmax(dim=-1).reshape(n, k, h, w)
    xs = torch.arange(w, dtype=heatmaps.dtype)
    ys = torch.arange(h, dtype=heatmaps.dtype)
    return torch.stack([(p * xs).sum(dim=(2, 3)), (p * ys[:, None]).sum(dim=(2, 3))], dim=-1)


def pixel_logits(features, weight, bias):
    return torch.einsum("nchw,kc->nkhw", features, weight) + bias[None, :, None, None]


def mean_iou(pred, target, num_classes):
    ious = []
    for c in range(num_classes):
        inter = ((pred == c) & (target == c)).sum()
        union = ((pred == c) | (target == c)).sum()
        if union > 0:
            ious.append(float(inter) / float(union))
    return sum(ious) / len(ious)


def test_solutions_pass():
    fl.checks.check_soft_argmax(soft_argmax)
    fl.checks.check_pixel_logits(pixel_logits)
    fl.checks.check_mean_iou(mean_iou)


def test_skeleton_fails():
    for check in (fl.checks.check_soft_argmax, fl.checks.check_pixel_logits, fl.checks.check_mean_iou):
        fails(check, SKELETON, "None")


# --- 1. soft-argmax ----------------------------------------------------------------------------

def test_soft_argmax_wrong_answers():
    def wrong_axis(h, t):        # softmax over the keypoints instead of the positions
        n, k, hh, w = h.shape
        p = (h / t).softmax(dim=1)
        return torch.stack([(p * torch.arange(w)).sum(dim=(2, 3)), (p * torch.arange(hh)[:, None]).sum(dim=(2, 3))], -1)

    def rows_only(h, t):         # softmax along each row only
        n, k, hh, w = h.shape
        p = (h / t).softmax(dim=-1)
        return torch.stack([(p * torch.arange(w)).sum(dim=(2, 3)), (p * torch.arange(hh)[:, None]).sum(dim=(2, 3))], -1)

    fails(fl.checks.check_soft_argmax, wrong_axis, "sum to 1")
    fails(fl.checks.check_soft_argmax, rows_only, "sum to 1")
    fails(fl.checks.check_soft_argmax, lambda h, t: soft_argmax(h, t).flip(-1), "swapped")
    fails(fl.checks.check_soft_argmax, lambda h, t: soft_argmax(h, 1.0), "divide the heatmap by the temperature")
    fails(fl.checks.check_soft_argmax, lambda h, t: soft_argmax(h, 1 / t), "multiply")

    def hard(h, t):
        n, k, hh, w = h.shape
        i = h.flatten(2).argmax(-1)
        return torch.stack([i % w, i // w], -1).to(h.dtype)

    fails(fl.checks.check_soft_argmax, hard, "argmax")
    fails(fl.checks.check_soft_argmax, lambda h, t: soft_argmax(h, t)[..., 0], "(N, K, 2)")
    fails(fl.checks.check_soft_argmax, lambda h, t: soft_argmax(h, t).tolist(), "torch.Tensor")


# --- 2. per-pixel logits -----------------------------------------------------------------------

def test_pixel_logits_equals_conv_reference():
    f, w, b = torch.randn(1, 3, 4, 4), torch.randn(2, 3), torch.randn(2)
    assert torch.allclose(pixel_logits(f, w, b), F.conv2d(f, w[:, :, None, None], b), atol=1e-5)


def test_pixel_logits_wrong_answers():
    fails(fl.checks.check_pixel_logits, lambda f, w, b: torch.einsum("nchw,kc->nkhw", f, w), "bias is missing")
    fails(fl.checks.check_pixel_logits, lambda f, w, b: torch.einsum("nchw,kc->nhwk", f, w) + b, "channels last")
    fails(fl.checks.check_pixel_logits, lambda f, w, b: pixel_logits(f, w, b).transpose(2, 3), "swapped")
    fails(fl.checks.check_pixel_logits, lambda f, w, b: pixel_logits(f, w, b) + b[None, :, None, None], "twice")
    fails(fl.checks.check_pixel_logits, lambda f, w, b: torch.einsum("nchw,ck->nkhw", f, w) + b[None, :, None, None],
          "raised")   # weight used as (C, K): einsum fails on the sizes
    fails(fl.checks.check_pixel_logits, lambda f, w, b: pixel_logits(f, w, b).relu(), "differ")


# --- 3. mean IoU -------------------------------------------------------------------------------

def test_mean_iou_wrong_answers():
    def absent_as_zero(p, t, k):
        return sum(float(((p == c) & (t == c)).sum()) / max(float(((p == c) | (t == c)).sum()), 1) for c in range(k)) / k

    def pixel_accuracy(p, t, k):
        return float((p == t).float().mean())

    def global_iou(p, t, k):
        inter = sum(float(((p == c) & (t == c)).sum()) for c in range(k))
        union = sum(float(((p == c) | (t == c)).sum()) for c in range(k))
        return inter / union

    def per_image(p, t, k):
        return sum(mean_iou(a, b, k) for a, b in zip(p, t)) / len(p)

    def nan_absent(p, t, k):
        return float(sum(((p == c) & (t == c)).sum().double() / ((p == c) | (t == c)).sum().double() for c in range(k)) / k)

    fails(fl.checks.check_mean_iou, absent_as_zero, "union is not empty")
    fails(fl.checks.check_mean_iou, pixel_accuracy, "pixel accuracy")
    fails(fl.checks.check_mean_iou, global_iou, "one IoU over all pixels")
    fails(fl.checks.check_mean_iou, per_image, "per-image")
    fails(fl.checks.check_mean_iou, _no_background, "background")
    fails(fl.checks.check_mean_iou, nan_absent, "NaN")
    fails(fl.checks.check_mean_iou, lambda p, t, k: [mean_iou(p, t, k)], "one number")


def _no_background(p, t, k):
    ious = []
    for c in range(1, k):
        union = ((p == c) | (t == c)).sum()
        if union > 0:
            ious.append(float(((p == c) & (t == c)).sum()) / float(union))
    return sum(ious) / len(ious)


# --- more wrong answers, one per plausible mistake (counted in the report of issue 19) ----------

def _iou_over(present):
    def miou(pred, target, num_classes):
        ious = []
        for c in present(pred, target):
            inter = ((pred == c) & (target == c)).sum()
            union = ((pred == c) | (target == c)).sum()
            ious.append(float(inter) / float(union))
        return sum(ious) / len(ious)
    return miou


def _soft_rows(heatmaps, temperature):                # softmax over each row, not over the whole map
    n, k, h, w = heatmaps.shape
    p = (heatmaps / temperature).softmax(dim=-1) / h
    return torch.stack([(p * torch.arange(w, dtype=p.dtype)).sum(dim=(2, 3)),
                        (p * torch.arange(h, dtype=p.dtype)[:, None]).sum(dim=(2, 3))], dim=-1)


WRONG = {
    "iou: classes of the target only": (fl.checks.check_mean_iou, _iou_over(lambda p, t: t.unique().tolist()), "TARGET"),
    "iou: classes of the prediction only": (fl.checks.check_mean_iou, _iou_over(lambda p, t: p.unique().tolist()), "PREDICTION"),
    "iou: absent classes as 0": (fl.checks.check_mean_iou, lambda p, t, k: mean_iou(p, t, k) * len(torch.cat([p, t]).unique()) / k,
                                 "IoU 0"),
    "iou: pixel accuracy": (fl.checks.check_mean_iou, lambda p, t, k: float((p == t).float().mean()), "pixel accuracy"),
    "soft: softmax per row": (fl.checks.check_soft_argmax, _soft_rows, ""),
    "soft: 1-based coordinates": (fl.checks.check_soft_argmax, lambda h, t: soft_argmax(h, t) + 1, ""),
    "soft: coordinates in [0, 1]": (fl.checks.check_soft_argmax, lambda h, t: soft_argmax(h, t) / torch.tensor(
        [h.shape[-1] - 1, h.shape[-2] - 1], dtype=h.dtype), ""),
    "soft: temperature multiplies": (fl.checks.check_soft_argmax, lambda h, t: soft_argmax(h * t * t, t), "multiply"),
    "pixel: bias missing": (fl.checks.check_pixel_logits, lambda f, w, b: pixel_logits(f, w, 0 * b), "bias is missing"),
    "pixel: channels last": (fl.checks.check_pixel_logits, lambda f, w, b: pixel_logits(f, w, b).permute(0, 2, 3, 1), "channels last"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
