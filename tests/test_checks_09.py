"""Exercise 09 checks: the solution passes, the skeleton and plausible wrong answers fail."""
import itertools

import numpy as np
import pytest
import torch

import featlab as fl
from helpers import SKELETON, fails


# --- the solution, as in exercises/solutions/09_fisher_criterion.ipynb -----------------------

def mean_and_spread(x):
    mu = x.mean(dim=0)
    return mu, ((x - mu) ** 2).sum(dim=1).mean()


def fisher_j(a, b):
    (mu_a, s_a), (mu_b, s_b) = mean_and_spread(a), mean_and_spread(b)
    return ((mu_a - mu_b) ** 2).sum() / (s_a + s_b)


def fisher_j_multi(features, labels):
    groups = [features[labels == c] for c in torch.unique(labels)]
    return torch.stack([fisher_j(a, b) for a, b in itertools.combinations(groups, 2)]).mean()


def project(features, w):
    return features @ w / w.norm()


# --- 1. mean and spread -----------------------------------------------------------------------

def test_mean_and_spread_solution_and_skeleton(capsys):
    fl.checks.check_mean_and_spread(mean_and_spread)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_mean_and_spread, SKELETON, "returned None")


def test_mean_and_spread_alternatives_pass():
    fl.checks.check_mean_and_spread(lambda x: (x.mean(0), torch.var(x, dim=0, correction=0).sum()))
    fl.checks.check_mean_and_spread(lambda x: (x.mean(0), float(np.var(x.numpy(), axis=0).sum())))
    fl.checks.check_mean_and_spread(lambda x: [x.mean(0), ((x - x.mean(0)).norm(dim=1) ** 2).mean().item()])


@pytest.mark.parametrize("wrong, needle", [
    (lambda x: (x.mean(0), torch.var(x, dim=0).sum()), "n - 1"),                       # unbiased
    (lambda x: (x.mean(0), x.std(0, unbiased=False).sum()), "SQUARED"),                  # std per dim
    (lambda x: (x.mean(0), ((x - x.mean(0)) ** 2).sum(1).mean().sqrt()), "SQUARED"),     # std
    (lambda x: (x.mean(0), (x - x.mean(0)).norm(dim=1).mean()), "SQUARED"),             # distance, not squared
    (lambda x: (x.mean(0), torch.var(x, dim=0, correction=0).mean()), "SUM over the D"),  # averaged over dims
    (lambda x: (x.mean(0), torch.var(x, dim=0).mean()), "SUM over the D"),
    (lambda x: (x.mean(0), ((x - x.mean(0)) ** 2).sum()), "summed over the rows"),
])
def test_mean_and_spread_wrong_spread(wrong, needle):
    fails(fl.checks.check_mean_and_spread, wrong, needle)


def test_mean_and_spread_malformed():
    fails(fl.checks.check_mean_and_spread, lambda x: x.mean(0), "two things")
    fails(fl.checks.check_mean_and_spread, lambda x: (x.mean(1), torch.tensor(1.0)), "dim=0")
    fails(fl.checks.check_mean_and_spread, lambda x: (x.mean(), torch.tensor(1.0)), "(D,)")
    fails(fl.checks.check_mean_and_spread, lambda x: (x.mean(0).numpy(), 1.0), "torch.Tensor")
    fails(fl.checks.check_mean_and_spread, lambda x: (x.mean(0), None), "None")
    fails(fl.checks.check_mean_and_spread, lambda x: (x.mean(0), (x - x.mean(0)) ** 2), "one number")
    fails(fl.checks.check_mean_and_spread, lambda x: (x.mean(0), "1.0"), "a number")
    fails(fl.checks.check_mean_and_spread, lambda x: (x.mean(0) + 1, ((x - x.mean(0)) ** 2).sum(1).mean()),
          "class mean")


# --- 2. J of two classes ----------------------------------------------------------------------

def test_fisher_j_solution_and_skeleton(capsys):
    fl.checks.check_fisher_j(fisher_j)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_fisher_j, SKELETON, "returned None")
    fl.checks.check_fisher_j(lambda a, b: fl.fisher_criterion(torch.cat([a, b]), [0] * len(a) + [1] * len(b)))


def _j(a, b, dist=lambda d: (d ** 2).sum(), spread=lambda x: ((x - x.mean(0)) ** 2).sum(1).mean(),
       combine=lambda sa, sb: sa + sb):
    return dist(a.mean(0) - b.mean(0)) / combine(spread(a), spread(b))


@pytest.mark.parametrize("wrong, needle", [
    (lambda a, b: _j(a, b, dist=lambda d: d.norm()), "not squared"),
    (lambda a, b: _j(a, b, spread=lambda x: ((x - x.mean(0)) ** 2).sum(1).mean().sqrt()), "standard deviations"),
    (lambda a, b: _j(a, b, dist=lambda d: d.norm(), spread=lambda x: ((x - x.mean(0)) ** 2).sum(1).mean().sqrt()),
     "not squared and"),
    (lambda a, b: _j(a, b, spread=lambda x: torch.var(x, dim=0).sum()), "n - 1"),
    (lambda a, b: _j(a, b, spread=lambda x: torch.var(x, dim=0, correction=0).mean()), "averaged over the dimensions"),
    (lambda a, b: _j(a, b, combine=lambda sa, sb: (sa + sb) / 2), "SUM"),
    (lambda a, b: ((a.mean(0) - b.mean(0)) ** 2).sum() / mean_and_spread(torch.cat([a, b]))[1], "OWN mean"),
    (lambda a, b: _j(a, b) * 1.1, "expected"),
])
def test_fisher_j_wrong(wrong, needle):
    fails(fl.checks.check_fisher_j, wrong, needle)


def test_fisher_j_malformed():
    fails(fl.checks.check_fisher_j, lambda a, b: (a.mean(0) - b.mean(0)) ** 2, "one number")
    fails(fl.checks.check_fisher_j, lambda a, b: [1.0], "a number")
    fails(fl.checks.check_fisher_j, lambda a, b: float("nan"), "nan")


# --- 3. many classes --------------------------------------------------------------------------

def test_fisher_j_multi_solution_and_skeleton(capsys):
    fl.checks.check_fisher_j_multi(fisher_j_multi)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_fisher_j_multi, SKELETON, "returned None")
    fl.checks.check_fisher_j_multi(fl.fisher_criterion)


def _groups(x, y):
    return [x[y == c] for c in torch.unique(y)]


@pytest.mark.parametrize("wrong, needle", [
    (lambda x, y: sum(fisher_j(a, b) for a, b in itertools.combinations(_groups(x, y), 2)), "summed"),
    (lambda x, y: torch.stack([fisher_j(a, b) for a, b in
                               itertools.combinations_with_replacement(_groups(x, y), 2)]).mean(), "itself"),
    (lambda x, y: torch.stack([fisher_j(a, b) for a in _groups(x, y) for b in _groups(x, y)]).mean(), "itself"),
    (lambda x, y: torch.stack([fisher_j(x[y == c], x[y != c]) for c in torch.unique(y)]).mean(), "the rest"),
    (lambda x, y: torch.stack([fisher_j(x[y == c], x[y == c + 1]) for c in range(2)]).mean(), "torch.unique"),
    (lambda x, y: fisher_j(*_groups(x, y)[:2]), "expected"),                        # only the first pair
])
def test_fisher_j_multi_wrong(wrong, needle):
    fails(fl.checks.check_fisher_j_multi, wrong, needle)


# --- 4. projection ----------------------------------------------------------------------------

def test_projection_solution_and_skeleton(capsys):
    fl.checks.check_projection(project)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_projection, SKELETON, "returned None")
    fl.checks.check_projection(lambda x, w: (x * (w / w.norm())).sum(dim=1))


@pytest.mark.parametrize("wrong, needle", [
    (lambda x, w: x @ w, "divide by ||w||"),
    (lambda x, w: x @ w / w.norm() ** 2, "||w||^2"),
    (lambda x, w: x * w / w.norm(), "element by element"),
    (lambda x, w: (x @ w / w.norm())[:, None], "flat (N,)"),
    (lambda x, w: x.T @ x @ w, "shape"),
    (lambda x, w: (x @ w / w.norm()).numpy(), "torch.Tensor"),
    (lambda x, w: x @ w / w.sum(), "values differ"),
])
def test_projection_wrong(wrong, needle):
    fails(fl.checks.check_projection, wrong, needle)


def test_checks_are_exported():
    names = fl.checks.nb09_fisher.__all__
    assert set(names) == {"check_mean_and_spread", "check_fisher_j", "check_fisher_j_multi", "check_projection"}
    assert all(hasattr(fl.checks, n) for n in names)


# --- more wrong answers, one per plausible mistake (counted in the report of issue 19) ----------

def _pooled_j(a, b):
    (mu_a, s_a), (mu_b, s_b) = mean_and_spread(a), mean_and_spread(b)
    return ((mu_a - mu_b) ** 2).sum() / ((len(a) * s_a + len(b) * s_b) / (len(a) + len(b)))


WRONG = {
    "spread: torch.var of all entries": (fl.checks.check_mean_and_spread, lambda x: (x.mean(0), x.var()), ""),
    "spread: std summed": (fl.checks.check_mean_and_spread, lambda x: (x.mean(0), x.std(0, unbiased=False).sum()), "SQUARED"),
    "spread: n - 1": (fl.checks.check_mean_and_spread, lambda x: (x.mean(0), x.var(0).sum()), "n - 1"),
    "spread: mean over rows of the dims": (fl.checks.check_mean_and_spread, lambda x: (x.mean(1), x.var(0).sum()), "shape"),
    "j: pooled spread weighted by size": (fl.checks.check_fisher_j, _pooled_j, ""),
    "j: distance not squared": (fl.checks.check_fisher_j, lambda a, b: (a.mean(0) - b.mean(0)).norm()
                                / (mean_and_spread(a)[1] + mean_and_spread(b)[1]), "not squared"),
    "multi: range(K)": (fl.checks.check_fisher_j_multi, lambda f, y: torch.stack([fisher_j(f[y == i], f[y == j])
                        for i, j in itertools.combinations(range(int(y.max()) + 1), 2)]).mean(), ""),
    "multi: weighted by pair sizes": (fl.checks.check_fisher_j_multi, lambda f, y: sum(
        fisher_j(f[y == i], f[y == j]) * ((y == i).sum() + (y == j).sum())
        for i, j in itertools.combinations(torch.unique(y).tolist(), 2)) / (2 * len(y)), ""),
    "multi: sum": (fl.checks.check_fisher_j_multi, lambda f, y: torch.stack([fisher_j(f[y == i], f[y == j])
                   for i, j in itertools.combinations(torch.unique(y).tolist(), 2)]).sum(), "summed"),
    "project: no normalisation": (fl.checks.check_projection, lambda x, w: x @ w, "divide by ||w||"),
    "project: (N, 1)": (fl.checks.check_projection, lambda x, w: x @ w[:, None] / w.norm(), "(N, 1)"),
    "spread: x centred in place": (fl.checks.check_mean_and_spread, lambda x: (lambda mu: (mu, (x.sub_(mu) ** 2).sum(1).mean()))(
        x.mean(0)), "in place"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
