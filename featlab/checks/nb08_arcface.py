"""Checks for ``exercises/08_*.ipynb`` (ArcFace; notebook ``notebooks/08_*``)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..i18n import _
from ._common import ExerciseError, _close, _ok, _same, _scalar, _tensor, learner_check

__all__ = ["check_cosine_logits", "check_arcface_logits", "check_verification_accuracy"]


def _number(value, what: str) -> float:
    return _scalar(value, what, many_hint=_("Take the maximum over the thresholds."))


def _gradient_matches(learner, reference, x: torch.Tensor, what: str, name: str) -> None:
    """The gradient of a random weighting of ``learner(x)`` w.r.t. ``x`` equals the reference's: a
    result that still requires grad can be cut off from ``x`` in places (a .detach() or a copy)."""
    g = torch.Generator().manual_seed(89)
    leaf = x.clone().requires_grad_(True)
    out = _tensor(learner(leaf * 1.0), what)
    r = torch.rand(out.shape, generator=g, dtype=out.dtype)
    if not out.requires_grad:
        raise ExerciseError(_("{what} does not depend on `{name}` through autograd: use torch operations only.").format(
                              what=what, name=name))
    (got,) = torch.autograd.grad((out * r).sum(), leaf, allow_unused=True)
    ref_leaf = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad((reference(ref_leaf) * r).sum(), ref_leaf)
    if got is None or not torch.allclose(got, want, atol=1e-3, rtol=1e-3):
        dead = _("everywhere") if got is None or not got.abs().max() else \
            _("in {n_dead} of {n_all} places").format(
              n_dead=int(((got.abs() < 1e-12) & (want.abs() > 1e-06)).sum()), n_all=want.numel())
        raise ExerciseError(_("{what} has the right values but the wrong gradient with respect to `{name}` (no "
                              "gradient flows back {dead}): a .detach(), .data, or writing results into a "
                              "detached copy cuts the graph, and training would not update those entries. "
                              "Build the result from the input with torch operations only.").format(
                                      what=what, name=name, dead=dead))


# --- 1. cosine logits ------------------------------------------------------------------------

@learner_check(in_place=True)   # editing the given (non-leaf) cosines in place is allowed
def check_cosine_logits(cosine_logits) -> None:
    """``cosine_logits(embeddings, weight, s)``: (N, D), (C, D) -> (N, C) logits s·cos θ_j."""
    from ..arcface import ArcFace

    torch.manual_seed(80)
    emb = torch.randn(5, 4) * torch.tensor([0.2, 1.0, 7.0, 3.0, 0.5])[:, None]     # rows of any length
    weight = torch.randn(3, 4) * torch.tensor([0.3, 4.0, 1.5])[:, None]
    for s in (8.0, 3.0):
        ref = ArcFace(4, 3, s=s)
        with torch.no_grad():
            ref.weight.copy_(weight)
            want = ref(emb)                                                          # labels=None: s·cos θ
        w = weight.clone().requires_grad_(True) * 1.0        # not a leaf: in-place edits are allowed
        got = _tensor(cosine_logits(emb.clone(), w, s), "cosine_logits(embeddings, weight, s)")
        if tuple(got.shape) == (3, 5):
            raise ExerciseError(_("cosine_logits has shape (C, N) = (3, 5); expected (N, C) = (5, 3): one row "
                                  "per embedding, one column per class, so multiply emb_unit @ weight_unit.T."))
        if tuple(got.shape) != (5, 3):
            raise ExerciseError(_("cosine_logits gives shape {got_shape} for embeddings (5, 4) and weight (3, "
                                  "4); expected (N, C) = (5, 3).").format(got_shape=tuple(got.shape)))
        if not got.requires_grad:
            raise ExerciseError(_("the result does not depend on `weight` through autograd (no grad_fn): "
                                  "compute with torch operations only (no .detach(), .numpy() or .item()), so "
                                  "that training can update the class centres."))
        got = got.detach().cpu()
        unit_e, unit_w = F.normalize(emb, dim=1), F.normalize(weight, dim=1)
        if _same(got, s * emb @ weight.T):
            raise ExerciseError(_("neither the embeddings nor the weight rows are normalised: this is s·W·x, "
                                  "which depends on the lengths. Divide every row of both by its L2 norm."))
        if _same(got, s * emb @ unit_w.T):
            raise ExerciseError(_("the embeddings are not normalised (the weight rows are): did you forget to "
                                  "normalise the embeddings? Each row of `embeddings` must have length 1."))
        if _same(got, s * unit_e @ weight.T):
            raise ExerciseError(_("the weight rows are not normalised (the embeddings are): did you forget to "
                                  "normalise the weights? Each row of `weight` (one class centre) must have "
                                  "length 1."))
        if _same(got, s * F.normalize(emb, dim=0) @ F.normalize(weight, dim=0).T) or \
                _same(got, s * unit_e @ F.normalize(weight, dim=0).T) or \
                _same(got, s * F.normalize(emb, dim=0) @ unit_w.T):
            raise ExerciseError(_("columns were normalised instead of rows: each ROW is one vector, so use "
                                  "F.normalize(x, dim=1) or x / x.norm(dim=1, keepdim=True)."))
        if _same(got, unit_e @ unit_w.T):
            raise ExerciseError(_("these are the cosines themselves: multiply them by the scale s."))
        if _same(got, unit_e @ unit_w.T * 8.0) and s != 8.0:
            raise ExerciseError(_("the scale is fixed at 8: use the argument s."))
        _close(got, want, f"cosine_logits(embeddings, weight, s={s:g})", atol=1e-4)
    _gradient_matches(lambda w: cosine_logits(emb.clone(), w, 8.0),
                      lambda w: 8.0 * F.normalize(emb, dim=1) @ F.normalize(w, dim=1).T, weight,
                      "cosine_logits(embeddings, weight, s)", "weight")
    _ok(_("cosine_logits: unit embeddings · unit class centres, times s (== fl.ArcFace with labels=None)"))


# --- 2. ArcFace logits -----------------------------------------------------------------------

def _arcface_case(seed: int, s: float, m: float):
    """Cosines (N, C) with target cosines from 1 down to -1, so that the fallback region is hit."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.tensor([1.0, 0.9, 0.5, 0.1, -0.3, -0.7, -0.92, -0.99, -1.0])
    n, c = len(targets), 4
    cos = torch.rand(n, c, generator=g) * 1.8 - 0.9
    labels = torch.randint(0, c, (n,), generator=g)
    cos[torch.arange(n), labels] = targets
    return cos, labels


@learner_check(in_place=True)   # editing the given (non-leaf) cosines in place is allowed
def check_arcface_logits(arcface_logits) -> None:
    """``arcface_logits(cos, labels, s, m)``: (N, C) cosines, (N,) labels -> (N, C) ArcFace logits."""
    from ..arcface import ArcFace

    for seed, s, m in [(81, 10.0, 0.5), (82, 4.0, 0.3)]:
        cos, labels = _arcface_case(seed, s, m)
        n, c = cos.shape
        target = F.one_hot(labels, c).bool()
        shifted = ArcFace(2, c, s=s, m=m).margin(cos)                  # cos(θ+m) with the fallback
        want = s * torch.where(target, shifted, cos)
        x = cos.clone().requires_grad_(True) * 1.0           # not a leaf: in-place edits are allowed
        got = _tensor(arcface_logits(x, labels.clone(), s, m), "arcface_logits(cos, labels, s, m)")
        if tuple(got.shape) != (n, c):
            raise ExerciseError(_("arcface_logits gives shape {got_shape} for cos of shape {cos_shape}; "
                                  "expected the same shape as cos: one logit per embedding and class.").format(
                                          got_shape=tuple(got.shape), cos_shape=(n, c)))
        if not got.requires_grad:
            raise ExerciseError(_("the result does not depend on `cos` through autograd (no grad_fn): use "
                                  "torch operations only (no .detach(), .numpy(), .item() or math.* on "
                                  "tensors), so that the loss can be trained."))
        got = got.detach().cpu()
        if torch.isnan(got).any() or torch.isinf(got).any():
            raise ExerciseError(_("the logits contain NaN or inf, for cosines of exactly ±1: clamp the cosine "
                                  "to [-1, 1] before arccos, and 1 - cos² to >= 0 before sqrt."))
        theta = torch.arccos(cos)
        rest = ~target
        # the other classes: s·cos θ_j, unchanged
        if not _same(got[rest], s * cos[rest]):
            if _same(got[rest], s * shifted[rest]) or _same(got[rest], s * torch.cos(theta[rest] + m)):
                raise ExerciseError(_("the margin is added to every class: only the target class (given by "
                                      "labels) gets cos(θ_y + m); the other logits stay s·cos θ_j."))
            if _same(got[rest], cos[rest]):
                raise ExerciseError(_("the logits of the other classes are not scaled: they must be s·cos θ_j."))
            raise ExerciseError(_("the logits of the non-target classes are wrong: they must be s·cos θ_j, "
                                  "exactly the input cosines times s."))
        g, cy, ty = got[target], cos[target], theta[target]
        far = ty + m > math.pi                                          # the fallback region
        if _same(g, s * (cy - m)):
            raise ExerciseError(_("m is subtracted from the cosine (that is CosFace): ArcFace adds m to the "
                                  "ANGLE: θ_y = arccos(cos θ_y), then cos(θ_y + m)."))
        if _same(g, s * (cy + m)):
            raise ExerciseError(_("m is added to the cosine: ArcFace adds m to the ANGLE θ_y = arccos(cos θ_y) "
                                  "and takes cos(θ_y + m), which is smaller than cos θ_y."))
        if _same(g, cy) or _same(g, shifted[target]):
            raise ExerciseError(_("the target logits are not scaled: multiply by s."))
        if _same(g, s * cy):
            raise ExerciseError(_("the target logits have no margin: they must be s·cos(θ_y + m)."))
        if _same(g, s * torch.where(cy > 0, torch.cos(ty + m), cy)):
            raise ExerciseError(_("this is the 'easy margin' (no margin where cos θ_y <= 0); ArcFace's default "
                                  "keeps cos(θ_y + m) while θ_y + m <= π and uses cos θ_y − m·sin m beyond."))
        if _same(g[~far], s * shifted[target][~far]) and not _same(g[far], s * shifted[target][far]):
            if _same(g[far], s * torch.cos(ty[far] + m)):
                raise ExerciseError(_("the fallback is missing: where θ_y + m > π, cos(θ_y + m) rises again as "
                                      "θ_y grows; use s·(cos θ_y − m·sin m) there."))
            raise ExerciseError(_("the logits are right while θ_y + m <= π but wrong beyond it (cos θ_y close "
                                  "to -1): the fallback there is s·(cos θ_y − m·sin m)."))
        if _same(g[far], s * shifted[target][far]) and not _same(g[~far], s * shifted[target][~far]):
            raise ExerciseError(_("the target logits are wrong while θ_y + m <= π: there they are s·cos(θ_y + "
                                  "m), with θ_y = arccos(cos θ_y) in radians."))
        _close(got, want, f"arcface_logits(cos, labels, s={s:g}, m={m:g})", atol=1e-4)
    # the gradient, on cosines away from ±1 (where d arccos / d cos is infinite), fallback region included
    g = torch.Generator().manual_seed(84)
    cos = torch.rand(6, 4, generator=g) * 1.6 - 0.8
    labels = torch.tensor([0, 3, 1, 2, 2, 0])
    cos[torch.arange(6), labels] = torch.tensor([0.8, 0.3, -0.2, -0.85, -0.9, 0.0])
    ref = ArcFace(2, 4, s=10.0, m=0.5)
    target = F.one_hot(labels, 4).bool()
    _gradient_matches(lambda c: arcface_logits(c, labels.clone(), 10.0, 0.5),
                      lambda c: 10.0 * torch.where(target, ref.margin(c), c), cos,
                      "arcface_logits(cos, labels, s, m)", "cos")
    _ok(_("arcface_logits: s·cos(θ_y + m) on the target only, with the fallback beyond π − m (== fl.ArcFace)"))


# --- 3. verification accuracy at the best threshold -----------------------------------------

def _best_accuracy(sims: torch.Tensor, same: torch.Tensor) -> float:
    """Brute force: every similarity value is a candidate threshold, plus one above them all."""
    thresholds = torch.cat([sims.unique(), torch.tensor([float("inf")], dtype=sims.dtype)])
    return max(float(((sims >= t) == same).double().mean()) for t in thresholds)


def _verification_cases():
    g = torch.Generator().manual_seed(83)
    cases = []
    # a small case where the reversed rule ("same when similarity <= t") does better than chance
    sims = torch.linspace(1.0, 0.1, 10)
    same = torch.tensor([True, True, True, False, False, False, False, False, True, True])
    cases.append(("small", sims, same))
    # balanced, all similarities between 0.55 and 0.95, best threshold near 0.75
    same = torch.arange(40) % 2 == 0
    sims = 0.75 + 0.1 * torch.where(same, 1.0, -1.0) + 0.12 * torch.randn(40, generator=g)
    cases.append(("high", sims.clamp(0.55, 0.95), same))
    # 10 same and 30 different pairs (accuracy and the mean of TPR and TNR have different optima)
    same = torch.arange(40) % 4 == 0
    sims = torch.where(same, 0.6, 0.3) + 0.2 * torch.randn(40, generator=g)
    cases.append(("unbalanced", sims, same))
    # few same pairs, not above the others: best to call every pair "different"
    same = torch.zeros(20, dtype=torch.bool)
    same[[3, 8, 12]] = True
    sims = torch.linspace(0.9, 0.1, 20)
    sims[[3, 8, 12]] = torch.tensor([0.2, 0.3, 0.15])
    cases.append(("all different", sims, same))
    # the most similar pairs are the different ones: best to call every pair "same" (t <= the smallest)
    sims = torch.linspace(0.9, 0.2, 10)
    same = torch.ones(10, dtype=torch.bool)
    same[:2] = False
    cases.append(("all same", sims, same))
    # ties: pairs with equal similarity must get the same answer
    sims = torch.tensor([0.9, 0.8, 0.8, 0.8, 0.8, 0.4, 0.3, 0.2])
    same = torch.tensor([True, True, True, False, False, False, True, False])
    cases.append(("ties", sims, same))
    return cases


@learner_check
def check_verification_accuracy(verification_accuracy) -> None:
    """``verification_accuracy(sims, same)``: (P,) similarities and (P,) booleans -> best accuracy over t."""
    for name, sims, same in _verification_cases():
        want = _best_accuracy(sims, same)
        got = _number(verification_accuracy(sims.clone(), same.clone()),
                      "verification_accuracy(similarities, same)")
        if abs(got - want) < 1e-6:
            continue
        if 1 < got <= 100 and abs(got / 100 - want) < 1e-6:
            raise ExerciseError(_("the accuracy is a percentage: return a fraction between 0 and 1."))
        for t in (0.5, 0.0):
            if abs(got - float(((sims >= t) == same).double().mean())) < 1e-6:
                raise ExerciseError(_("this is the accuracy at a fixed threshold t = {t}: try every threshold "
                                      "(each similarity value is a candidate) and return the best accuracy.").format(
                                              t=t))
        flipped = _best_accuracy(-sims, same)
        trivial = max(float(same.double().mean()), float((~same).double().mean()))   # all "same" / all "different"
        if abs(got - flipped) < 1e-6 and flipped > trivial + 1e-6:
            raise ExerciseError(_("the rule is reversed: a HIGHER similarity means more likely the same "
                                  "identity, so call a pair 'same' when its similarity >= t."))
        accs = torch.tensor([float(((sims >= t) == same).double().mean()) for t in sims])
        balanced = max(0.5 * float(((sims >= t) & same).sum() / same.sum() + ((sims < t) & ~same).sum() / (~same).sum())
                       for t in torch.cat([sims.unique(), torch.tensor([float("inf")])]))
        if name == "unbalanced" and abs(got - balanced) < 1e-6:
            raise ExerciseError(_("this is the mean of the true-positive and true-negative rates: accuracy is "
                                  "the share of ALL pairs called right, (right 'same' + right 'different') / P."))
        if name == "all different" and abs(got - want) > 1e-6 and abs(got - float(accs.max())) < 1e-6:
            raise ExerciseError(_("calling every pair 'different' (a threshold above the largest similarity) "
                                  "is a threshold too, and here it is the best: include it."))
        if name == "all same" and abs(got - want) > 1e-6 and abs(got - max(
                float(((sims > t) == same).double().mean()) for t in sims)) < 1e-6:
            raise ExerciseError(_("calling every pair 'same' (a threshold at or below the smallest similarity) "
                                  "is a threshold too, and here it is the best: predict 'same' where "
                                  "similarity >= t, with t running over the similarity values."))
        if name == "ties" and got > want:
            raise ExerciseError(_("accuracy {got:.3f} is more than any threshold can reach ({want:.3f}): pairs "
                                  "with EQUAL similarity must get the same answer. Only cut between different "
                                  "similarity values (or test each value t with sims >= t).").format(
                                          got=got, want=want))
        if any(abs(got - float(t)) < 1e-6 for t in sims[accs == accs.max()]):
            raise ExerciseError(_("this looks like the best threshold: return the best ACCURACY instead."))
        raise ExerciseError(_("verification_accuracy gives {got:.4f} on a case whose best accuracy is "
                              "{want:.4f}: for each threshold t, predict 'same' where similarity >= t, count "
                              "the pairs predicted right, and return the largest share.").format(got=got, want=want))
    _ok(_("verification_accuracy: best accuracy over all thresholds of 'same iff similarity >= t'"))
