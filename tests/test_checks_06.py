"""Exercise 06 checks: the solution passes; the skeleton and plausible wrong answers fail."""
import numpy as np
import pytest
import torch

from featlab.checks import check_channel_weights, check_grad_cam_map, check_pointing_hit
from helpers import SKELETON, fails
from solutions import solution

S = solution(6)
CHECKS = [check_channel_weights, check_grad_cam_map, check_pointing_hit]


def test_other_right_answers_pass(capsys):
    check_channel_weights(lambda g: g.flatten(2).mean(-1))
    check_grad_cam_map(lambda a, g: torch.einsum("nk,nkhw->nhw", g.mean(dim=(2, 3)), a).clamp_min(0))

    def hit_unravel(heat, box):
        r, c = np.unravel_index(int(heat.argmax()), tuple(heat.shape))
        t, l, h, w = box
        return torch.tensor(t <= r < t + h and l <= c < l + w)                # a 0-d bool tensor
    check_pointing_hit(hit_unravel)
    assert capsys.readouterr().out.count("✓") == 3


@pytest.mark.parametrize("check", CHECKS)
def test_skeleton_fails(check):
    fails(check, SKELETON, "returned None")


def _cam(a, g, *, alpha=lambda g: g.mean(dim=(2, 3)), relu_first=False, post=lambda m: m.relu()):
    w = alpha(g)[:, :, None, None] * a
    return post(w.relu().sum(dim=1) if relu_first else w.sum(dim=1))


def _hit(heat, box, *, div=None, first=lambda t, r: t <= r, last=lambda r, t, h: r < t + h, swap=False, arg="argmax",
         ends=False):
    t, l, h, w = box
    if swap:
        t, l, h, w = l, t, w, h
    flat = int(getattr(heat, arg)())
    r, c = divmod(flat, div(heat) if div else heat.shape[1])
    if ends:
        return t <= r < h and l <= c < w
    return first(t, r) and last(r, t, h) and first(l, c) and last(c, l, w)


WRONG = {
    "alpha: sum": (check_channel_weights, lambda g: g.sum(dim=(2, 3)), "sums"),
    "alpha: over channels": (check_channel_weights, lambda g: g.mean(dim=1), "shape"),
    "alpha: over everything": (check_channel_weights, lambda g: g.mean(dim=(1, 2, 3)), "shape"),
    "alpha: keepdim": (check_channel_weights, lambda g: g.mean(dim=(2, 3), keepdim=True), "shape"),
    "alpha: |grad|": (check_channel_weights, lambda g: g.abs().mean(dim=(2, 3)), "values differ"),
    "alpha: max": (check_channel_weights, lambda g: g.amax(dim=(2, 3)), "values differ"),
    "alpha: relu(grad)": (check_channel_weights, lambda g: g.relu().mean(dim=(2, 3)), "values differ"),
    "alpha: over the batch too": (check_channel_weights, lambda g: g.mean(dim=(0, 2, 3)).expand(g.shape[0], -1), ""),
    "map: no relu": (check_grad_cam_map, lambda a, g: _cam(a, g, post=lambda m: m), "negative"),
    "map: abs": (check_grad_cam_map, lambda a, g: _cam(a, g, post=lambda m: m.abs()), ""),
    "map: relu before the sum": (check_grad_cam_map, lambda a, g: _cam(a, g, relu_first=True), ""),
    "map: unweighted": (check_grad_cam_map, lambda a, g: a.sum(dim=1).relu(), "without their weights"),
    "map: alpha from the activations": (check_grad_cam_map, lambda a, g: _cam(a, a), ""),
    "map: alpha summed": (check_grad_cam_map, lambda a, g: _cam(a, g, alpha=lambda g: g.sum(dim=(2, 3))), ""),
    "map: gradient times activation": (check_grad_cam_map, lambda a, g: (g * a).sum(dim=1).relu(), ""),
    "map: normalised": (check_grad_cam_map, lambda a, g: (lambda m: m / m.amax(dim=(1, 2), keepdim=True))(_cam(a, g)), ""),
    "map: relu(alpha)": (check_grad_cam_map, lambda a, g: _cam(a, g, alpha=lambda g: g.mean(dim=(2, 3)).relu()), ""),
    "map: sum over the batch": (check_grad_cam_map, lambda a, g: (g.mean(dim=(2, 3))[:, :, None, None] * a).sum(0).relu(),
                                "shape"),
    "map: mean over channels": (check_grad_cam_map, lambda a, g: (g.mean(dim=(2, 3))[:, :, None, None] * a).mean(1).relu(), ""),
    "hit: row from shape[0]": (check_pointing_hit, lambda h, b: _hit(h, b, div=lambda h: h.shape[0]), "expected"),
    "hit: end included": (check_pointing_hit, lambda h, b: _hit(h, b, last=lambda r, t, n: r <= t + n), "expected"),
    "hit: start excluded": (check_pointing_hit, lambda h, b: _hit(h, b, first=lambda t, r: t < r), "expected"),
    "hit: box as (left, top, width, height)": (check_pointing_hit, lambda h, b: _hit(h, b, swap=True), "expected"),
    "hit: box as (top, left, bottom, right)": (check_pointing_hit, lambda h, b: _hit(h, b, ends=True), "expected"),
    "hit: argmin": (check_pointing_hit, lambda h, b: _hit(h, b, arg="argmin"), "expected"),
    "hit: a number": (check_pointing_hit, lambda h, b: int(h.argmax()), "True or False"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
