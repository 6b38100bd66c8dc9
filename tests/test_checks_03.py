"""Exercise 03 checks (patchify, per-token LayerNorm): the solution passes, the skeleton and
plausible wrong answers fail with their hint."""
import pytest
import torch
import torch.nn.functional as F

import featlab as fl
from featlab.checks.nb03_reshape import _patchify_ref
from helpers import SKELETON, fails


# --- the solutions, as in exercises/solutions/03_reshape_permute.ipynb ------------------------

def patchify(x, p):
    n, c, h, w = x.shape
    t = x.view(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return t.reshape(n, (h // p) * (w // p), c * p * p)


def layer_norm_tokens(t, eps=1e-5):
    mean = t.mean(dim=-1, keepdim=True)
    var = t.var(dim=-1, keepdim=True, unbiased=False)
    return (t - mean) / torch.sqrt(var + eps)


# --- patchify ---------------------------------------------------------------------------------

def test_patchify_reference_matches_a_conv_with_kernel_equal_stride():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 8, 12, generator=g)
    conv = torch.nn.Conv2d(3, 5, kernel_size=4, stride=4)
    with torch.no_grad():
        by_conv = conv(x).flatten(2).transpose(1, 2)
        by_linear = _patchify_ref(x, 4) @ conv.weight.reshape(5, -1).T + conv.bias
    assert torch.allclose(by_conv, by_linear, atol=1e-5)


def test_patchify_solution_passes(capsys):
    fl.checks.check_patchify(patchify)
    assert "✓" in capsys.readouterr().out


def test_patchify_unfold_solution_passes():
    fl.checks.check_patchify(lambda x, p: F.unfold(x, p, stride=p).transpose(1, 2))


def test_patchify_skeleton_fails():
    fails(fl.checks.check_patchify, SKELETON, "returned None")


def test_patchify_reshape_without_permute_fails():
    def wrong(x, p):
        n, c, h, w = x.shape
        return x.reshape(n, (h // p) * (w // p), c * p * p)
    fails(fl.checks.check_patchify, wrong, "without moving the patch axes")


@pytest.mark.parametrize("order, hint", [
    ((0, 4, 2, 1, 3, 5), "column-major"),   # grid columns first
    ((0, 2, 4, 3, 5, 1), "(i, j, c)"),      # channels last inside the patch vector
    ((0, 2, 4, 1, 5, 3), "(c, j, i)"),      # the two in-patch axes swapped
])
def test_patchify_wrong_permute_fails(order, hint):
    def wrong(x, p):
        n, c, h, w = x.shape
        t = x.view(n, c, h // p, p, w // p, p).permute(*order)
        return t.reshape(n, (h // p) * (w // p), c * p * p)
    fails(fl.checks.check_patchify, wrong, hint)


def test_patchify_grid_instead_of_tokens_fails():
    fails(fl.checks.check_patchify, lambda x, p: F.unfold(x, p, stride=p), "shape")


def test_patchify_non_tensor_fails():
    fails(fl.checks.check_patchify, lambda x, p: patchify(x, p).numpy(), "torch.Tensor")


# --- layer_norm_tokens ------------------------------------------------------------------------

def test_layer_norm_tokens_solution_passes(capsys):
    fl.checks.check_layer_norm_tokens(layer_norm_tokens)
    assert "✓" in capsys.readouterr().out


def test_layer_norm_tokens_torch_versions_pass():
    fl.checks.check_layer_norm_tokens(lambda t, eps=1e-5: F.layer_norm(t, t.shape[-1:], eps=eps))
    fl.checks.check_layer_norm_tokens(lambda t, eps=1e-5: torch.nn.LayerNorm(t.shape[-1], eps=eps)(t))


def test_layer_norm_tokens_skeleton_fails():
    fails(fl.checks.check_layer_norm_tokens, SKELETON, "returned None")


def _norm(t, dims, unbiased=False, eps=1e-5):
    return (t - t.mean(dims, keepdim=True)) / (t.var(dims, keepdim=True, unbiased=unbiased) + eps).sqrt()


def test_layer_norm_tokens_over_the_token_axis_fails():
    fails(fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: _norm(t, 1), "token axis")


def test_layer_norm_tokens_over_the_whole_sample_fails():
    fails(fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: _norm(t, (1, 2)), "whole (L, C) sample")


def test_layer_norm_tokens_batchnorm_style_fails():
    fails(fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: _norm(t, 0), "batch axis")


def test_layer_norm_tokens_unbiased_variance_fails():
    fails(fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: _norm(t, -1, unbiased=True), "biased variance")


def test_layer_norm_tokens_divide_by_variance_fails():
    fails(fl.checks.check_layer_norm_tokens,
          lambda t, eps=1e-5: (t - t.mean(-1, keepdim=True)) / (t.var(-1, keepdim=True, unbiased=False) + eps),
          "standard deviation")


def test_layer_norm_tokens_centring_only_fails():
    fails(fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: t - t.mean(-1, keepdim=True), "values differ")


def test_layer_norm_tokens_batch_dependent_answer_fails():
    # right on a batch of 3, wrong alone: the second call catches it
    def wrong(t, eps=1e-5):
        out = layer_norm_tokens(t, eps)
        return out if t.shape[0] > 1 else out * 0
    fails(fl.checks.check_layer_norm_tokens, wrong, "one sample alone")


# --- more wrong answers, one per plausible mistake (counted in the report of issue 19) ----------

def _ln(t, eps=1e-5, *, where="inside", std=False):
    m = t.mean(-1, keepdim=True)
    v = t.var(-1, keepdim=True, unbiased=False)
    if where == "none":
        return (t - m) / v.sqrt()
    if where == "outside":
        return (t - m) / (v.sqrt() + eps)
    if std:
        return (t - m) / (t.std(-1, keepdim=True, unbiased=False) ** 2 + eps).sqrt()
    return (t - m) / (v + eps).sqrt()


def _pu(x, r, order):
    n, c, h, w = x.shape
    return x.view(n, c, h // r, r, w // r, r).permute(0, *order, 2, 4).reshape(n, c * r * r, h // r, w // r)


WRONG = {
    "tokens: reshape": (fl.checks.check_to_tokens, lambda f: f.reshape(f.shape[0], -1, f.shape[1]), "scrambled"),
    "tokens: column-major": (fl.checks.check_to_tokens, lambda f: f.transpose(2, 3).flatten(2).transpose(1, 2), ""),
    "tokens: channels first": (fl.checks.check_to_tokens, lambda f: f.flatten(2), "shape"),
    "tokens: batch folded in": (fl.checks.check_to_tokens, lambda f: f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]), "shape"),
    "from: reshape": (fl.checks.check_from_tokens, lambda t, h, w: t.reshape(t.shape[0], -1, h, w), ""),
    "from: h and w swapped": (fl.checks.check_from_tokens, lambda t, h, w: t.transpose(1, 2).reshape(t.shape[0], -1, w, h)
                              .transpose(2, 3), ""),
    "s2d: reshape": (fl.checks.check_space_to_depth, lambda x, r: x.reshape(x.shape[0], -1, x.shape[2] // r, x.shape[3] // r), ""),
    "s2d: channels last in the block": (fl.checks.check_space_to_depth, lambda x, r: _pu(x, r, (3, 5, 1)), ""),
    "s2d: i and j swapped": (fl.checks.check_space_to_depth, lambda x, r: _pu(x, r, (1, 5, 3)), ""),
    "s2d: pixel_shuffle": (fl.checks.check_space_to_depth, lambda x, r: F.pixel_shuffle(x, r), ""),
    "ln: no eps": (fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: _ln(t, eps, where="none"), ""),
    "ln: eps outside the sqrt": (fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: _ln(t, eps, where="outside"), ""),
    "ln: eps fixed at 1e-6": (fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: _ln(t, 1e-6), ""),
    "ln: unbiased": (fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: _norm(t, -1, unbiased=True), "biased"),
    "ln: over tokens": (fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: _norm(t, 1), "token axis"),
    "ln: centred in place": (fl.checks.check_layer_norm_tokens, lambda t, eps=1e-5: (lambda v: t.sub_(t.mean(-1, keepdim=True))
                             / (v + eps).sqrt())(t.var(-1, keepdim=True, unbiased=False)), "in place"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)


def test_all_solutions_of_the_master_pass(capsys):
    from solutions import solution
    S = solution(3)
    for name in ("to_tokens", "from_tokens", "space_to_depth", "patchify", "layer_norm_tokens"):
        getattr(fl.checks, f"check_{name}")(getattr(S, name))
    assert capsys.readouterr().out.count("✓") == 5
