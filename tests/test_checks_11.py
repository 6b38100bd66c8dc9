"""The checks of exercise 11 (classic features): the solution passes, the skeleton and plausible
wrong answers fail with a precise hint."""
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F

import featlab as fl
from helpers import SKELETON, fails

KX = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)


def sobel(gray):
    k = KX.to(gray.dtype)
    return fl.conv2d(gray, k[None, None], padding=1), fl.conv2d(gray, k.T[None, None], padding=1)


def magnitude_orientation(gx, gy):
    return torch.hypot(gx, gy), torch.remainder(torch.rad2deg(torch.atan2(gy, gx)), 180.0)


def cell_histogram(mag, theta, n_bins=9):
    b = torch.div(theta, 180.0 / n_bins, rounding_mode="floor").long().clamp(0, n_bins - 1)
    return torch.zeros(n_bins, dtype=mag.dtype).index_add_(0, b.flatten(), mag.flatten())


# --- sobel ---------------------------------------------------------------------------------------

def test_sobel_solution_passes(capsys):
    fl.checks.check_sobel(sobel)
    assert "✓" in capsys.readouterr().out


def test_sobel_skeleton_and_malformed_fail():
    fails(fl.checks.check_sobel, SKELETON, "None")
    fails(fl.checks.check_sobel, lambda g: sobel(g)[0], "two tensors")
    fails(fl.checks.check_sobel, lambda g: tuple(t.numpy() for t in sobel(g)), "torch.Tensor")


def test_sobel_true_convolution_sign_flip_fails():
    def flipped(g):      # scipy.ndimage.convolve flips the kernel: -gx, -gy
        a = g.numpy()
        gx = ndi.convolve(a, KX.numpy()[None, None], mode="constant")
        gy = ndi.convolve(a, KX.T.numpy()[None, None], mode="constant")
        return torch.from_numpy(gx), torch.from_numpy(gy)
    fails(fl.checks.check_sobel, flipped, "sign is flipped")


def test_sobel_swapped_and_transposed_fail():
    fails(fl.checks.check_sobel, lambda g: sobel(g)[::-1], "swapped")


def test_sobel_normalised_no_padding_reflect_fail():
    fails(fl.checks.check_sobel, lambda g: tuple(t / 4 for t in sobel(g)), "divided by 4")
    fails(fl.checks.check_sobel, lambda g: (fl.conv2d(g, KX[None, None]), fl.conv2d(g, KX.T[None, None])),
          "padding=1")
    def reflect(g):
        p = F.pad(g, (1, 1, 1, 1), mode="reflect")
        return fl.conv2d(p, KX[None, None]), fl.conv2d(p, KX.T[None, None])
    fails(fl.checks.check_sobel, reflect, "reflect padding")


def test_sobel_wrong_kernel_fails():
    k = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    fails(fl.checks.check_sobel, lambda g: (fl.conv2d(g, k[None, None], padding=1),
                                            fl.conv2d(g, k.T[None, None], padding=1)), "differs")


# --- magnitude and orientation ----------------------------------------------------------------

def test_magnitude_orientation_solution_passes(capsys):
    fl.checks.check_magnitude_orientation(magnitude_orientation)
    assert "✓" in capsys.readouterr().out


def test_magnitude_orientation_skeleton_fails():
    fails(fl.checks.check_magnitude_orientation, SKELETON, "None")
    fails(fl.checks.check_magnitude_orientation, lambda gx, gy: magnitude_orientation(gx, gy)[1], "two tensors")


def test_signed_orientation_fails():
    fails(fl.checks.check_magnitude_orientation,
          lambda gx, gy: (torch.hypot(gx, gy), torch.rad2deg(torch.atan2(gy, gx))), "SIGNED")
    fails(fl.checks.check_magnitude_orientation,
          lambda gx, gy: (torch.hypot(gx, gy), torch.remainder(torch.rad2deg(torch.atan2(gy, gx)), 360)), "SIGNED")


def test_radians_fail():
    fails(fl.checks.check_magnitude_orientation,
          lambda gx, gy: (torch.hypot(gx, gy), torch.remainder(torch.atan2(gy, gx), torch.pi)), "radians")
    fails(fl.checks.check_magnitude_orientation,
          lambda gx, gy: (torch.hypot(gx, gy), torch.atan2(gy, gx)), "radians")


def test_swapped_atan2_and_squared_magnitude_fail():
    fails(fl.checks.check_magnitude_orientation,
          lambda gx, gy: (torch.hypot(gx, gy), torch.remainder(torch.rad2deg(torch.atan2(gx, gy)), 180)),
          "atan2(gy, gx)")
    fails(fl.checks.check_magnitude_orientation,
          lambda gx, gy: (gx**2 + gy**2, magnitude_orientation(gx, gy)[1]), "square root")


# --- cell histogram ------------------------------------------------------------------------------

def test_cell_histogram_solution_passes(capsys):
    fl.checks.check_cell_histogram(cell_histogram)
    assert "✓" in capsys.readouterr().out


def test_cell_histogram_agrees_with_skimage_hog():
    """The reference convention is skimage's: one cell, one block, L1 -> (votes / area) / sum."""
    import numpy as np
    from skimage.feature import hog
    img = np.random.default_rng(0).random((8, 8))
    g_row, g_col = np.zeros_like(img), np.zeros_like(img)
    g_row[1:-1] = img[2:] - img[:-2]
    g_col[:, 1:-1] = img[:, 2:] - img[:, :-2]
    mag, theta = magnitude_orientation(torch.from_numpy(g_col), torch.from_numpy(g_row))
    h = cell_histogram(mag, theta).numpy() / 64          # skimage averages the votes over the cell
    ref = hog(img, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(1, 1), block_norm="L1")
    assert np.allclose(h / (h.sum() + 1e-5), ref, atol=1e-6)


def test_cell_histogram_skeleton_and_shape_fail():
    fails(fl.checks.check_cell_histogram, SKELETON, "None")
    fails(fl.checks.check_cell_histogram, lambda m, t, n=9: cell_histogram(m, t, 9), "expected (6,)")


def test_counting_votes_fail():
    fails(fl.checks.check_cell_histogram, lambda m, t, n=9: cell_histogram(torch.ones_like(m), t, n),
          "MAGNITUDE")


def test_normalised_and_rounded_fail():
    fails(fl.checks.check_cell_histogram,
          lambda m, t, n=9: cell_histogram(m, t, n) / cell_histogram(m, t, n).sum(), "normalised")
    fails(fl.checks.check_cell_histogram,
          lambda m, t, n=9: torch.zeros(n, dtype=m.dtype).index_add_(
              0, torch.round(t / (180 / n)).long().clamp(0, n - 1).flatten(), m.flatten()), "rounded")


def test_signed_bins_and_radian_bins_fail():
    fails(fl.checks.check_cell_histogram,
          lambda m, t, n=9: torch.zeros(n, dtype=m.dtype).index_add_(
              0, (t // (360 / n)).long().clamp(0, n - 1).flatten(), m.flatten()), "360")
    fails(fl.checks.check_cell_histogram,
          lambda m, t, n=9: torch.zeros(n, dtype=m.dtype).index_add_(
              0, (t // (torch.pi / n)).long().clamp(0, n - 1).flatten(), m.flatten()), "DEGREES")


# --- more wrong answers, one per plausible mistake (counted in the report of issue 19) ----------

def _theta(fold):
    return lambda gx, gy: (torch.hypot(gx, gy), fold(torch.rad2deg(torch.atan2(gy, gx))))


def _hist(width=None, votes="mag", bins=None):
    def hist(mag, theta, n_bins=9):
        nb = bins or n_bins
        b = torch.div(theta, width or 180.0 / n_bins, rounding_mode="floor").long().clamp(0, nb - 1)
        w = mag if votes == "mag" else torch.ones_like(mag)
        return torch.zeros(nb, dtype=mag.dtype).index_add_(0, b.flatten(), w.flatten())
    return hist


WRONG = {
    "theta: +180 on negatives only": (fl.checks.check_magnitude_orientation,
                                      _theta(lambda t: torch.where(t < 0, t + 180, t)), "reaches 180"),
    "theta: abs": (fl.checks.check_magnitude_orientation, _theta(torch.abs), ""),
    "theta: mod 360": (fl.checks.check_magnitude_orientation, _theta(lambda t: torch.remainder(t, 360)), "SIGNED"),
    "theta: radians": (fl.checks.check_magnitude_orientation,
                       lambda gx, gy: (torch.hypot(gx, gy), torch.remainder(torch.atan2(gy, gx), torch.pi)), "radians"),
    "theta: atan2(gx, gy)": (fl.checks.check_magnitude_orientation,
                             lambda gx, gy: magnitude_orientation(gy, gx), ""),
    "mag: squared": (fl.checks.check_magnitude_orientation,
                     lambda gx, gy: (gx ** 2 + gy ** 2, magnitude_orientation(gx, gy)[1]), "square root"),
    "hist: width 20 for any n_bins": (fl.checks.check_cell_histogram, _hist(width=20.0), ""),
    "hist: counts": (fl.checks.check_cell_histogram, _hist(votes="count"), "counts"),
    "hist: n_bins + 1 bins": (fl.checks.check_cell_histogram, lambda m, t, n=9: _hist(bins=n + 1)(m, t, n), "shape"),
    "hist: rounded": (fl.checks.check_cell_histogram, lambda m, t, n=9: cell_histogram(m, t + 90.0 / n, n), "rounded"),
    "sobel: sign flipped": (fl.checks.check_sobel, lambda g: tuple(-v for v in sobel(g)), "sign"),
    "sobel: swapped": (fl.checks.check_sobel, lambda g: sobel(g)[::-1], "swapped"),
    "sobel: no padding": (fl.checks.check_sobel, lambda g: (fl.conv2d(g, KX[None, None]), fl.conv2d(g, KX.T[None, None])),
                          "2 pixels smaller"),
}


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answers_fail(name):
    check, fn, hint = WRONG[name]
    fails(check, fn, hint)
