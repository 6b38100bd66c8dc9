"""Checks for ``exercises/10_*.ipynb`` (feature distance (FID); notebook ``notebooks/10_*``).

The learner's functions take and return NumPy arrays (float64), like ``featlab.metrics``;
tensors and plain numbers are accepted as returns too.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import scipy.linalg
import torch

from ..metrics import feature_stats, frechet_distance_from_stats
from ..i18n import _
from ._common import ExerciseError, _ok, _pair, _scalar, learner_check
from ._common import _diagnose as diagnose
from ._common import _near as near

__all__ = ["check_mean_and_cov", "check_mean_term", "check_frechet_from_stats", "check_frechet_1d"]

_RTOL = 1e-6


# --- shared helpers ---------------------------------------------------------------------------

def _array(value, what: str) -> np.ndarray:
    """A NumPy array or tensor -> float64 array, else ExerciseError."""
    if value is None:
        raise ExerciseError(_("{what} is None: fill in the TODO (and return the value).").format(what=what))
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (np.generic, numbers.Number, list, tuple)):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError):
            pass
    if not isinstance(value, np.ndarray):
        raise ExerciseError(_("{what} should be a NumPy array; got {type_name}.").format(
                              what=what, type_name=type(value).__name__))
    if np.iscomplexobj(value):
        raise ExerciseError(_("{what} is complex; it should be real. Return the real part (.real).").format(
                              what=what))
    if not np.issubdtype(value.dtype, np.number):
        raise ExerciseError(_("{what} should hold numbers; got dtype {dtype}.").format(what=what, dtype=value.dtype))
    return value.astype(np.float64)


def _number(value, what: str) -> float:
    return _scalar(
        value, what, many_hint=_("Sum over the dimensions (or take the trace) until one number is left."),
        complex_hint=_("scipy.linalg.sqrtm returns a complex matrix when rounding gives it tiny imaginary "
                       "parts: take the real part of the square root (.real) before the trace."),
        nan_hint=_("If you used np.sqrt on a matrix: it takes the square root of each entry (NaN for negative "
                   "ones), not the matrix square root. Use scipy.linalg.sqrtm."))


def _near(got: float, want: float, scale: float = 1.0) -> bool:
    return near(got, want, _RTOL, 1e-9 * scale)


def _diagnose(got: float, want: float, wrong: list[tuple[str, float]], what: str, scale: float = 1.0) -> None:
    diagnose(got, want, wrong, what, _RTOL, 1e-9 * scale)


def _features(seed: int, n: int, dim: int) -> np.ndarray:
    """(n, dim) correlated features with a mean far from 0."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) + rng.normal(3.0, 1.0, size=dim)


def _spd(rng: np.random.Generator, dim: int) -> np.ndarray:
    m = rng.normal(size=(dim, dim))
    return m @ m.T + 0.5 * np.eye(dim)


def _stats_pair(seed: int, dim: int):
    """Two means and two well-conditioned covariances that do NOT commute (dim > 1)."""
    rng = np.random.default_rng(seed)
    cov_a, cov_b = _spd(rng, dim), _spd(rng, dim)
    mu_a, mu_b = rng.normal(size=dim), rng.normal(size=dim) + 1.0
    return mu_a, cov_a, mu_b, cov_b


# --- 1. mean and covariance -------------------------------------------------------------------

@learner_check
def check_mean_and_cov(mean_and_cov) -> None:
    """``mean_and_cov(features)``: (N, D) -> mean (D,) and unbiased covariance (D, D), like np.cov."""
    for n, dim, seed in [(7, 3, 100), (5, 4, 101)]:
        x = _features(seed, n, dim)
        out = mean_and_cov(x.copy())
        out = _pair(out, "mean_and_cov", "(mu, cov)")
        mu = _array(out[0], _("the mean (first return value)"))
        want_mu, want_cov = feature_stats(x)
        if mu.shape == (n,):
            raise ExerciseError(_("the mean has shape ({n},), one number per sample: average over the samples "
                                  "(axis=0, the rows) to get one number per dimension, shape (D,).").format(n=n))
        if mu.shape != (dim,):
            raise ExerciseError(_("the mean has shape {mu_shape}; expected (D,) = ({dim},): "
                                  "features.mean(axis=0).").format(mu_shape=mu.shape, dim=dim))
        if not np.allclose(mu, want_mu, rtol=_RTOL, atol=1e-9):
            raise ExerciseError(_("the mean is wrong (max error {err:.3g}): features.mean(axis=0).").format(
                                  err=np.abs(mu - want_mu).max()))
        cov = _array(out[1], _("the covariance (second return value)"))
        if cov.shape == (n, n):
            raise ExerciseError(_("the covariance is ({n}, {n}), samples × samples. np.cov treats each ROW as "
                                  "a variable unless you pass rowvar=False; here rows are samples, so use "
                                  "np.cov(features, rowvar=False) for a (D, D) matrix.").format(n=n))
        if cov.shape != (dim, dim):
            raise ExerciseError(_("the covariance has shape {cov_shape}; expected (D, D) = ({dim}, {dim}).").format(
                                  cov_shape=cov.shape, dim=dim))
        centred = x - want_mu
        wrong = [
            (_("the covariance is divided by N (biased). Divide by N - 1, as np.cov does by default "
               "(np.cov(..., bias=True) or ddof=0 divide by N)."), want_cov * (n - 1) / n),
            (_("the mean was not subtracted: the covariance is the average of (x - mu)(x - mu)^T, not of x x^T."), x.T @ x / (n - 1)),
            (_("the mean was not subtracted: the covariance is the average of (x - mu)(x - mu)^T, not of x x^T."), x.T @ x / n),
            (_("only the variances are there (a diagonal matrix). The covariance matrix has the covariances "
               "between dimensions off the diagonal too."), np.diag(np.diag(want_cov))),
            (_("that is the correlation matrix (ones on the diagonal). Return the covariance, np.cov(features, "
               "rowvar=False)."), np.corrcoef(x, rowvar=False)),
            (_("the mean was subtracted along the wrong axis: subtract the mean of each dimension (x - "
               "x.mean(axis=0))."), (x - x.mean(1, keepdims=True)).T @ (x - x.mean(1, keepdims=True)) / (n - 1)),
            (_("the sum of (x - mu)(x - mu)^T over the samples is not yet divided: divide by N - 1."),
             centred.T @ centred),
        ]
        if not np.allclose(cov, want_cov, rtol=_RTOL, atol=1e-9):
            for hint, value in wrong:
                if value.shape == cov.shape and np.allclose(cov, value, rtol=_RTOL, atol=1e-9):
                    raise ExerciseError(_("covariance of {n} samples in {dim}-D: {hint}").format(
                                          n=n, dim=dim, hint=hint))
            raise ExerciseError(_("the covariance of {n} samples in {dim}-D is wrong (max error {err:.3g}); "
                                  "expected np.cov(features, rowvar=False).").format(
                                          n=n, dim=dim, err=np.abs(cov - want_cov).max()))
    _ok(_("mean_and_cov: mean over the samples, unbiased (N - 1) covariance, equal to fl.feature_stats"))


# --- 2. the mean term -------------------------------------------------------------------------

@learner_check
def check_mean_term(mean_term) -> None:
    """``mean_term(mu_a, mu_b)``: (D,), (D,) -> ||mu_a - mu_b||^2, one number."""
    rng = np.random.default_rng(102)
    for dim in (5, 1):
        mu_a, mu_b = rng.normal(size=dim), rng.normal(size=dim) + 1.5
        diff = mu_a - mu_b
        got = _number(mean_term(mu_a.copy(), mu_b.copy()), "mean_term(mu_a, mu_b)")
        want = float((diff ** 2).sum())
        wrong = [(_("that is the distance ||mu_a - mu_b||, not its square. The Fréchet distance uses the "
                    "SQUARED distance: sum the squared differences and take no square root."),
                  float(np.sqrt(want))),
                 (_("the differences are not squared: sum (mu_a - mu_b)**2."), float(diff.sum())),
                 (_("the differences are not squared: sum (mu_a - mu_b)**2."), float(np.abs(diff).sum())),
                 (_("you averaged the squared differences over the dimensions; SUM them."), want / dim),
                 (_("the difference of the squares is not the square of the difference: use ((mu_a - "
                    "mu_b)**2).sum()."), float((mu_a ** 2 - mu_b ** 2).sum()))]
        if dim == 1:   # in 1-D, averaging over the dimensions changes nothing
            wrong = [(h, v) for h, v in wrong if not _near(v, want)]
        _diagnose(got, want, wrong, _("mean_term of two {dim}-D means").format(dim=dim))
    _ok(_("mean_term: ||mu_a - mu_b||^2, the squared distance between the means"))


# --- 3. the Fréchet distance from means and covariances --------------------------------------

def _sqrtm(a: np.ndarray) -> np.ndarray:
    return np.real(scipy.linalg.sqrtm(a))


@learner_check
def check_frechet_from_stats(frechet_from_stats) -> None:
    """``frechet_from_stats(mu_a, cov_a, mu_b, cov_b)`` -> ||mu_a - mu_b||^2 + Tr(Sa + Sb - 2 (Sa Sb)^1/2)."""
    mu_a, cov_a, mu_b, cov_b = _stats_pair(103, 4)
    what = _("frechet_from_stats on 4-D Gaussians with covariances that do not commute")
    args = (mu_a.copy(), cov_a.copy(), mu_b.copy(), cov_b.copy())
    got = _number(frechet_from_stats(*args), "frechet_from_stats(mu_a, cov_a, mu_b, cov_b)")
    want = frechet_distance_from_stats(mu_a, cov_a, mu_b, cov_b)
    m2 = float(((mu_a - mu_b) ** 2).sum())
    tr = float(np.trace(cov_a) + np.trace(cov_b))
    cross = float(np.trace(_sqrtm(cov_a @ cov_b)))
    scale = tr
    wrong = [
        (_("the square root is of the PRODUCT: Tr (Sa Sb)^1/2. sqrtm(cov_a) @ sqrtm(cov_b) is a different "
           "matrix unless the two covariances commute — and these do not. Use scipy.linalg.sqrtm(cov_a @ "
           "cov_b)."),
         m2 + tr - 2 * float(np.trace(_sqrtm(cov_a) @ _sqrtm(cov_b)))),
        (_("the factor 2 is missing: the cross term is -2 Tr (Sa Sb)^1/2."), m2 + tr - cross),
        (_("the sign of the cross term: it is MINUS 2 Tr (Sa Sb)^1/2."), m2 + tr + 2 * cross),
        (_("the mean term is not squared: use ||mu_a - mu_b||^2 (the sum of squared differences, no square "
           "root)."), math.sqrt(m2) + tr - 2 * cross),
        (_("the mean term ||mu_a - mu_b||^2 is missing."), tr - 2 * cross),
        (_("you returned the square root of the total. The Fréchet distance (and FID) is the SQUARED distance "
           "d^2: take no square root at the end."), math.sqrt(want)),
        (_("cov_a * cov_b multiplies entry by entry; the matrix product is cov_a @ cov_b."),
         m2 + tr - 2 * float(np.trace(_sqrtm(cov_a * cov_b)))),
        (_("the square root is of the matrix, not of its trace: Tr sqrtm(cov_a @ cov_b), not sqrt(Tr(cov_a @ "
           "cov_b))."), m2 + tr - 2 * math.sqrt(float(np.trace(cov_a @ cov_b)))),
        (_("you summed all entries of the matrix; take its TRACE (the sum of the diagonal, np.trace)."),
         m2 + float((cov_a + cov_b - 2 * _sqrtm(cov_a @ cov_b)).sum())),
    ]
    with np.errstate(invalid="ignore"):
        elementwise = m2 + tr - 2 * float(np.trace(np.sqrt(cov_a @ cov_b)))
    if math.isfinite(elementwise):
        wrong.append((_("np.sqrt takes the square root of each entry, not the matrix square root: use "
                        "scipy.linalg.sqrtm."), elementwise))
    _diagnose(got, want, wrong, what, scale)

    got = _number(frechet_from_stats(mu_a.copy(), cov_a.copy(), mu_a.copy(), cov_a.copy()),
                  _("frechet_from_stats of a Gaussian with itself"))
    if abs(got) > 1e-6 * tr:
        hint = (_(" The factor 2 is missing: Tr(S + S - 2 S) = 0, but Tr(S + S - S) = Tr S.")
                if _near(got, float(np.trace(cov_a)), tr) else "")
        raise ExerciseError(_("the distance of a Gaussian to itself should be 0; got {got:.6g}.{hint}").format(
                              got=got, hint=hint))

    rng = np.random.default_rng(104)
    for __ in range(2):                                       # 1-D: 1x1 covariances, closed form
        m_a, m_b, s_a, s_b = rng.normal(), rng.normal() + 1, rng.uniform(0.5, 2), rng.uniform(0.5, 2)
        got = _number(frechet_from_stats(np.array([m_a]), np.array([[s_a ** 2]]),
                                         np.array([m_b]), np.array([[s_b ** 2]])),
                      _("frechet_from_stats with 1-D inputs (shapes (1,) and (1, 1))"))
        _diagnose(got, (m_a - m_b) ** 2 + (s_a - s_b) ** 2, [],
                  _("frechet_from_stats in 1-D (it should equal (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2)"))
    _ok(_("frechet_from_stats equals fl.frechet_distance_from_stats (non-commuting covariances, identical "
          "Gaussians, 1-D)"))


# --- 4. the 1-D closed form -------------------------------------------------------------------

@learner_check
def check_frechet_1d(frechet_1d) -> None:
    """``frechet_1d(mu_a, sigma_a, mu_b, sigma_b)`` (sigma = standard deviation) -> (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2."""
    for mu_a, s_a, mu_b, s_b in [(1.5, 2.0, -0.5, 0.5), (-1.0, 1.0, 2.0, 3.0), (0.3, 1.2, 0.3, 1.2)]:
        got = _number(frechet_1d(mu_a, s_a, mu_b, s_b), f"frechet_1d({mu_a}, {s_a}, {mu_b}, {s_b})")
        dm, ds = mu_a - mu_b, s_a - s_b
        want = dm ** 2 + ds ** 2
        wrong = [
            (_("sigma_a and sigma_b are standard deviations: the closed form is (sigma_a - sigma_b)^2, not "
               "(sigma_a^2 - sigma_b^2)^2."), dm ** 2 + (s_a ** 2 - s_b ** 2) ** 2),
            (_("the mean difference is not squared: (mu_a - mu_b)^2."), dm + ds ** 2),
            (_("the mean difference is not squared: (mu_a - mu_b)^2."), abs(dm) + ds ** 2),
            (_("the difference of the standard deviations is not squared: (sigma_a - sigma_b)^2."),
             dm ** 2 + abs(ds)),
            (_("the difference of the standard deviations is not squared: (sigma_a - sigma_b)^2."),
             dm ** 2 + ds),
            (_("you returned the square root of the total; the Fréchet distance here is the SQUARED distance, "
               "with no square root."), math.sqrt(want)),
            (_("the cross term is missing: sigma_a^2 + sigma_b^2 - 2 sigma_a sigma_b = (sigma_a - sigma_b)^2."),
             dm ** 2 + s_a ** 2 + s_b ** 2),
            (_("the factor 2 of the cross term is missing: sigma_a^2 + sigma_b^2 - 2 sigma_a sigma_b."),
             dm ** 2 + s_a ** 2 + s_b ** 2 - s_a * s_b),
        ]
        _diagnose(got, want, [(h, v) for h, v in wrong if not _near(v, want)],
                  f"frechet_1d(mu_a={mu_a}, sigma_a={s_a}, mu_b={mu_b}, sigma_b={s_b})")
    _ok(_("frechet_1d: (mu_a - mu_b)^2 + (sigma_a - sigma_b)^2"))
