"""Numbers for sets of feature vectors: the Fisher criterion and direction, the Fréchet distance.

Fisher: ``notebooks/09_fisher_criterion.ipynb``. Fréchet distance (FID): ``notebooks/10_feature_distance.ipynb``.
Inputs are (N, D) arrays or tensors; the arithmetic is float64 NumPy.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import torch

__all__ = ["fisher_criterion", "fisher_direction", "feature_stats", "frechet_distance",
           "frechet_distance_from_stats"]


def _as_2d(x, what: str = "features") -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{what} must be (N, D), one vector per row; got shape {a.shape}. "
                         "Pool maps first (fl.embed or .mean(dim=(2, 3))).")
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contain NaN or inf.")
    return a


def _classes(features, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = _as_2d(features)
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if y.shape != (len(x),):
        raise ValueError(f"labels must be ({len(x)},), one per row of features; got shape {y.shape}.")
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"need at least two classes; got {classes.tolist()}.")
    return x, y, classes


# --- Fisher criterion ------------------------------------------------------------------------

def _pair_j(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    var_a = ((a - mu_a) ** 2).sum(1).mean()                # mean squared distance to the mean
    var_b = ((b - mu_b) ** 2).sum(1).mean()
    between = ((mu_a - mu_b) ** 2).sum()
    if var_a + var_b == 0:
        return float("inf") if between > 0 else 0.0
    return float(between / (var_a + var_b))


def fisher_criterion(features, labels) -> float:
    """Fisher's J = ‖μ1 − μ2‖² / (σ1² + σ2²) of features (N, D) with integer labels (N,).

    σk² is the mean squared distance of class k to its mean (the trace of its covariance).
    With more than two classes: the mean of J over all pairs of classes. Large J = classes far
    apart for their spread. Invariant to scaling (and rotating, shifting) all features together.
    """
    x, y, classes = _classes(features, labels)
    groups = [x[y == c] for c in classes]
    return float(np.mean([_pair_j(a, b) for a, b in itertools.combinations(groups, 2)]))


def fisher_direction(features, labels, ridge: float | None = None):
    """Two classes: the unit vector w ∝ S_W⁻¹ (μ1 − μ0) along which they separate best.

    S_W is the within-class scatter Σ_k Σ_{i∈k} (x_i − μ_k)(x_i − μ_k)ᵀ, (D, D). When S_W is
    singular (fewer samples than dimensions, or constant features) it cannot be inverted:
    then a small ridge ``1e-6 · trace(S_W)/D`` is added to its diagonal (``ridge=`` sets it,
    as a multiple of trace(S_W)/D). With N ≤ D such a direction separates the points it was
    fitted on almost perfectly whatever the data: judge it on held-out points, and try a larger
    ``ridge`` (notebook 09 measures both). S_W weights each class by its size, as LDA does.
    The sign makes w point from class 0's mean to class 1's (classes in sorted order).
    Returns (D,) float64, a tensor if ``features`` was one.
    """
    x, y, classes = _classes(features, labels)
    if len(classes) != 2:
        raise ValueError(f"fisher_direction needs exactly two classes; got {len(classes)}: {classes.tolist()}.")
    a, b = x[y == classes[0]], x[y == classes[1]]
    diff = b.mean(0) - a.mean(0)
    sw = (a - a.mean(0)).T @ (a - a.mean(0)) + (b - b.mean(0)).T @ (b - b.mean(0))
    d = sw.shape[0]
    scale = np.trace(sw) / d if np.trace(sw) > 0 else 1.0
    if ridge is None:
        ridge = 0.0 if np.linalg.matrix_rank(sw) == d else 1e-6
    w = np.linalg.solve(sw + ridge * scale * np.eye(d), diff)
    w /= np.linalg.norm(w)
    if w @ diff < 0:
        w = -w
    return torch.from_numpy(w) if isinstance(features, torch.Tensor) else w


# --- Fréchet distance ------------------------------------------------------------------------

def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) -> mean (D,) and covariance (D, D) (unbiased, like ``np.cov``), float64."""
    x = _as_2d(features)
    if len(x) < 2:
        raise ValueError(f"need at least 2 vectors for a covariance; got {len(x)}.")
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    return (vecs * np.sqrt(vals.clip(min=0))) @ vecs.T


def frechet_distance_from_stats(mu_a, cov_a, mu_b, cov_b) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa Σb)^{1/2}) between two Gaussians, float64.

    Tr (Σa Σb)^{1/2} is computed as Tr (Σa^{1/2} Σb Σa^{1/2})^{1/2} — the same eigenvalues, but
    of a symmetric matrix — so it stays real and finite for near-singular covariances.
    """
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    cov_a, cov_b = np.atleast_2d(cov_a).astype(np.float64), np.atleast_2d(cov_b).astype(np.float64)
    d = mu_a.shape[0]
    if mu_b.shape != (d,) or cov_a.shape != (d, d) or cov_b.shape != (d, d):
        raise ValueError(f"shapes do not match: μ {mu_a.shape}, {mu_b.shape}; Σ {cov_a.shape}, {cov_b.shape}.")
    root_a = _sqrt_psd(cov_a)
    middle = np.linalg.eigvalsh((root_a @ cov_b @ root_a + (root_a @ cov_b @ root_a).T) / 2)
    tr_sqrt = np.sqrt(middle.clip(min=0)).sum()
    value = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_sqrt
    return float(max(value, 0.0))


def frechet_distance(features_a, features_b) -> float:
    """Fréchet distance between two sets of feature vectors (Na, D) and (Nb, D).

    Fits a Gaussian (mean, covariance) to each set; see :func:`frechet_distance_from_stats`.
    With as many dimensions as samples or more, a covariance has rank < D and the distance is
    dominated by estimation noise: a warning says how many samples are needed. FID proper is
    this distance on Inception-v3 pool features (2048-D); other networks give other numbers.
    """
    a, b = _as_2d(features_a, "features_a"), _as_2d(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"the two sets have different dimensions: {a.shape[1]} and {b.shape[1]}.")
    n, d = min(len(a), len(b)), a.shape[1]
    if n <= d:
        warnings.warn(f"only {n} samples for {d}-dimensional features: the covariance has rank at "
                      f"most {n - 1} < {d}, so the distance is mostly estimation noise. Use more than "
                      f"{d} samples per set (several times {d} is better), or a layer with fewer "
                      "channels, or PCA to fewer dimensions first.", UserWarning, stacklevel=2)
    return frechet_distance_from_stats(*feature_stats(a), *feature_stats(b))
