"""Exercise 04 checks: the solution passes; the skeleton and plausible wrong answers fail."""
import pytest
import torch
import torch.nn.functional as F

from featlab.checks import check_class_activation_map, check_gap_logits, check_upsample_normalize
from featlab.checks.nb04_gap_cam import _tiny_gap_net
from helpers import SKELETON, fails
from solutions import solution

S = solution(4)
CHECKS = [check_gap_logits, check_class_activation_map, check_upsample_normalize]


def test_other_right_answers_pass(capsys):
    check_gap_logits(lambda f, w, b: F.linear(F.adaptive_avg_pool2d(f, 1).flatten(1), w, b))
    check_class_activation_map(lambda f, w, t: (w[t][:, :, None, None] * f).sum(1))
    check_upsample_normalize(lambda m, size: (lambda u: (u - u.amin((1, 2), True)) / (u.amax((1, 2), True) - u.amin((1, 2), True) + 1e-12))(
        F.interpolate(m[None], size=size, mode="bilinear")[0]))
    assert capsys.readouterr().out.count("✓") == 3


@pytest.mark.parametrize("check", CHECKS)
def test_skeleton_fails(check):
    fails(check, SKELETON, "returned None")


def test_the_target_is_not_the_predicted_class():
    """So a map of the predicted class (argmax) instead of the given target fails."""
    model, x = _tiny_gap_net()
    with torch.no_grad():
        assert model(x).argmax(1).tolist() != [2, 0, 3]


def _norm(u, dims=(1, 2)):
    lo, hi = u.amin(dim=dims, keepdim=True), u.amax(dim=dims, keepdim=True)
    return (u - lo) / (hi - lo)


def _up(m, size, **kw):
    return F.interpolate(m[:, None], size=size, **({"mode": "bilinear", "align_corners": False} | kw))[:, 0]


WRONG = {
    "gap: sum": (check_gap_logits, lambda f, w, b: f.sum(dim=(2, 3)) @ w.T + b, "summed"),
    "gap: no bias": (check_gap_logits, lambda f, w, b: f.mean(dim=(2, 3)) @ w.T, "bias is missing"),
    "gap: max pooling": (check_gap_logits, lambda f, w, b: f.amax(dim=(2, 3)) @ w.T + b, "values differ"),
    "gap: weight not transposed": (check_gap_logits, lambda f, w, b: f.mean(dim=(2, 3)) @ w + b, "raised"),
    "gap: mean over the wrong axes": (check_gap_logits, lambda f, w, b: f.mean(dim=(1, 2)) @ w.T + b, "raised"),
    "gap: mean over H only": (check_gap_logits, lambda f, w, b: f.mean(dim=2).mean(dim=1) @ w.T + b, "raised"),
    "gap: bias per sample": (check_gap_logits, lambda f, w, b: f.mean(dim=(2, 3)) @ w.T + b[:3, None], ""),
    "cam: relu": (check_class_activation_map, lambda f, w, t: S.class_activation_map(f, w, t).relu(), "no ReLU"),
    "cam: predicted class": (check_class_activation_map, lambda f, w, t: S.class_activation_map(
        f, w, (f.mean(dim=(2, 3)) @ w.T).argmax(1)), "values differ"),
    "cam: class 0 for all": (check_class_activation_map, lambda f, w, t: S.class_activation_map(f, w, torch.zeros_like(t)), ""),
    "cam: divided by H*W": (check_class_activation_map, lambda f, w, t: S.class_activation_map(f, w, t) / (f.shape[2] * f.shape[3]),
                            "values differ"),
    "cam: min-max normalised": (check_class_activation_map, lambda f, w, t: _norm(S.class_activation_map(f, w, t)), ""),
    "cam: all classes summed": (check_class_activation_map, lambda f, w, t: torch.einsum("kc,nchw->nhw", w, f), ""),
    "cam: channel weights unindexed": (check_class_activation_map, lambda f, w, t: torch.einsum("nc,nchw->nhw", w[:3], f), ""),
    "up: align_corners=True": (check_upsample_normalize, lambda m, size: _norm(_up(m, size, align_corners=True)), "values differ"),
    "up: nearest": (check_upsample_normalize, lambda m, size: _norm(F.interpolate(m[:, None], size=size)[:, 0]), "values differ"),
    "up: bicubic": (check_upsample_normalize, lambda m, size: _norm(_up(m, size, mode="bicubic")), ""),
    "up: one min-max for the batch": (check_upsample_normalize, lambda m, size: _norm(_up(m, size), dims=(0, 1, 2)), "on its own"),
    "up: normalise then upsample": (check_upsample_normalize, lambda m, size: _up(_norm(m), size), ""),
    "up: divide by max only": (check_upsample_normalize, lambda m, size: _up(m, size) / _up(m, size).amax(dim=(1, 2), keepdim=True),
                               "on its own"),
    "up: min-max per row": (check_upsample_normalize, lambda m, size: _norm(_up(m, size), dims=(2,)), "values differ"),
    "up: size reversed": (check_upsample_normalize, lambda m, size: _norm(_up(m, size[::-1])), "shape"),
    "up: relu first": (check_upsample_normalize, lambda m, size: _norm(_up(m.relu(), size)), ""),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
