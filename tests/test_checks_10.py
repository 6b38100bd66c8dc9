"""Exercise 10 checks: the solution passes, the skeleton and plausible wrong answers fail."""
import numpy as np
import pytest
import scipy.linalg
import torch

import featlab as fl
from featlab.checks.nb10_frechet import _stats_pair
from helpers import SKELETON, fails


# --- the solution, as in exercises/solutions/10_feature_distance.ipynb ------------------------

def mean_and_cov(features):
    return features.mean(axis=0), np.cov(features, rowvar=False)


def mean_term(mu_a, mu_b):
    return float(((mu_a - mu_b) ** 2).sum())


def frechet_from_stats(mu_a, cov_a, mu_b, cov_b):
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return mean_term(mu_a, mu_b) + float(np.trace(cov_a + cov_b - 2 * root))


def frechet_1d(mu_a, sigma_a, mu_b, sigma_b):
    return (mu_a - mu_b) ** 2 + (sigma_a - sigma_b) ** 2


def test_the_check_covariances_do_not_commute():
    _, cov_a, _, cov_b = _stats_pair(103, 4)
    assert not np.allclose(cov_a @ cov_b, cov_b @ cov_a)
    tr_product = np.trace(scipy.linalg.sqrtm(cov_a @ cov_b)).real
    tr_roots = np.trace(scipy.linalg.sqrtm(cov_a) @ scipy.linalg.sqrtm(cov_b)).real
    assert abs(tr_product - tr_roots) > 1e-3 * tr_product


# --- 1. mean and covariance -------------------------------------------------------------------

def test_mean_and_cov_solution_and_skeleton(capsys):
    fl.checks.check_mean_and_cov(mean_and_cov)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_mean_and_cov, SKELETON, "returned None")


def test_mean_and_cov_alternatives_pass():
    fl.checks.check_mean_and_cov(lambda x: (list(x.mean(0)), np.cov(x, rowvar=False).tolist()))
    fl.checks.check_mean_and_cov(fl.feature_stats)
    fl.checks.check_mean_and_cov(lambda x: [x.mean(0), (x - x.mean(0)).T @ (x - x.mean(0)) / (len(x) - 1)])
    fl.checks.check_mean_and_cov(lambda x: (torch.from_numpy(x).mean(0), torch.cov(torch.from_numpy(x).T)))


@pytest.mark.parametrize("wrong, needle", [
    (lambda x: (x.mean(0), np.cov(x, rowvar=False, bias=True)), "N - 1"),            # biased
    (lambda x: (x.mean(0), x.T @ x / (len(x) - 1)), "not subtracted"),               # uncentred
    (lambda x: (x.mean(0), np.diag(x.var(0, ddof=1))), "diagonal"),                  # variances only
    (lambda x: (x.mean(0), np.corrcoef(x, rowvar=False)), "correlation"),
    (lambda x: (x.mean(0), (x - x.mean(0)).T @ (x - x.mean(0))), "not yet divided"),
    (lambda x: (x.mean(0), np.cov(x)), "rowvar=False"),                               # (N, N)
])
def test_mean_and_cov_wrong_cov(wrong, needle):
    fails(fl.checks.check_mean_and_cov, wrong, needle)


def test_mean_and_cov_malformed():
    fails(fl.checks.check_mean_and_cov, lambda x: x.mean(0), "two things")
    fails(fl.checks.check_mean_and_cov, lambda x: (x.mean(1), np.cov(x, rowvar=False)), "axis=0")
    fails(fl.checks.check_mean_and_cov, lambda x: (x.mean(), np.cov(x, rowvar=False)), "(D,)")
    fails(fl.checks.check_mean_and_cov, lambda x: (x.mean(0) + 1, np.cov(x, rowvar=False)), "mean is wrong")
    fails(fl.checks.check_mean_and_cov, lambda x: (x.mean(0), None), "None")
    fails(fl.checks.check_mean_and_cov, lambda x: (["a", "b", "c"], np.cov(x, rowvar=False)), "numbers")
    fails(fl.checks.check_mean_and_cov, lambda x: ({}, np.cov(x, rowvar=False)), "NumPy array")
    fails(fl.checks.check_mean_and_cov, lambda x: (x.mean(0), np.cov(x, rowvar=False)[0]), "(D, D)")
    fails(fl.checks.check_mean_and_cov, lambda x: (x.mean(0), np.cov(x, rowvar=False) + 0j), "complex")


# --- 2. the mean term -------------------------------------------------------------------------

def test_mean_term_solution_and_skeleton(capsys):
    fl.checks.check_mean_term(mean_term)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_mean_term, SKELETON, "returned None")
    fl.checks.check_mean_term(lambda a, b: np.linalg.norm(a - b) ** 2)             # a NumPy scalar
    fl.checks.check_mean_term(lambda a, b: torch.tensor(((a - b) ** 2).sum()))      # a 0-d tensor
    fl.checks.check_mean_term(lambda a, b: (a - b) @ (a - b))


@pytest.mark.parametrize("wrong, needle", [
    (lambda a, b: np.linalg.norm(a - b), "SQUARED"),                  # forgot to square
    (lambda a, b: (a - b).sum(), "not squared"),
    (lambda a, b: np.abs(a - b).sum(), "not squared"),
    (lambda a, b: ((a - b) ** 2).mean(), "SUM them"),
    (lambda a, b: (a ** 2 - b ** 2).sum(), "difference of the squares"),
])
def test_mean_term_wrong(wrong, needle):
    fails(fl.checks.check_mean_term, wrong, needle)


def test_mean_term_malformed():
    fails(fl.checks.check_mean_term, lambda a, b: (a - b) ** 2, "one number")
    fails(fl.checks.check_mean_term, lambda a, b: "1.0", "a number")
    fails(fl.checks.check_mean_term, lambda a, b: float("nan"), "nan")


# --- 3. the Fréchet distance from means and covariances --------------------------------------

def test_frechet_from_stats_solution_and_skeleton(capsys):
    fl.checks.check_frechet_from_stats(frechet_from_stats)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_frechet_from_stats, SKELETON, "returned None")
    fl.checks.check_frechet_from_stats(fl.frechet_distance_from_stats)


def _sq(a):
    return scipy.linalg.sqrtm(a).real


@pytest.mark.parametrize("wrong, needle", [
    # sqrt of each covariance instead of the product: equal only when they commute
    (lambda ma, ca, mb, cb: mean_term(ma, mb) + np.trace(ca + cb - 2 * _sq(ca) @ _sq(cb)), "PRODUCT"),
    # forgot the factor 2
    (lambda ma, ca, mb, cb: mean_term(ma, mb) + np.trace(ca + cb - _sq(ca @ cb)), "factor 2"),
    # forgot to square the mean difference
    (lambda ma, ca, mb, cb: np.linalg.norm(ma - mb) + np.trace(ca + cb - 2 * _sq(ca @ cb)), "not squared"),
    (lambda ma, ca, mb, cb: np.trace(ca + cb - 2 * _sq(ca @ cb)), "missing"),
    (lambda ma, ca, mb, cb: np.sqrt(frechet_from_stats(ma, ca, mb, cb)), "SQUARED"),
    (lambda ma, ca, mb, cb: mean_term(ma, mb) + np.trace(ca + cb - 2 * _sq(ca * cb)), "entry by entry"),
    (lambda ma, ca, mb, cb: mean_term(ma, mb) + np.trace(ca + cb) - 2 * np.sqrt(np.trace(ca @ cb)), "trace"),
    (lambda ma, ca, mb, cb: mean_term(ma, mb) + (ca + cb - 2 * _sq(ca @ cb)).sum(), "TRACE"),
    (lambda ma, ca, mb, cb: mean_term(ma, mb) + np.trace(ca + cb + 2 * _sq(ca @ cb)), "MINUS"),
    (lambda ma, ca, mb, cb: mean_term(ma, mb) + np.trace(ca + cb - 2 * np.sqrt(ca @ cb)), "np.sqrt"),
    # the complex result of sqrtm, returned as it is
    (lambda ma, ca, mb, cb: mean_term(ma, mb) + np.trace(ca + cb - 2 * (scipy.linalg.sqrtm(ca @ cb) + 1e-9j)),
     "real part"),
])
def test_frechet_from_stats_wrong(wrong, needle):
    fails(fl.checks.check_frechet_from_stats, wrong, needle)


def test_frechet_from_stats_wrong_only_off_zero():
    # right on non-commuting covariances by accident is impossible; a constant is caught by the self-test
    value = fl.frechet_distance_from_stats(*_stats_pair(103, 4))
    fails(fl.checks.check_frechet_from_stats, lambda *a: value, "itself")


def test_frechet_from_stats_malformed():
    fails(fl.checks.check_frechet_from_stats, lambda ma, ca, mb, cb: ca + cb, "one number")
    fails(fl.checks.check_frechet_from_stats, lambda *a: [1.0, 2.0], "one number")
    fails(fl.checks.check_frechet_from_stats, lambda *a: float("inf"), "inf")


# --- 4. the 1-D closed form -------------------------------------------------------------------

def test_frechet_1d_solution_and_skeleton(capsys):
    fl.checks.check_frechet_1d(frechet_1d)
    assert "✓" in capsys.readouterr().out
    fails(fl.checks.check_frechet_1d, SKELETON, "returned None")
    fl.checks.check_frechet_1d(lambda ma, sa, mb, sb: fl.frechet_distance_from_stats([ma], [[sa**2]], [mb], [[sb**2]]))


@pytest.mark.parametrize("wrong, needle", [
    (lambda ma, sa, mb, sb: (ma - mb) ** 2 + (sa**2 - sb**2) ** 2, "standard deviations"),   # variances
    (lambda ma, sa, mb, sb: (ma - mb) + (sa - sb) ** 2, "mean difference is not squared"),
    (lambda ma, sa, mb, sb: abs(ma - mb) + (sa - sb) ** 2, "mean difference is not squared"),
    (lambda ma, sa, mb, sb: (ma - mb) ** 2 + abs(sa - sb), "standard deviations is not squared"),
    (lambda ma, sa, mb, sb: ((ma - mb) ** 2 + (sa - sb) ** 2) ** 0.5, "square root"),
    (lambda ma, sa, mb, sb: (ma - mb) ** 2 + sa**2 + sb**2, "cross term"),
    (lambda ma, sa, mb, sb: (ma - mb) ** 2 + sa**2 + sb**2 - sa * sb, "factor 2"),
])
def test_frechet_1d_wrong(wrong, needle):
    fails(fl.checks.check_frechet_1d, wrong, needle)


def test_frechet_1d_malformed():
    fails(fl.checks.check_frechet_1d, lambda *a: np.zeros(2), "one number")
    fails(fl.checks.check_frechet_1d, lambda *a: complex(1, 1), "complex")


# --- more wrong answers, one per plausible mistake (counted in the report of issue 19) ----------

WRONG = {
    "cov: np.cov rows as variables": (fl.checks.check_mean_and_cov, lambda x: (x.mean(0), np.cov(x)), "rowvar=False"),
    "cov: biased": (fl.checks.check_mean_and_cov, lambda x: (x.mean(0), np.cov(x, rowvar=False, bias=True)), "divided by N"),
    "cov: torch.cov of the rows": (fl.checks.check_mean_and_cov,
                                   lambda x: (x.mean(0), torch.cov(torch.from_numpy(x)).numpy()), "rowvar=False"),
    "cov: mean over the samples' dims": (fl.checks.check_mean_and_cov, lambda x: (x.mean(1), np.cov(x, rowvar=False)), "per sample"),
    "fd: product of roots": (fl.checks.check_frechet_from_stats, lambda ma, ca, mb, cb: mean_term(ma, mb) + float(np.trace(
        ca + cb - 2 * scipy.linalg.sqrtm(ca).real @ scipy.linalg.sqrtm(cb).real)), "PRODUCT"),
    "fd: elementwise sqrt": (fl.checks.check_frechet_from_stats, lambda ma, ca, mb, cb: mean_term(ma, mb) + float(np.trace(
        ca + cb - 2 * np.sqrt(np.abs(ca @ cb)))), ""),
    "fd: complex kept": (fl.checks.check_frechet_from_stats, lambda ma, ca, mb, cb: mean_term(ma, mb) + np.trace(
        ca + cb - 2 * scipy.linalg.sqrtm(ca @ cb)) + 1e-3j, "complex"),
    "1d: sigma as variance": (fl.checks.check_frechet_1d, lambda ma, sa, mb, sb: (ma - mb) ** 2 + (sa ** 0.5 - sb ** 0.5) ** 2, ""),
    "1d: squares of sigma": (fl.checks.check_frechet_1d, lambda ma, sa, mb, sb: (ma - mb) ** 2 + (sa ** 2 - sb ** 2) ** 2,
                             "standard deviations"),
    "term: norm": (fl.checks.check_mean_term, lambda a, b: float(np.linalg.norm(a - b)), "not its square"),
    "cov: features centred in place": (fl.checks.check_mean_and_cov, lambda x: (lambda mu: (mu, np.cov(
        np.subtract(x, mu, out=x), rowvar=False)))(x.mean(0)), "in place"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
