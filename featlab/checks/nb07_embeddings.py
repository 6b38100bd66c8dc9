"""Checks for ``exercises/07_*.ipynb`` (embeddings and retrieval; notebook ``notebooks/07_*``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..i18n import _
from ._common import ExerciseError, _close, _ok, _same, _scalar, _tensor, learner_check

__all__ = ["check_cosine_matrix", "check_recall_at_k", "check_leave_one_out_recall", "check_fuse_layers"]


def _unit_rows(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    return x / x.norm(dim=dim, keepdim=True)


def _number(value, what: str) -> float:
    return _scalar(value, what, many_hint=_("Average over the queries: .float().mean()."))


# --- 1. cosine similarity matrix -------------------------------------------------------------

@learner_check
def check_cosine_matrix(cosine_matrix) -> None:
    """``cosine_matrix(a, b)``: (N, D) and (M, D) -> (N, M) cosines of every row of a with every row of b."""
    torch.manual_seed(70)
    a = torch.randn(5, 7) * torch.tensor([0.1, 1.0, 10.0, 3.0, 0.5])[:, None]    # rows of very different lengths
    b = torch.randn(4, 7) * torch.tensor([2.0, 0.2, 5.0, 1.0])[:, None]
    want = F.cosine_similarity(a[:, None, :], b[None, :, :], dim=2)                 # (5, 4), independent reference
    got = _tensor(cosine_matrix(a.clone(), b.clone()), "cosine_matrix(a, b)").detach().cpu()
    if tuple(got.shape) == (4, 5):
        raise ExerciseError(_("cosine_matrix(a, b) has shape (M, N) = (4, 5); expected (N, M) = (5, 4): row i "
                              "of the result belongs to row i of a, so compute a_unit @ b_unit.T."))
    if tuple(got.shape) != (5, 4):
        raise ExerciseError(_("cosine_matrix(a, b) has shape {got_shape} for a (5, 7) and b (4, 7); expected "
                              "(5, 4): one cosine for every pair (row of a, row of b).").format(
                                      got_shape=tuple(got.shape)))
    if _same(got, a @ b.T):
        raise ExerciseError(_("this is the plain dot product a @ b.T: the rows are not unit length: did you "
                              "forget to normalise? Divide every row by its L2 norm first."))
    if _same(got, _unit_rows(a, 0) @ _unit_rows(b, 0).T):
        raise ExerciseError(_("the columns were normalised instead of the rows: each ROW is one vector, so "
                              "divide by x.norm(dim=1, keepdim=True), not dim=0."))
    if _same(got, _unit_rows(a) @ b.T) or _same(got, a @ _unit_rows(b).T):
        raise ExerciseError(_("only one of a and b was normalised: normalise the rows of both."))
    if _same(got, _unit_rows(a) @ _unit_rows(b).T / a.shape[1]):
        raise ExerciseError(_("the cosines are divided by D: after normalising the rows, the dot product "
                              "already is the cosine."))
    if got.abs().max() > 1 + 1e-4:
        raise ExerciseError(_("a cosine of {got:.3g} is outside [-1, 1]: normalise every row of a and of b to "
                              "length 1 before the matrix product.").format(got=got.abs().max().item()))
    _close(got, want, "cosine_matrix(a, b)", atol=1e-5)
    _ok(_("cosine_matrix: rows normalised, (N, M) cosines, equal to F.cosine_similarity"))


# --- 2. recall@k -----------------------------------------------------------------------------

def _recall_reference(sim: torch.Tensor, ql: torch.Tensor, gl: torch.Tensor, k: int) -> float:
    """Loop version: a query counts when any of its k most similar gallery items has its label."""
    hits = 0
    for row, label in zip(sim, ql):
        order = sorted(range(len(row)), key=lambda j: -float(row[j]))
        hits += any(int(gl[j]) == int(label) for j in order[:k])
    return hits / len(ql)


def _recall_variants(sim, ql, gl, ks) -> list[tuple[list[float], str]]:
    """Plausible wrong answers (their values for every k) and the hint for each."""
    def rec(top):                                          # (Q, j) gallery indices -> recall
        return (gl[top] == ql[:, None]).any(1).float().mean().item() if top.shape[1] else 0.0

    def top(k, largest=True):
        return sim.topk(k, dim=1, largest=largest).indices

    return [
        ([rec(top(min(k + 1, sim.shape[1]))) for k in ks],
         _("this is recall@(k + 1), not recall@k: off by one: take the first k items (topk(k)), not k + 1.")),
        ([rec(top(k - 1)) for k in ks],
         _("this is recall@(k - 1), not recall@k (recall@1 came out 0): off by one: take the first k items "
           "(topk(k)), not k - 1.")),
        ([rec(top(k, largest=False)) for k in ks],
         _("the ranking starts from the LEAST similar items: sort with descending=True, or use topk (it takes "
           "the largest).")),
        ([(gl[top(k)] == ql[:, None]).all(1).float().mean().item() for k in ks],
         _("a query counts only if ALL of its k items have its label; recall@k needs at least ONE (use "
           ".any(dim=1)).")),
        ([(gl[top(k)] == ql[:, None]).float().mean().item() for k in ks],
         _("this is precision@k (the share of the top k that match); recall@k asks whether at least one of the "
           "k is right (.any(dim=1)), then averages over the queries.")),
        ([float((gl[top(k)] == ql[:, None]).any(1).sum()) for k in ks],
         _("return the share of queries (a number between 0 and 1), not their count: .mean(), not .sum().")),
    ]


def _recall_cases():
    g = torch.Generator().manual_seed(71)
    gl = torch.tensor([0, 0, 1, 1, 1, 2, 2, 3, 3, 4])
    ql = torch.tensor([0, 1, 2, 3, 4, 1, 0, 2])
    centres = torch.randn(5, 6, generator=g)
    gallery = centres[gl] + 1.3 * torch.randn(len(gl), 6, generator=g)
    queries = centres[ql] + 1.3 * torch.randn(len(ql), 6, generator=g)
    sim = F.cosine_similarity(queries[:, None], gallery[None], dim=2)     # (8, 10), no ties
    return sim, ql, gl


def _diagnose(got: list[float], want: list[float], ks, variants, what: str, generic: str) -> None:
    """Raise ExerciseError unless got == want for every k; name the wrong answer it matches, if any."""
    if all(abs(a - b) < 1e-6 for a, b in zip(got, want)):
        return
    i = next(i for i, (a, b) in enumerate(zip(got, want)) if abs(a - b) >= 1e-6)
    head = _("{what}(..., k={k}) gave {got:.3f}, expected {want:.3f}").format(
             what=what, k=ks[i], got=got[i], want=want[i])
    for values, hint in variants:
        if all(abs(a - b) < 1e-6 for a, b in zip(got, values)):
            raise ExerciseError(_("{head}: {hint}").format(head=head, hint=hint))
    raise ExerciseError(_("{head}. {generic}").format(head=head, generic=generic))


@learner_check
def check_recall_at_k(recall_at_k) -> None:
    """``recall_at_k(similarity, query_labels, gallery_labels, k)`` -> share of queries with a hit in the top k."""
    sim, ql, gl = _recall_cases()
    ks = (1, 2, 3, 5)
    got = [_number(recall_at_k(sim.clone(), ql.clone(), gl.clone(), k), f"recall_at_k(similarity, ..., k={k})")
           for k in ks]
    want = [_recall_reference(sim, ql, gl, k) for k in ks]
    _diagnose(got, want, ks, _recall_variants(sim, ql, gl, ks), "recall_at_k",
              _("For every query (row), take the k gallery items (columns) with the largest similarity, count "
                "the query when at least one of them has the query's label, and return the share of queries "
                "counted."))
    _ok(_("recall_at_k: any right answer among the k most similar, averaged over the queries (k = 1, 2, 3, 5)"))


# --- 3. leave-one-out recall@k ----------------------------------------------------------------

def _loo_cases():
    g = torch.Generator().manual_seed(72)
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3])           # class 3 has one item: never a hit
    centres = torch.randn(4, 5, generator=g)
    x = centres[labels] + 1.0 * torch.randn(len(labels), 5, generator=g)
    x = torch.cat([x, torch.full((len(labels), 1), 0.5)], dim=1)
    x[11] = torch.tensor([0.2, 0.0, 0.0, 0.0, 0.0, -1.0])   # all cosines of item 11 < 0: a self-similarity of
    return F.cosine_similarity(x[:, None], x[None], dim=2), labels        # 0 would rank first; (12, 12), diagonal 1


def _loo_reference(sim: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    others = sim.clone()
    others.fill_diagonal_(float("-inf"))
    return _recall_reference(others, labels, labels, k)


@learner_check
def check_leave_one_out_recall(leave_one_out_recall) -> None:
    """``leave_one_out_recall(similarity, labels, k)``: every item queries all the OTHER items of the set."""
    sim, labels = _loo_cases()
    ks = (1, 2, 3)
    got = []
    for k in ks:
        given = sim.clone()
        got.append(_number(leave_one_out_recall(given, labels.clone(), k),
                           f"leave_one_out_recall(similarity, labels, k={k})"))
        if not torch.equal(given, sim):
            raise ExerciseError(_("leave_one_out_recall changed the similarity matrix it was given "
                                  "(fill_diagonal_ and item assignment work in place): work on a copy, "
                                  "similarity.clone()."))
    want = [_loo_reference(sim, labels, k) for k in ks]
    variants = [
        ([_recall_reference(sim, labels, labels, k) for k in ks],
         _("the query counts itself: every item is its own most similar item (cosine 1), so recall@1 is 1. Set "
           "the diagonal to -inf (or drop the item's own column) before ranking.")),
        ([_recall_reference(sim - torch.eye(len(sim)), labels, labels, k) for k in ks],
         _("the item itself was given similarity 0, not -inf: an item with fewer than k positive cosines (here "
           "item 11, all its cosines are negative) then still finds itself among its k nearest. Set the "
           "diagonal to -inf (others.fill_diagonal_(float('-inf'))) before ranking.")),
        ([_loo_reference(sim, labels, k + 1) for k in ks],
         _("this is recall@(k + 1) of the other items: off by one: after removing the item itself, take k "
           "items, not k + 1.")),
        ([_loo_reference(sim, labels, k - 1) if k > 1 else 0.0 for k in ks],
         _("this is recall@(k - 1) of the other items (recall@1 came out 0): off by one: after removing the "
           "item itself, k other items remain to look at.")),
    ]
    _diagnose(got, want, ks, variants, "leave_one_out_recall",
              _("Each item is a query against all the other items: remove its own entry (the diagonal), then "
                "count a hit when one of the k most similar others has the same label; return the share of "
                "items."))
    _ok(_("leave_one_out_recall: every item searched the others, itself excluded (k = 1, 2, 3)"))


# --- 4. per-layer normalised fusion ------------------------------------------------------------

def _fusion_cases():
    g = torch.Generator().manual_seed(73)
    emb = {"mid": 40.0 * torch.randn(6, 5, generator=g) * torch.linspace(0.2, 2, 6)[:, None],
           "deep": 0.05 * torch.randn(6, 9, generator=g) * torch.linspace(2, 0.3, 6)[:, None]}
    return emb, {"mid": 1.0, "deep": 3.0}


@learner_check
def check_fuse_layers(fuse_layers) -> None:
    """``fuse_layers(embeddings, weights)``: {layer: (N, D_l)} -> (N, sum D_l) unit rows, each layer
    L2-normalised and scaled by sqrt(w_l), so the fused cosine is the weighted mean of the per-layer cosines."""
    from ..embed import fuse

    emb, w = _fusion_cases()
    n, d = 6, sum(v.shape[1] for v in emb.values())
    got = fuse_layers({k: v.clone() for k, v in emb.items()}, dict(w))
    got = _tensor(got, "fuse_layers(embeddings, weights)").detach().cpu().float()
    if tuple(got.shape) != (n, d):
        raise ExerciseError(_("fuse_layers gives shape {got_shape}; expected (N, D_mid + D_deep) = ({n}, {d}): "
                              "concatenate the layers' vectors along dim=1.").format(
                                      got_shape=tuple(got.shape), n=n, d=d))
    unit = {k: _unit_rows(v) for k, v in emb.items()}
    wrong = {
        _("the layers were not normalised one by one: the layer with the longer vectors (here 'mid', ~1000× "
          "longer) takes over. Normalise each layer's rows before concatenating."):
            _unit_rows(torch.cat([emb[k] * w[k] ** 0.5 for k in emb], 1)),
        _("each layer was normalised over its columns (dim=0); normalise every ROW (one picture) of every "
          "layer: x.norm(dim=1, keepdim=True)."):
            _unit_rows(torch.cat([_unit_rows(emb[k], 0) * w[k] ** 0.5 for k in emb], 1)),
        _("each layer was scaled by w, not sqrt(w): then the weights count squared in the cosine (sum w^2 cos "
          "/ sum w^2). Scale by w ** 0.5."):
            _unit_rows(torch.cat([unit[k] * w[k] for k in emb], 1)),
        _("the weights were ignored: scale each normalised layer by sqrt(w) before concatenating."):
            _unit_rows(torch.cat([unit[k] for k in emb], 1)),
    }
    for hint, value in wrong.items():
        if _same(got, value, atol=1e-5):
            raise ExerciseError(hint)
        if _same(_unit_rows(got), value, atol=1e-5):
            raise ExerciseError(_("the fused rows are not unit length (normalise the concatenated vector as "
                                  "the last step), and {hint}").format(hint=hint))
    lengths = got.norm(dim=1)
    if not torch.allclose(lengths, torch.ones(n), atol=1e-4):
        raise ExerciseError(_("the fused rows have lengths {shortest:.3g} to {longest:.3g}, not 1: normalise "
                              "the concatenated vector as the last step.").format(
                                      shortest=lengths.min().item(), longest=lengths.max().item()))
    per_layer = {k: unit[k] @ unit[k].T for k in emb}
    mean_cos = sum(w[k] * per_layer[k] for k in emb) / sum(w.values())
    if not torch.allclose(got @ got.T, mean_cos, atol=1e-4):
        raise ExerciseError(_("the cosine of two fused vectors should be the weighted mean of the per-layer "
                              "cosines, sum_l w_l cos_l / sum_l w_l, and it is not: normalise each layer's "
                              "rows, scale by sqrt(w_l), concatenate, normalise."))
    if not _same(got, fuse(emb, w), atol=1e-5):
        raise ExerciseError(_("the cosines are right, but the columns are not in the expected order: "
                              "concatenate the layers in the order of the dictionary (for k in embeddings), "
                              "each as sqrt(w) * its normalised rows."))
    _ok(_("fuse_layers: per-layer L2, sqrt(w) weights, unit rows; fused cosine = weighted mean of cosines"))

