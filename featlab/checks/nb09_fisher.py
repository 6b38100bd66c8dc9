"""Checks for ``exercises/09_*.ipynb`` (Fisher criterion; notebook ``notebooks/09_*``)."""
from __future__ import annotations

import itertools
import math

import torch

from ..metrics import fisher_criterion
from ..i18n import N_, _
from ._common import ExerciseError, _close, _ok, _pair, _scalar, _tensor, learner_check
from ._common import _diagnose as diagnose
from ._common import _near as near

__all__ = ["check_mean_and_spread", "check_fisher_j", "check_fisher_j_multi", "check_projection"]

_RTOL = 1e-5


def _number(value, what: str, nan_hint: str = "") -> float:
    nan_hint = nan_hint or _("check for a division by zero or an empty class.")
    return _scalar(value, what, nan_hint=nan_hint, many_hint=_("Sum the squared differences over the "
                                                               "dimensions (and average over the rows) until "
                                                               "one number is left."))


def _near(got: float, want: float) -> bool:
    return near(got, want, _RTOL, 1e-12)


def _diagnose(got: float, want: float, wrong: list[tuple[str, float]], what: str) -> None:
    diagnose(got, want, wrong, what, _RTOL, 1e-12)


def _spread(x: torch.Tensor) -> float:
    return float(((x - x.mean(0)) ** 2).sum(1).mean())


def _classes_2d(seed: int, sizes, dim: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for k, n in enumerate(sizes):
        scale = torch.rand(dim, generator=g, dtype=torch.float64) * 2 + 0.5
        shift = torch.randn(dim, generator=g, dtype=torch.float64) * (k + 1)
        out.append(torch.randn(n, dim, generator=g, dtype=torch.float64) * scale + shift)
    return out


# --- 1. mean and spread of one class ----------------------------------------------------------

_SPREAD_HINTS = {
    "n-1": N_("you divided by n - 1 (torch.var's default, or .std()). Here sigma^2 is the MEAN squared "
              "distance to the class mean: divide by n (torch.var(..., correction=0), or .mean())."),
    "std": N_("this is a standard deviation or a plain distance (a square root). sigma^2 is the mean "
              "SQUARED distance: square ||x_i - mu|| before averaging, and take no square root."),
    "avg_dims": N_("you averaged the per-dimension variances. sigma^2 is their SUM over the D dimensions "
                   "(the squared length of x_i - mu), averaged over the n rows only."),
    "sum_rows": N_("you summed over the rows. Average the squared distances over the n rows."),
}


@learner_check
def check_mean_and_spread(mean_and_spread) -> None:
    """``mean_and_spread(x)``: (n, D) -> (class mean (D,), sigma^2 = mean of ||x_i - mu||^2)."""
    for n, dim, seed in [(5, 3, 90), (7, 1, 91)]:
        x = _classes_2d(seed, [n], dim)[0]
        out = mean_and_spread(x.clone())
        out = _pair(out, "mean_and_spread", "(mu, sigma2)")
        mu = _tensor(out[0], _("mean_and_spread(x)[0] (the mean)"))
        want_mu = x.mean(dim=0)
        if tuple(mu.shape) == (n,) and n != dim:
            raise ExerciseError(_("the mean has shape ({n},), one number per row: average over the rows "
                                  "(dim=0), not over the dimensions, to get a (D,) vector.").format(n=n))
        if tuple(mu.shape) != (dim,):
            raise ExerciseError(_("the mean has shape {mu_shape}; expected (D,) = ({dim},): x.mean(dim=0).").format(
                                  mu_shape=tuple(mu.shape), dim=dim))
        _close(mu, want_mu, _("the class mean"))
        got = _number(out[1], "mean_and_spread(x)[1] (sigma^2)")
        want = _spread(x)
        per_dim_var = ((x - want_mu) ** 2).mean(0)                      # (D,), divide by n
        wrong = [(_(_SPREAD_HINTS["n-1"]), want * n / (n - 1)),
                 (_(_SPREAD_HINTS["std"]), math.sqrt(want)),
                 (_(_SPREAD_HINTS["std"]), float((x - want_mu).norm(dim=1).mean())),
                 (_(_SPREAD_HINTS["std"]), float(per_dim_var.sqrt().sum())),
                 (_(_SPREAD_HINTS["avg_dims"]), want / dim),
                 (_(_SPREAD_HINTS["avg_dims"]), want / dim * n / (n - 1)),
                 (_(_SPREAD_HINTS["sum_rows"]), want * n)]
        _diagnose(got, want, wrong, _("sigma^2 of a class of {n} vectors in {dim}-D").format(n=n, dim=dim))
    _ok(_("mean_and_spread: mu = mean of the rows, sigma^2 = mean squared distance to mu"))


# --- 2. J of two classes ----------------------------------------------------------------------

@learner_check
def check_fisher_j(fisher_j) -> None:
    """``fisher_j(a, b)``: classes (na, D), (nb, D) -> ||mu_a - mu_b||^2 / (sigma_a^2 + sigma_b^2)."""
    for sizes, dim, seed in [((6, 9), 4, 92), ((8, 5), 1, 93)]:
        a, b = _classes_2d(seed, sizes, dim)
        got = _number(fisher_j(a.clone(), b.clone()), "fisher_j(a, b)")
        want = fisher_criterion(torch.cat([a, b]), [0] * len(a) + [1] * len(b))
        dist2 = float(((a.mean(0) - b.mean(0)) ** 2).sum())
        sa, sb = _spread(a), _spread(b)
        na, nb = len(a), len(b)
        wrong = [
            (_("the distance between the means is not squared: use ||mu_a - mu_b||^2, the sum of the squared "
               "differences, without a square root."), math.sqrt(dist2) / (sa + sb)),
            (_("the denominator uses standard deviations (square roots); J divides by the sum of the two "
               "sigma^2."), dist2 / (math.sqrt(sa) + math.sqrt(sb))),
            (_("the distance between the means is not squared and the denominator uses standard deviations; J "
               "= ||mu_a - mu_b||^2 / (sigma_a^2 + sigma_b^2)."),
             math.sqrt(dist2) / (math.sqrt(sa) + math.sqrt(sb))),
            (_("the spreads were divided by n - 1; sigma^2 is the MEAN squared distance (divide by n)."),
             dist2 / (sa * na / (na - 1) + sb * nb / (nb - 1))),
            (_("the spreads are per-dimension variances averaged over the dimensions; sum them over the "
               "dimensions instead (sigma^2 = mean of ||x_i - mu||^2)."), dist2 / ((sa + sb) / dim)),
            (_("you averaged the two spreads; J divides by their SUM sigma_a^2 + sigma_b^2."),
             dist2 / ((sa + sb) / 2)),
            (_("the spread is that of all the vectors together around one common mean; use each class's spread "
               "around its OWN mean."), dist2 / _spread(torch.cat([a, b]))),
        ]
        if dim == 1:   # in 1-D, averaging over the dimensions changes nothing
            wrong = [(h, v) for h, v in wrong if not _near(v, want)]
        _diagnose(got, want, wrong, _("J of classes of {n_a} and {n_b} vectors in {dim}-D").format(
                                      n_a=sizes[0], n_b=sizes[1], dim=dim))
    _ok(_("fisher_j equals fl.fisher_criterion for two classes"))


# --- 3. many classes --------------------------------------------------------------------------

def _pair_j(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.mean(0) - b.mean(0)) ** 2).sum()) / (_spread(a) + _spread(b))


@learner_check
def check_fisher_j_multi(fisher_j_multi) -> None:
    """``fisher_j_multi(features, labels)``: (N, D), (N,) integer labels -> mean of J over all pairs."""
    g = torch.Generator().manual_seed(94)
    groups = _classes_2d(95, [8, 10, 12], 3)
    values = [7, 2, 9]                                             # labels need not be 0 .. K-1
    x = torch.cat(groups)
    y = torch.cat([torch.full((len(c),), v) for c, v in zip(groups, values)])
    order = torch.randperm(len(x), generator=g)                    # classes are not in blocks
    x, y = x[order], y[order]
    empty = (_("an empty class gives a mean of nothing. The labels here are 2, 7 and 9: loop over the labels "
               "that occur (torch.unique(labels)), not over range(K)."))
    got = _number(fisher_j_multi(x.clone(), y.clone()), "fisher_j_multi(features, labels)", empty)
    want = fisher_criterion(x, y)
    pair_values = [_pair_j(a, b) for a, b in itertools.combinations(groups, 2)]
    rest = [_pair_j(groups[k], torch.cat([c for m, c in enumerate(groups) if m != k])) for k in range(3)]
    self_pair = (_("a class was paired with itself (J = 0): use each pair of DIFFERENT classes once "
                   "(itertools.combinations)."))
    wrong = [(_("you summed J over the pairs; take the MEAN over the pairs."), sum(pair_values)),
             (self_pair, sum(pair_values) / 6),
             (self_pair, 2 * sum(pair_values) / 9),
             (_("you compared each class with all the other classes together (one against the rest); compare "
                "pairs of classes."), sum(rest) / 3)]
    _diagnose(got, want, wrong, _("J of three classes (labels 2, 7 and 9, shuffled)"))
    two = (y == 2) | (y == 9)
    got2 = _number(fisher_j_multi(x[two].clone(), y[two].clone()), _("fisher_j_multi with two classes"))
    _diagnose(got2, fisher_criterion(x[two], y[two]), [], _("J of two classes (labels 2 and 9)"))
    _ok(_("fisher_j_multi: the mean of J over all pairs of classes, equal to fl.fisher_criterion"))


# --- 4. projection ----------------------------------------------------------------------------

@learner_check
def check_projection(project) -> None:
    """``project(features, w)``: (N, D), (D,) -> (N,) coordinates along the unit vector w / ||w||."""
    g = torch.Generator().manual_seed(96)
    x = torch.randn(7, 4, generator=g, dtype=torch.float64)
    w = torch.tensor([2.0, -1.0, 0.5, 2.5], dtype=torch.float64)          # length 3.39, not 1
    got = _tensor(project(x.clone(), w.clone()), "project(features, w)")
    want = x @ w / w.norm()
    if tuple(got.shape) == (7, 4):
        raise ExerciseError(_("project returns (N, D): you multiplied by w element by element; also sum over "
                              "the D dimensions (a dot product, x @ w) to get one number per row."))
    if tuple(got.shape) == (7, 1):
        raise ExerciseError(_("project returns (N, 1); return a flat (N,) vector (x @ w, not x @ w[:, None])."))
    if tuple(got.shape) != (7,):
        raise ExerciseError(_("project returns shape {got_shape}; expected (N,) = (7,).").format(
                              got_shape=tuple(got.shape)))
    if torch.allclose(got.double().cpu(), x @ w, rtol=1e-6):
        raise ExerciseError(_("the projections are x @ w with w of length 3.39: divide by ||w|| (project onto "
                              "the UNIT vector w / ||w||)."))
    if torch.allclose(got.double().cpu(), x @ w / w.norm() ** 2, rtol=1e-6):
        raise ExerciseError(_("you divided by ||w||^2; the coordinate along the unit vector w / ||w|| is x @ w "
                              "/ ||w||."))
    _close(got, want, "project(features, w)")
    _ok(_("project: coordinates along the unit vector w / ||w||"))
