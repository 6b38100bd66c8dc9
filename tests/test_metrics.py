"""Fisher criterion/direction against scikit-learn's LDA; Fréchet distance against pytorch-fid."""
import warnings

import numpy as np
import pytest
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy.stats import ortho_group
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

import featlab as fl


def two_gaussians(n=2000, d=4, seed=0, corr=0.9, shift=(0.5, -0.5)):
    rng = np.random.default_rng(seed)
    cov = np.full((d, d), corr) + (1 - corr) * np.eye(d)
    a = rng.multivariate_normal(np.zeros(d), cov, n)
    b = rng.multivariate_normal(np.r_[shift, np.zeros(d - len(shift))], cov, n)
    return np.vstack([a, b]), np.r_[np.zeros(n, int), np.ones(n, int)]


# --- Fisher criterion --------------------------------------------------------------------------

def test_fisher_criterion_by_hand():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0]])
    # μ0=(1,0), σ0²=1; μ1=(10,2), σ1²=4; ‖Δμ‖²=81+4=85
    assert fl.fisher_criterion(x, [0, 0, 1, 1]) == pytest.approx(85 / 5)
    assert fl.fisher_criterion(torch.tensor(x), torch.tensor([0, 0, 1, 1])) == pytest.approx(17.0)


def test_fisher_criterion_is_invariant_to_scale_rotation_shift():
    x, y = two_gaussians(300, 6)
    j = fl.fisher_criterion(x, y)
    q = ortho_group.rvs(6, random_state=1)
    assert fl.fisher_criterion(x * 1e4, y) == pytest.approx(j)
    assert fl.fisher_criterion(x @ q + 5.0, y) == pytest.approx(j)
    assert fl.fisher_criterion(x[:, ::-1] * 0.001, y) == pytest.approx(j)


def test_fisher_criterion_multiclass_is_mean_over_pairs():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(90, 3)) + np.repeat(np.eye(3) * 3, 30, axis=0)
    y = np.repeat([5, 7, 9], 30)
    pairs = [fl.fisher_criterion(x[(y == a) | (y == b)], y[(y == a) | (y == b)])
             for a, b in [(5, 7), (5, 9), (7, 9)]]
    assert fl.fisher_criterion(x, y) == pytest.approx(np.mean(pairs))


def test_fisher_criterion_errors_and_edge_cases():
    with pytest.raises(ValueError, match="at least two classes"):
        fl.fisher_criterion(np.ones((4, 2)), [1, 1, 1, 1])
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        fl.fisher_criterion(np.ones((2, 3, 4)), [0, 1])
    with pytest.raises(ValueError, match="one per row"):
        fl.fisher_criterion(np.ones((4, 2)), [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        fl.fisher_criterion(np.array([[np.nan], [1.0]]), [0, 1])
    assert fl.fisher_criterion(np.array([[0.0], [0.0], [1.0], [1.0]]), [0, 0, 1, 1]) == float("inf")


# --- Fisher direction --------------------------------------------------------------------------

def test_fisher_direction_matches_sklearn_lda():
    x, y = two_gaussians(3000, 5, seed=3)
    w = fl.fisher_direction(x, y)
    ref = LinearDiscriminantAnalysis(solver="svd").fit(x, y).coef_[0]
    cos = w @ ref / np.linalg.norm(ref)
    assert abs(cos) > 0.999 and np.linalg.norm(w) == pytest.approx(1.0)
    assert cos > 0                                  # points from class 0 towards class 1
    wt = fl.fisher_direction(torch.tensor(x), torch.tensor(y))
    assert isinstance(wt, torch.Tensor) and np.allclose(wt.numpy(), w)


def test_fisher_direction_separates_better_than_mean_difference():
    x, y = two_gaussians(1000, 4, seed=4, corr=0.95, shift=(0.7,))  # along a high-variance axis
    w = fl.fisher_direction(x, y)
    md = x[y == 1].mean(0) - x[y == 0].mean(0)
    md /= np.linalg.norm(md)
    j_w, j_md = fl.fisher_criterion((x @ w)[:, None], y), fl.fisher_criterion((x @ md)[:, None], y)
    assert j_w > 5 * j_md


def test_fisher_direction_with_singular_scatter_uses_a_ridge():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(10, 50))                   # N < D: S_W has rank ≤ 8
    y = np.r_[np.zeros(5, int), np.ones(5, int)]
    x[y == 1] += 1.0
    w = fl.fisher_direction(x, y)
    assert np.isfinite(w).all() and np.linalg.norm(w) == pytest.approx(1.0)
    proj = x @ w
    assert proj[y == 1].min() > proj[y == 0].max()  # separates the training set
    with pytest.raises(ValueError, match="exactly two classes"):
        fl.fisher_direction(x, np.arange(10) % 3)


# --- Fréchet distance --------------------------------------------------------------------------

def test_identical_sets_give_zero():
    x = np.random.default_rng(6).normal(size=(500, 16))
    assert abs(fl.frechet_distance(x, x)) < 1e-6


def test_equal_covariances_give_squared_mean_difference():
    x = np.random.default_rng(7).normal(size=(400, 8))
    shift = np.linspace(-1, 1, 8)
    assert fl.frechet_distance(x, x + shift) == pytest.approx((shift ** 2).sum(), rel=1e-6)


def test_diagonal_covariances_closed_form():
    rng = np.random.default_rng(8)
    mu_a, mu_b = rng.normal(size=6), rng.normal(size=6)
    sa, sb = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    got = fl.frechet_distance_from_stats(mu_a, np.diag(sa ** 2), mu_b, np.diag(sb ** 2))
    assert got == pytest.approx(((mu_a - mu_b) ** 2).sum() + ((sa - sb) ** 2).sum(), rel=1e-10)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pytorch-fid's sqrtm(disp=False)
@pytest.mark.parametrize("d", [2, 16, 64])
def test_agrees_with_pytorch_fid(d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(4 * d + 50, d)) @ rng.normal(size=(d, d))
    b = rng.normal(size=(4 * d + 80, d)) @ rng.normal(size=(d, d)) * 0.7 + 0.3
    mu_a, cov_a = fl.feature_stats(a)
    mu_b, cov_b = fl.feature_stats(b)
    assert np.allclose(cov_a, np.cov(a, rowvar=False))
    want = calculate_frechet_distance(mu_a, cov_a, mu_b, cov_b)
    assert fl.frechet_distance(a, b) == pytest.approx(want, rel=1e-6)
    assert fl.frechet_distance(torch.tensor(a).float(), torch.tensor(b).float()) == pytest.approx(want, rel=1e-4)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_near_singular_covariances_stay_finite():
    rng = np.random.default_rng(9)
    basis = rng.normal(size=(3, 20))                # rank-3 data in 20 dimensions
    a, b = rng.normal(size=(200, 3)) @ basis, rng.normal(size=(200, 3)) @ basis * 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # enough samples: no warning
        got = fl.frechet_distance(a, b)
    assert np.isfinite(got) and got > 0
    # in the 3-D subspace: Σb = 2.25 Σa, so Tr(Σa + Σb - 2·1.5 Σa) = 0.25 Tr(Σa) (+ the mean term)
    mu_a, cov_a = fl.feature_stats(a)
    mu_b, cov_b = fl.feature_stats(b)
    assert got == pytest.approx(calculate_frechet_distance(mu_a, cov_a, mu_b, cov_b), rel=1e-5)


def test_too_few_samples_warns_with_the_count_needed():
    x = np.random.default_rng(10).normal(size=(40, 64))
    with pytest.warns(UserWarning, match="more than 64 samples"):
        fl.frechet_distance(x[:20], x[20:])
    with pytest.raises(ValueError, match="different dimensions"):
        fl.frechet_distance(x[:, :3], x[:, :4])
    with pytest.raises(ValueError, match="at least 2"):
        fl.feature_stats(x[:1])
