"""The checks of exercise 07 pass the solution and fail the skeleton and plausible wrong answers."""
import numpy as np
import pytest
import torch

import featlab as fl
from featlab.checks import (check_cosine_matrix, check_fuse_layers, check_leave_one_out_recall,
                            check_recall_at_k)
from helpers import SKELETON, fails


# --- the solutions (as in exercises/solutions/07_embeddings_retrieval.ipynb) -------------------

def cosine_matrix(a, b):
    a = a / a.norm(dim=1, keepdim=True)
    b = b / b.norm(dim=1, keepdim=True)
    return a @ b.T


def recall_at_k(similarity, query_labels, gallery_labels, k):
    top = similarity.topk(k, dim=1).indices
    return (gallery_labels[top] == query_labels[:, None]).any(dim=1).float().mean().item()


def leave_one_out_recall(similarity, labels, k):
    others = similarity.clone()
    others.fill_diagonal_(float("-inf"))
    return recall_at_k(others, labels, labels, k)


def fuse_layers(embeddings, weights):
    parts = [embeddings[n] / embeddings[n].norm(dim=1, keepdim=True) * weights[n] ** 0.5 for n in embeddings]
    fused = torch.cat(parts, dim=1)
    return fused / fused.norm(dim=1, keepdim=True)


def test_solutions_pass(capsys):
    check_cosine_matrix(cosine_matrix)
    check_recall_at_k(recall_at_k)
    check_leave_one_out_recall(leave_one_out_recall)
    check_fuse_layers(fuse_layers)
    assert capsys.readouterr().out.count("✓") == 4


def test_other_right_answers_pass(capsys):
    """Correct answers written differently are accepted."""
    check_cosine_matrix(lambda a, b: torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T)
    check_cosine_matrix(lambda a, b: fl.cosine_similarity(a, b).double())
    check_recall_at_k(lambda s, q, g, k: fl.recall_at_k(s, q, g, k))
    check_recall_at_k(lambda s, q, g, k: np.float64(recall_at_k(s, q, g, k)))          # numpy scalar
    check_recall_at_k(lambda s, q, g, k: (g[s.argsort(dim=1, descending=True)[:, :k]] == q[:, None])
                      .any(1).float().mean())                                             # 0-dim tensor

    def loo_drop_first(s, labels, k):  # self is the unique maximum of a cosine row: drop it
        top = s.topk(k + 1, dim=1).indices[:, 1:]
        return (labels[top] == labels[:, None]).any(1).float().mean().item()
    check_leave_one_out_recall(loo_drop_first)
    check_fuse_layers(lambda e, w: fl.fuse(e, w))
    assert capsys.readouterr().out.count("✓") == 7


@pytest.mark.parametrize("check", [check_cosine_matrix, check_recall_at_k, check_leave_one_out_recall,
                                   check_fuse_layers])
def test_skeleton_fails(check):
    fails(check, SKELETON, "returned None")


# --- cosine_matrix ------------------------------------------------------------------------------

def test_cosine_wrong_answers():
    fails(check_cosine_matrix, lambda a, b: a @ b.T, "did you forget to normalise")
    fails(check_cosine_matrix,
          lambda a, b: (a / a.norm(dim=0, keepdim=True)) @ (b / b.norm(dim=0, keepdim=True)).T,
          "columns were normalised instead of the rows")
    fails(check_cosine_matrix, lambda a, b: (a / a.norm(dim=1, keepdim=True)) @ b.T, "only one of a and b")
    fails(check_cosine_matrix, lambda a, b: cosine_matrix(b, a), "(M, N)")
    fails(check_cosine_matrix, lambda a, b: cosine_matrix(a, b) / a.shape[1], "divided by D")
    fails(check_cosine_matrix, lambda a, b: a.norm() * cosine_matrix(a, b), "outside [-1, 1]")


def test_cosine_malformed_returns():
    fails(check_cosine_matrix, lambda a, b: cosine_matrix(a, b).tolist(), "torch.Tensor")
    fails(check_cosine_matrix, lambda a, b: cosine_matrix(a, b).flatten(), "shape")
    fails(check_cosine_matrix, lambda a, b: cosine_matrix(a, a), "shape")


# --- recall_at_k --------------------------------------------------------------------------------

def test_recall_wrong_answers():
    def off_by_one(s, q, g, k):
        return recall_at_k(s, q, g, min(k + 1, s.shape[1]))

    def k_minus_one(s, q, g, k):
        top = s.topk(k - 1, dim=1).indices
        return (g[top] == q[:, None]).any(1).float().mean().item()

    def ascending(s, q, g, k):
        top = s.argsort(dim=1)[:, :k]
        return (g[top] == q[:, None]).any(1).float().mean().item()

    def all_match(s, q, g, k):
        return (g[s.topk(k, dim=1).indices] == q[:, None]).all(1).float().mean().item()

    def precision(s, q, g, k):
        return (g[s.topk(k, dim=1).indices] == q[:, None]).float().mean().item()

    def count(s, q, g, k):
        return int((g[s.topk(k, dim=1).indices] == q[:, None]).any(1).sum())

    def wrong_axis(s, q, g, k):  # ranks the queries for every gallery item
        top = s.topk(k, dim=0).indices
        return (q[top] == g[None, :]).any(0).float().mean().item()

    fails(check_recall_at_k, off_by_one, "off by one")
    fails(check_recall_at_k, k_minus_one, "off by one")
    fails(check_recall_at_k, ascending, "LEAST similar")
    fails(check_recall_at_k, all_match, "at least ONE")
    fails(check_recall_at_k, precision, "precision@k")
    fails(check_recall_at_k, count, "not their count")
    fails(check_recall_at_k, wrong_axis, "expected")


def test_recall_malformed_returns():
    fails(check_recall_at_k, lambda s, q, g, k: (g[s.topk(k, dim=1).indices] == q[:, None]).any(1), "one number")
    fails(check_recall_at_k, lambda s, q, g, k: [recall_at_k(s, q, g, k)], "list")
    fails(check_recall_at_k, lambda s, q, g, k: True, "bool")


# --- leave_one_out_recall ---------------------------------------------------------------------

def test_leave_one_out_wrong_answers():
    def counts_itself(s, labels, k):
        return recall_at_k(s, labels, labels, k)

    def off_by_one(s, labels, k):
        return leave_one_out_recall(s, labels, k + 1)

    def drop_first_of_k(s, labels, k):  # removes self but then looks at k - 1 others
        top = s.topk(k, dim=1).indices[:, 1:]
        return (labels[top] == labels[:, None]).any(1).float().mean().item()

    def in_place(s, labels, k):
        s.fill_diagonal_(float("-inf"))
        return recall_at_k(s, labels, labels, k)

    def diagonal_zero_only_first_row(s, labels, k):  # a half-done exclusion
        s = s.clone()
        s[0, 0] = float("-inf")
        return recall_at_k(s, labels, labels, k)

    fails(check_leave_one_out_recall, counts_itself, "counts itself", "-inf")
    fails(check_leave_one_out_recall, off_by_one, "off by one")
    fails(check_leave_one_out_recall, drop_first_of_k, "off by one")
    fails(check_leave_one_out_recall, in_place, "clone")
    fails(check_leave_one_out_recall, diagonal_zero_only_first_row, "expected")


def test_leave_one_out_malformed_returns():
    fails(check_leave_one_out_recall, lambda s, labels, k: "0.5", "str")
    fails(check_leave_one_out_recall, lambda s, labels, k: torch.ones(3), "shape")


# --- fuse_layers --------------------------------------------------------------------------------

def test_fuse_wrong_answers():
    def raw_concat(e, w):
        f = torch.cat([e[n] * w[n] ** 0.5 for n in e], dim=1)
        return f / f.norm(dim=1, keepdim=True)

    def columns(e, w):
        f = torch.cat([e[n] / e[n].norm(dim=0, keepdim=True) * w[n] ** 0.5 for n in e], dim=1)
        return f / f.norm(dim=1, keepdim=True)

    def weight_not_sqrt(e, w):
        f = torch.cat([e[n] / e[n].norm(dim=1, keepdim=True) * w[n] for n in e], dim=1)
        return f / f.norm(dim=1, keepdim=True)

    def no_weights(e, w):
        return fuse_layers(e, {n: 1.0 for n in e})

    def no_final_norm(e, w):
        return torch.cat([e[n] / e[n].norm(dim=1, keepdim=True) * w[n] ** 0.5 for n in e], dim=1)

    def reversed_order(e, w):
        return fuse_layers(dict(reversed(list(e.items()))), w)

    def weighted_sum_of_raw(e, w):  # a sum cannot even be formed: different D
        return sum(w[n] * e[n] for n in e)

    fails(check_fuse_layers, raw_concat, "not normalised one by one")
    fails(check_fuse_layers, columns, "columns (dim=0)")
    fails(check_fuse_layers, weight_not_sqrt, "sqrt(w)")
    fails(check_fuse_layers, no_weights, "weights were ignored")
    fails(check_fuse_layers, no_final_norm, "normalise the concatenated vector")
    fails(check_fuse_layers, lambda e, w: torch.cat([e[n] * w[n] ** 0.5 for n in e], dim=1),
          "not unit length", "not normalised one by one")
    fails(check_fuse_layers, reversed_order, "order of the dictionary")
    fails(check_fuse_layers, weighted_sum_of_raw, "raised RuntimeError", "must match the size")  # the learner's bug


def test_fuse_malformed_returns():
    fails(check_fuse_layers, lambda e, w: fuse_layers(e, w).numpy(), "torch.Tensor")
    fails(check_fuse_layers, lambda e, w: fuse_layers(e, w)[:, :5], "shape")
    fails(check_fuse_layers, lambda e, w: {n: v for n, v in e.items()}, "torch.Tensor")


# --- more wrong answers, one per plausible mistake (counted in the report of issue 19) ----------

def _loo_fill(value):
    def loo(s, labels, k):
        others = s.clone()
        others.fill_diagonal_(value)
        return recall_at_k(others, labels, labels, k)
    return loo


WRONG = {
    "loo: diagonal 0": (check_leave_one_out_recall, _loo_fill(0.0), "not -inf"),
    "loo: minus the identity": (check_leave_one_out_recall, lambda s, l, k: recall_at_k(s - torch.eye(len(s)), l, l, k),
                                "not -inf"),
    "loo: times (1 - identity)": (check_leave_one_out_recall,
                                  lambda s, l, k: recall_at_k(s * (1 - torch.eye(len(s))), l, l, k), "not -inf"),
    "loo: self not removed": (check_leave_one_out_recall, lambda s, l, k: recall_at_k(s, l, l, k), "counts itself"),
    "loo: k + 1 others": (check_leave_one_out_recall, lambda s, l, k: leave_one_out_recall(s, l, k + 1), "k + 1"),
    "loo: in place": (check_leave_one_out_recall, lambda s, l, k: recall_at_k(s.fill_diagonal_(float("-inf")), l, l, k),
                      "work on a copy"),
    "recall: argmax for every k": (check_recall_at_k, lambda s, q, g, k: (g[s.argmax(1)] == q).float().mean(), ""),
    "recall: precision": (check_recall_at_k, lambda s, q, g, k: (g[s.topk(k, dim=1).indices] == q[:, None]).float().mean(),
                          "precision"),
    "recall: ascending": (check_recall_at_k, lambda s, q, g, k: (g[s.argsort(dim=1)[:, :k]] == q[:, None]).any(1).float().mean(),
                          "LEAST similar"),
    "cosine: global norms": (check_cosine_matrix, lambda a, b: a @ b.T / (a.norm() * b.norm()), ""),
    "cosine: norms not squared-rooted": (check_cosine_matrix,
                                         lambda a, b: a @ b.T / ((a ** 2).sum(1)[:, None] * (b ** 2).sum(1)[None]), ""),
    "fuse: no weights": (check_fuse_layers, lambda e, w: fuse_layers(e, {n: 1.0 for n in e}), "weights were ignored"),
    "cosine: rows normalised in place": (check_cosine_matrix, lambda a, b: a.div_(a.norm(dim=1, keepdim=True))
                                         @ b.div_(b.norm(dim=1, keepdim=True)).T, "in place"),
    "fuse: layers normalised in place": (check_fuse_layers, lambda e, w: fuse_layers({n: e[n].div_(e[n].norm(dim=1, keepdim=True))
                                         for n in e}, w), "in place"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
