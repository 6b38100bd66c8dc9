"""The checks of exercise 08 pass the solution and fail the skeleton and plausible wrong answers."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import featlab as fl
from featlab.checks import check_arcface_logits, check_cosine_logits, check_verification_accuracy
from helpers import SKELETON, fails


# --- the solutions (as in exercises/solutions/08_arcface.ipynb) --------------------------------

def cosine_logits(embeddings, weight, s):
    e = embeddings / embeddings.norm(dim=1, keepdim=True)
    w = weight / weight.norm(dim=1, keepdim=True)
    return s * e @ w.T


def arcface_logits(cos, labels, s, m):
    theta = torch.arccos(cos.clamp(-1, 1))
    target = torch.where(theta + m <= math.pi, torch.cos(theta + m), cos - m * math.sin(m))
    is_target = F.one_hot(labels, cos.shape[1]).bool()
    return s * torch.where(is_target, target, cos)


def verification_accuracy(sims, same):
    best = float((~same).double().mean())                      # t above every similarity: all "different"
    for t in sims.unique():
        best = max(best, float(((sims >= t) == same).double().mean()))
    return best


def test_solutions_pass(capsys):
    check_cosine_logits(cosine_logits)
    check_arcface_logits(arcface_logits)
    check_verification_accuracy(verification_accuracy)
    assert capsys.readouterr().out.count("✓") == 3


def test_other_right_answers_pass(capsys):
    """Correct answers written differently are accepted."""
    check_cosine_logits(lambda e, w, s: s * F.linear(F.normalize(e), F.normalize(w)))
    check_cosine_logits(lambda e, w, s: s * fl.cosine_similarity(e, w))

    def via_library(cos, labels, s, m):                         # fl.ArcFace's own margin step
        arc = fl.ArcFace(2, cos.shape[1], s=s, m=m)
        return s * torch.where(F.one_hot(labels, cos.shape[1]).bool(), arc.margin(cos), cos)

    def trig(cos, labels, s, m):                                # cos θ cos m − sin θ sin m, in place
        out = cos.clone()
        rows = torch.arange(len(labels))
        c = cos[rows, labels]
        sin = (1 - c ** 2).clamp_min(0).sqrt()
        out[rows, labels] = torch.where(c >= math.cos(math.pi - m), c * math.cos(m) - sin * math.sin(m),
                                        c - m * math.sin(m))
        return s * out

    check_arcface_logits(via_library)
    check_arcface_logits(trig)

    def sorted_cumsum(sims, same):                              # one sort, cumulative counts, tie-aware
        order = sims.argsort(descending=True)
        s, y = sims[order], same[order].double()
        k = torch.arange(len(y) + 1)
        tp = torch.cat([y.new_zeros(1), y.cumsum(0)])
        correct = tp + (len(y) - y.sum()) - (k - tp)
        cut = torch.ones(len(y) + 1, dtype=torch.bool)
        cut[1:-1] = s[:-1] > s[1:]
        return correct[cut].max() / len(y)                      # a 0-dim tensor is fine

    check_verification_accuracy(sorted_cumsum)
    check_verification_accuracy(lambda s, y: np.float64(verification_accuracy(s, y)))
    assert capsys.readouterr().out.count("✓") == 6


@pytest.mark.parametrize("check", [check_cosine_logits, check_arcface_logits, check_verification_accuracy])
def test_skeleton_fails(check):
    fails(check, SKELETON, "None")


# --- plausible wrong answers -------------------------------------------------------------------

def test_cosine_logits_wrong_answers():
    fails(check_cosine_logits, lambda e, w, s: s * e @ F.normalize(w).T, "forget to normalise the embeddings")
    fails(check_cosine_logits, lambda e, w, s: s * F.normalize(e) @ w.T, "forget to normalise the weights")
    fails(check_cosine_logits, lambda e, w, s: s * e @ w.T, "neither")
    fails(check_cosine_logits, lambda e, w, s: F.normalize(e) @ F.normalize(w).T, "multiply them by the scale s")
    fails(check_cosine_logits, lambda e, w, s: s * F.normalize(e, dim=0) @ F.normalize(w, dim=0).T, "dim=1")
    fails(check_cosine_logits, lambda e, w, s: s * F.normalize(w) @ F.normalize(e).T, "(N, C) = (5, 3)")
    fails(check_cosine_logits, lambda e, w, s: 8.0 * F.normalize(e) @ F.normalize(w).T, "use the argument s")
    fails(check_cosine_logits, lambda e, w, s: s * F.normalize(e) @ F.normalize(w.detach()).T, "autograd")
    fails(check_cosine_logits, lambda e, w, s: (s * F.normalize(e) @ F.normalize(w).T).detach().numpy(),
          "torch.Tensor")


def _with_target(fn):
    """An arcface_logits built from a wrong target-logit formula f(cos_y, θ_y, m) (no scale)."""
    def arcface(cos, labels, s, m):
        theta = torch.arccos(cos.clamp(-1, 1))
        is_target = F.one_hot(labels, cos.shape[1]).bool()
        return s * torch.where(is_target, fn(cos, theta, m), cos)
    return arcface


def test_arcface_logits_wrong_answers():
    every_class = lambda c, l, s, m: s * fl.ArcFace(2, c.shape[1], s=s, m=m).margin(c)  # noqa: E731
    fails(check_arcface_logits, every_class, "every class")
    fails(check_arcface_logits, _with_target(lambda c, t, m: torch.cos(t + m)), "fallback is missing")
    fails(check_arcface_logits, _with_target(lambda c, t, m: c - m), "CosFace", "ANGLE")
    fails(check_arcface_logits, _with_target(lambda c, t, m: c + m), "added to the cosine", "ANGLE")
    fails(check_arcface_logits, _with_target(lambda c, t, m: torch.where(c > 0, torch.cos(t + m), c)), "easy margin")
    fails(check_arcface_logits, _with_target(lambda c, t, m: torch.where(t + m <= math.pi, torch.cos(t + m), c - m)),
          "cos θ_y − m·sin m")
    fails(check_arcface_logits, _with_target(lambda c, t, m: c), "no margin")
    fails(check_arcface_logits, _with_target(lambda c, t, m: torch.cos(t + math.radians(m))), "differ from the reference")
    unscaled_target = lambda c, l, s, m: torch.where(  # noqa: E731
        F.one_hot(l, c.shape[1]).bool(), fl.ArcFace(2, c.shape[1], s=s, m=m).margin(c), s * c)
    fails(check_arcface_logits, unscaled_target, "multiply by s")
    fails(check_arcface_logits, lambda c, l, s, m: arcface_logits(c, l, s, m).detach(), "autograd")
    fails(check_arcface_logits, lambda c, l, s, m: arcface_logits(c, l, s, m)[:, :2], "same shape as cos")
    nan_at_one = lambda c, l, s, m: s * torch.where(  # noqa: E731
        F.one_hot(l, c.shape[1]).bool(), torch.cos(torch.arccos(c * 1.0000001) + m), c)
    fails(check_arcface_logits, nan_at_one, "clamp")


def test_no_fallback_hint():
    """Without the fallback (labels respected) the hint names the fallback."""
    def no_fallback(cos, labels, s, m):
        theta = torch.arccos(cos.clamp(-1, 1))
        return s * torch.where(F.one_hot(labels, cos.shape[1]).bool(), torch.cos(theta + m), cos)
    fails(check_arcface_logits, no_fallback, "fallback is missing", "m·sin m")


def test_verification_accuracy_wrong_answers():
    fails(check_verification_accuracy, lambda s, y: float(((s >= 0.5) == y).double().mean()), "fixed threshold")
    fails(check_verification_accuracy, lambda s, y: verification_accuracy(-s, y), "reversed")
    fails(check_verification_accuracy, lambda s, y: 100 * verification_accuracy(s, y), "percentage")

    def threshold(sims, same):
        accs = [float(((sims >= t) == same).double().mean()) for t in sims]
        return float(sims[int(np.argmax(accs))])
    fails(check_verification_accuracy, threshold, "ACCURACY")

    def balanced(sims, same):
        return max(0.5 * float(((sims >= t) & same).sum() / same.sum() + ((sims < t) & ~same).sum() / (~same).sum())
                   for t in torch.cat([sims.unique(), torch.tensor([float("inf")])]))
    fails(check_verification_accuracy, balanced, "ALL pairs")

    def no_all_different(sims, same):
        return max(float(((sims >= t) == same).double().mean()) for t in sims)
    fails(check_verification_accuracy, no_all_different, "every pair 'different'")

    def naive_cumsum(sims, same):                               # splits runs of equal similarity
        order = torch.from_numpy(np.argsort(-sims.numpy(), kind="stable"))
        y = same[order].double()
        tp = torch.cat([y.new_zeros(1), y.cumsum(0)])
        k = torch.arange(len(y) + 1)
        return float(((tp + (len(y) - y.sum()) - (k - tp)) / len(y)).max())
    fails(check_verification_accuracy, naive_cumsum, "EQUAL similarity")
    fails(check_verification_accuracy, lambda s, y: (s >= 0.5) == y, "one number")
    fails(check_verification_accuracy, lambda s, y: (0.9, 0.5), "one number")
    fails(check_verification_accuracy, lambda s, y: "0.9", "one number")


# --- more wrong answers, one per plausible mistake (counted in the report of issue 19) ----------

def _arc_into_detached_copy(cos, labels, s, m):
    out = cos.detach().clone()                   # the non-target logits no longer reach cos
    rows = torch.arange(len(labels))
    out[rows, labels] = arcface_logits(cos, labels, 1.0, m)[rows, labels]
    return s * out


def _arc_detached_angle(cos, labels, s, m):
    theta = torch.arccos(cos.detach().clamp(-1, 1))      # the target logits no longer reach cos
    target = torch.where(theta + m <= math.pi, torch.cos(theta + m), cos.detach() - m * math.sin(m))
    return s * torch.where(F.one_hot(labels, cos.shape[1]).bool(), target, cos)


def _arc_cosface_fallback(cos, labels, s, m):
    theta = torch.arccos(cos.clamp(-1, 1))
    target = torch.where(theta + m <= math.pi, torch.cos(theta + m), cos - m)
    return s * torch.where(F.one_hot(labels, cos.shape[1]).bool(), target, cos)


def _accuracy_strict(sims, same):
    return max(float(((sims > t) == same).double().mean()) for t in sims)


def _accuracy_no_top(sims, same):
    return max(float(((sims >= t) == same).double().mean()) for t in sims)


WRONG = {
    "arc: written into a detached copy": (check_arcface_logits, _arc_into_detached_copy, "wrong gradient"),
    "arc: detached angle": (check_arcface_logits, _arc_detached_angle, "wrong gradient"),
    "arc: CosFace fallback": (check_arcface_logits, _arc_cosface_fallback, "fallback"),
    "arc: margin in degrees": (check_arcface_logits, lambda c, l, s, m: arcface_logits(c, l, s, math.degrees(m)), ""),
    "arc: margin on every class": (check_arcface_logits, lambda c, l, s, m: s * fl.ArcFace(2, c.shape[1], s=s, m=m).margin(c),
                                   "every class"),
    "cos: detached weight norm": (check_cosine_logits, lambda e, w, s: s * F.normalize(e) @ (w / w.norm(dim=1, keepdim=True).detach()).T,
                                  "wrong gradient"),
    "cos: no scale": (check_cosine_logits, lambda e, w, s: cosine_logits(e, w, 1.0), "multiply them by the scale"),
    "ver: strict > over the values": (check_verification_accuracy, _accuracy_strict, "every pair 'same'"),
    "ver: no threshold above all": (check_verification_accuracy, _accuracy_no_top, "every pair 'different'"),
    "ver: fixed 0.5": (check_verification_accuracy, lambda s, y: float(((s >= 0.5) == y).double().mean()), "fixed threshold"),
    "ver: reversed": (check_verification_accuracy, lambda s, y: verification_accuracy(-s, y), "reversed"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
