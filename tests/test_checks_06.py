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
        x0, y0, x1, y1 = box
        return torch.tensor(x0 <= c < x1 and y0 <= r < y1)                    # a 0-d bool tensor

    def hit_mask(heat, box):                                                   # slice the box out of a mask
        x0, y0, x1, y1 = box
        inside = torch.zeros(heat.shape, dtype=torch.bool)
        inside[y0:y1, x0:x1] = True
        return bool(inside.flatten()[heat.argmax()])
    check_pointing_hit(hit_unravel)
    check_pointing_hit(hit_mask)
    assert capsys.readouterr().out.count("✓") == 4


@pytest.mark.parametrize("check", CHECKS)
def test_skeleton_fails(check):
    fails(check, SKELETON, "returned None")


def _cam(a, g, *, alpha=lambda g: g.mean(dim=(2, 3)), relu_first=False, post=lambda m: m.relu()):
    w = alpha(g)[:, :, None, None] * a
    return post(w.relu().sum(dim=1) if relu_first else w.sum(dim=1))


def _hit(heat, box, *, div=None, arg="argmax", swap=False, wh=False, start_excluded=False, end_included=False):
    """Wrong readings of the box (x0, y0, x1, y1): x = column, y = row, x1/y1 excluded."""
    x0, y0, x1, y1 = box
    if swap:                                                   # read as (y0, x0, y1, x1)
        x0, y0, x1, y1 = y0, x0, y1, x1
    if wh:                                                     # read as (x, y, width, height)
        x1, y1 = x0 + x1, y0 + y1
    r, c = divmod(int(getattr(heat, arg)()), div(heat) if div else heat.shape[1])
    lo = (lambda a, v: a < v) if start_excluded else (lambda a, v: a <= v)
    hi = (lambda v, b: v <= b) if end_included else (lambda v, b: v < b)
    return lo(x0, c) and hi(c, x1) and lo(y0, r) and hi(r, y1)


def _hit_old_format(heat, box):                                # the former (top, left, height, width) box
    top, left, height, width = box
    r, c = divmod(int(heat.argmax()), heat.shape[1])
    return top <= r < top + height and left <= c < left + width


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
    "hit: ends included (x1, y1 inside)": (check_pointing_hit, lambda h, b: _hit(h, b, end_included=True), "expected"),
    "hit: start excluded": (check_pointing_hit, lambda h, b: _hit(h, b, start_excluded=True), "expected"),
    "hit: axes swapped, box as (y0, x0, y1, x1)": (check_pointing_hit, lambda h, b: _hit(h, b, swap=True), "expected"),
    "hit: box as (x, y, width, height)": (check_pointing_hit, lambda h, b: _hit(h, b, wh=True), "expected"),
    "hit: box as (top, left, height, width), the old format": (check_pointing_hit, _hit_old_format, "expected"),
    "hit: argmin": (check_pointing_hit, lambda h, b: _hit(h, b, arg="argmin"), "expected"),
    "hit: a number": (check_pointing_hit, lambda h, b: int(h.argmax()), "True or False"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
