"""Exercise 05 checks: the solution passes; the skeleton and plausible wrong answers fail."""
import pytest
import torch

from featlab.plot import top_channels as reference
from featlab.checks import check_capture, check_fraction_active, check_top_channels
from helpers import SKELETON, fails
from solutions import solution

S = solution(5)
CHECKS = [check_capture, check_fraction_active, check_top_channels]


def test_other_right_answers_pass(capsys):
    def capture_list(model, module, x):
        seen = []
        handle = module.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
        try:
            model(x)
        finally:
            handle.remove()
        return seen[0]

    check_capture(capture_list)
    check_fraction_active(lambda f: (f > 0).sum(dim=(1, 2, 3)) / f[0].numel())
    check_top_channels(lambda f, k: f.mean(dim=(1, 2)).argsort(descending=True)[:k])     # a tensor
    check_top_channels(lambda f, k: reference(f, k)[::-1])                           # any order
    assert capsys.readouterr().out.count("✓") == 4


@pytest.mark.parametrize("check", CHECKS)
def test_skeleton_fails(check):
    fails(check, SKELETON, "returned None")


def _capture(model, module, x, *, clone=True, remove=True, finally_=True, pre=False, what="out"):
    kept = {}

    def hook(m, inputs, output):
        value = {"out": output, "in": inputs[0], "model": output}[what]
        kept["v"] = value.clone() if clone else value

    handle = module.register_forward_pre_hook(lambda m, i: kept.update(v=i[0].clone())) if pre \
        else module.register_forward_hook(hook)
    if finally_:
        try:
            out = model(x)
        finally:
            if remove:
                handle.remove()
    else:
        out = model(x)
        handle.remove()
    return out if what == "model" else kept["v"]


WRONG = {
    "capture: no clone": (check_capture, lambda *a: _capture(*a, clone=False), "in-place ReLU"),
    "capture: detach, no clone": (check_capture, lambda m, mod, x: _capture(m, mod, x, clone=False).detach(), "in-place"),
    "capture: hook not removed": (check_capture, lambda *a: _capture(*a, remove=False), "still registered"),
    "capture: no finally": (check_capture, lambda *a: _capture(*a, finally_=False), "finally"),
    "capture: the module's input": (check_capture, lambda *a: _capture(*a, what="in"), "shape"),
    "capture: a pre-hook": (check_capture, lambda *a: _capture(*a, pre=True), "shape"),
    "capture: the model's output": (check_capture, lambda *a: _capture(*a, what="model"), "final output"),
    "capture: module(x) directly": (check_capture, lambda model, module, x: module(x), "raised RuntimeError"),
    "active: >= 0": (check_fraction_active, lambda f: (f >= 0).float().mean(dim=(1, 2, 3)), "zeros are counted"),
    "active: != 0": (check_fraction_active, lambda f: (f != 0).float().mean(dim=(1, 2, 3)), "negative entries"),
    "active: count_nonzero": (check_fraction_active, lambda f: f.count_nonzero(dim=(1, 2, 3)) / f[0].numel(), "negative"),
    "active: count": (check_fraction_active, lambda f: (f > 0).float().sum(dim=(1, 2, 3)), "count"),
    "active: sign": (check_fraction_active, lambda f: f.sign().mean(dim=(1, 2, 3)), "sign"),
    "active: one number": (check_fraction_active, lambda f: (f > 0).float().mean(), "shape"),
    "active: per channel": (check_fraction_active, lambda f: (f > 0).float().mean(dim=(2, 3)), "shape"),
    "active: over the batch": (check_fraction_active, lambda f: (f > 0).float().mean(dim=(0, 2, 3)), "shape"),
    "active: mean activation": (check_fraction_active, lambda f: f.clamp_min(0).mean(dim=(1, 2, 3)), "values differ"),
    "top: by maximum": (check_top_channels, lambda f, k: f.amax(dim=(1, 2)).topk(k).indices.tolist(), "largest maximum"),
    "top: by |mean|": (check_top_channels, lambda f, k: f.abs().mean(dim=(1, 2)).topk(k).indices.tolist(), "|activation|"),
    "top: smallest": (check_top_channels, lambda f, k: f.mean(dim=(1, 2)).topk(k, largest=False).indices.tolist(), "smallest"),
    "top: argsort ascending": (check_top_channels, lambda f, k: f.mean(dim=(1, 2)).argsort()[:k].tolist(), "smallest"),
    "top: k + 1": (check_top_channels, lambda f, k: f.mean(dim=(1, 2)).topk(k + 1).indices.tolist(), "largest mean"),
    "top: values": (check_top_channels, lambda f, k: f.mean(dim=(1, 2)).topk(k).values.tolist(), ""),
    "top: pixels' channels": (check_top_channels, lambda f, k: (f.flatten().topk(k).indices // f[0].numel()).tolist(), ""),
    "top: spatial mean": (check_top_channels, lambda f, k: f.mean(dim=0).mean(dim=0).topk(k).indices.tolist(), ""),
    "top: 2-D indices": (check_top_channels, lambda f, k: f.mean(dim=1).topk(k).indices, ""),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
