"""Checks for ``exercises/11_*.ipynb`` (classic features; notebook ``notebooks/11_classic_features``).

The learner's functions take and return torch tensors:

- ``sobel(gray)``: (N, 1, H, W) -> ``(gx, gy)``, each (N, 1, H, W): cross-correlation with
  ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` (gx) and its transpose (gy), zero padding 1, not divided
  by 4 (x to the right, y downwards);
- ``magnitude_orientation(gx, gy)``: -> ``(mag, theta)``, ``theta`` the unsigned orientation in
  degrees, ``atan2(gy, gx)`` folded into [0, 180);
- ``cell_histogram(mag, theta, n_bins=9)``: one cell -> (n_bins,) histogram, bin ``b`` covering
  [b·180/n_bins, (b+1)·180/n_bins), each pixel voting with its magnitude (as skimage's ``hog``
  before it averages over the cell).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..i18n import _
from ._common import ExerciseError, _ok, _same, _tensor, learner_check

__all__ = ["check_sobel", "check_magnitude_orientation", "check_cell_histogram"]

SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)


def _reference_sobel(x: torch.Tensor, kernel: torch.Tensor = SOBEL_X, pad: str = "zeros"):
    if pad == "reflect":
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        p = 0
    elif pad == "replicate":
        x = F.pad(x, (1, 1, 1, 1), mode="replicate")
        p = 0
    else:
        p = 1
    gx = F.conv2d(x, kernel[None, None].to(x.dtype), padding=p)
    gy = F.conv2d(x, kernel.T[None, None].to(x.dtype), padding=p)
    return gx, gy


def _image(seed: int, n: int = 2, h: int = 9, w: int = 11) -> torch.Tensor:
    """(n, 1, h, w) float64: a smooth ramp with different x and y slopes, a bright square, noise."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    base = 0.05 * xx + 0.02 * yy
    base[2:5, 3:7] += 1.0
    return base + 0.3 * torch.rand(n, 1, h, w, generator=g, dtype=torch.float64)


def _pair(out, what: str, names: str) -> tuple:
    if out is None:
        raise ExerciseError(_("{what} returned None: fill in the TODO.").format(what=what))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        if isinstance(out, (tuple, list)):
            raise ExerciseError(_("{what} should return two tensors, {names}; got a {type_name} of length {n}.").format(

                what=what, names=names, type_name=type(out).__name__, n=len(out)))
        raise ExerciseError(_("{what} should return two tensors, {names}; got {type_name}.").format(
            what=what, names=names, type_name=type(out).__name__))
    return tuple(out)


# --- 1. Sobel as a convolution ----------------------------------------------------------------

@learner_check
def check_sobel(sobel) -> None:
    """``sobel(gray)``: (N, 1, H, W) -> (gx, gy) with zero padding 1 (same size), not normalised."""
    for seed, shape in [(110, (2, 9, 11)), (111, (1, 7, 6))]:
        x = _image(seed, *shape)
        gx, gy = _pair(sobel(x.clone()), "sobel", "(gx, gy)")
        gx, gy = _tensor(gx, _("gx (first return value)")), _tensor(gy, _("gy (second return value)"))
        want_x, want_y = _reference_sobel(x)
        for got, name in ((gx, "gx"), (gy, "gy")):
            if tuple(got.shape) != tuple(want_x.shape):
                hint = ""
                if got.shape[-2:] == (x.shape[-2] - 2, x.shape[-1] - 2):
                    hint = _(" The output is 2 pixels smaller: pad by 1 (padding=1) to keep the size.")
                raise ExerciseError(_("{name} has shape {got_shape}, expected {want_x_shape} (same as the "
                                      "input).{hint}").format(
                                              name=name, got_shape=tuple(got.shape),
                                              want_x_shape=tuple(want_x.shape), hint=hint))
        if _same(gx, want_x) and _same(gy, want_y):
            continue
        if _same(gx, want_y) and _same(gy, want_x):
            raise ExerciseError(_("gx and gy are swapped: gx (change to the RIGHT, along the columns) uses "
                                  "[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]; gy (change DOWNWARDS) uses its "
                                  "transpose."))
        if _same(gx, -want_x) or _same(gy, -want_y):
            raise ExerciseError(_("the sign is flipped: did you flip the kernel (a true convolution, e.g. "
                                  "scipy.ndimage.convolve) or write it as [1, 0, -1]? fl.conv2d is "
                                  "cross-correlation: with [[-1, 0, 1], ...] a brightness rising to the right "
                                  "gives gx > 0."))
        for f in (2, 4, 8):
            if _same(gx * f, want_x) and _same(gy * f, want_y):
                raise ExerciseError(_("the gradients are divided by {f}: keep the plain Sobel weights "
                                      "(skimage's sobel_v/sobel_h divide by 4; here we do not).").format(f=f))
        for pad in ("reflect", "replicate"):
            rx, ry = _reference_sobel(x, pad=pad)
            if _same(gx, rx) and _same(gy, ry):
                raise ExerciseError(_("the border uses {pad} padding: pad with zeros (padding=1 in fl.conv2d), "
                                      "as the reference does.").format(pad=pad))
        inner = (Ellipsis, slice(1, -1), slice(1, -1))
        if _same(gx[inner], want_x[inner]) and _same(gy[inner], want_y[inner]):
            raise ExerciseError(_("the interior is right but the border is not: pad with zeros (padding=1)."))
        bad = "gx" if not _same(gx, want_x) else "gy"
        err = ((gx - want_x).abs().max() if bad == "gx" else (gy - want_y).abs().max()).item()
        raise ExerciseError(_("{bad} differs from the reference (max abs error {err:.3g}). Use fl.conv2d(gray, "
                              "kernel[None, None], padding=1) with the Sobel kernel [[-1, 0, 1], [-2, 0, 2], "
                              "[-1, 0, 1]] for gx and its transpose for gy.").format(bad=bad, err=err))
    _ok(_("sobel: gx and gy equal the Sobel cross-correlation with zero padding."))


# --- 2. magnitude and unsigned orientation --------------------------------------------------

def _angle_error(got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    """Smallest difference between two unsigned angles in degrees (0 and 180 are the same)."""
    d = torch.remainder(got - want, 180.0)
    return torch.minimum(d, 180.0 - d)


@learner_check
def check_magnitude_orientation(magnitude_orientation) -> None:
    """``magnitude_orientation(gx, gy)`` -> (sqrt(gx² + gy²), atan2(gy, gx) in degrees mod 180)."""
    g = torch.Generator().manual_seed(112)
    gx = torch.randn(2, 1, 6, 7, generator=g, dtype=torch.float64)
    gy = torch.randn(2, 1, 6, 7, generator=g, dtype=torch.float64)
    gx[0, 0, 0, :3] = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)   # exactly 0°, 180°, 90°
    gy[0, 0, 0, :3] = torch.tensor([0.0, 0.0, 2.0], dtype=torch.float64)
    mag, theta = _pair(magnitude_orientation(gx.clone(), gy.clone()), "magnitude_orientation", "(mag, theta)")
    mag, theta = _tensor(mag, _("mag (first return value)")), _tensor(theta, _("theta (second return value)"))
    want_mag = torch.hypot(gx, gy)
    signed = torch.rad2deg(torch.atan2(gy, gx))
    want_theta = torch.remainder(signed, 180.0)
    for got, name in ((mag, "mag"), (theta, "theta")):
        if tuple(got.shape) != tuple(gx.shape):
            raise ExerciseError(_("{name} has shape {got_shape}, expected {gx_shape} (one value per pixel, "
                                  "same as gx).").format(
                                          name=name, got_shape=tuple(got.shape), gx_shape=tuple(gx.shape)))
    if not _same(mag, want_mag):
        if _same(mag, want_mag**2):
            raise ExerciseError(_("mag is gx² + gy²: take the square root (torch.hypot(gx, gy))."))
        if _same(mag, gx.abs() + gy.abs()):
            raise ExerciseError(_("mag is |gx| + |gy| (an L1 approximation): use sqrt(gx² + gy²)."))
        raise ExerciseError(_("mag is wrong: it is the length of the gradient, sqrt(gx² + gy²)."))
    theta = theta.double()
    if torch.isnan(theta).any():
        raise ExerciseError(_("theta has NaN values: use torch.atan2(gy, gx), which is defined everywhere."))
    if (_angle_error(theta, want_theta) < 1e-4).all():
        if theta.min() >= 0 and theta.max() >= 180 - 1e-9 and theta.max() <= 180 + 1e-9:
            raise ExerciseError(_("theta reaches 180° (for gx < 0, gy = 0): the range is [0, 180), and 180° is "
                                  "the same orientation as 0°. Fold with torch.remainder(theta, 180), not by "
                                  "adding 180 to the negative angles only."))
        if theta.min() < 0 or theta.max() >= 180 + 1e-9:
            raise ExerciseError(_("theta has values in [{lowest:.1f}, {highest:.1f}]: this is the SIGNED "
                                  "orientation; HOG uses the unsigned one. Fold it into [0, 180) with "
                                  "torch.remainder(theta, 180) — a dark-to-light and a light-to-dark edge then "
                                  "get the same angle.").format(lowest=theta.min(), highest=theta.max()))
        _ok(_("magnitude_orientation: magnitude and unsigned orientation (degrees, 0–180) are right."))
        return
    if theta.abs().max() <= math.pi + 1e-9 and (_angle_error(torch.rad2deg(theta), want_theta) < 1e-4).all():
        raise ExerciseError(_("theta looks like radians: convert to degrees (torch.rad2deg) before folding "
                              "into [0, 180)."))
    if theta.abs().max() <= math.pi + 1e-9:
        raise ExerciseError(_("theta is at most π: it looks like radians. Use degrees (torch.rad2deg), then "
                              "fold into [0, 180) with torch.remainder(theta, 180)."))
    if _same(theta, signed) or _same(theta, torch.remainder(signed, 360.0)):
        raise ExerciseError(_("theta is the SIGNED orientation (range up to 360°): HOG uses the unsigned one. "
                              "Fold it into [0, 180) with torch.remainder(theta, 180) — a dark-to-light and a "
                              "light-to-dark edge then get the same angle."))
    swapped = torch.remainder(torch.rad2deg(torch.atan2(gx, gy)), 180.0)
    if (_angle_error(theta, swapped) < 1e-4).all():
        raise ExerciseError(_("theta uses atan2(gx, gy): the arguments of atan2 are (y, x) — use atan2(gy, gx)."))
    if (_angle_error(theta, torch.rad2deg(torch.atan(gy / gx))) < 1e-4).all():
        raise ExerciseError(_("theta uses atan(gy / gx): use torch.atan2(gy, gx), which handles gx = 0."))
    raise ExerciseError(_("theta is wrong: torch.rad2deg(torch.atan2(gy, gx)) folded into [0, 180)."))


# --- 3. a HOG cell histogram -------------------------------------------------------------------

def _reference_hist(mag: torch.Tensor, theta: torch.Tensor, n_bins: int, votes: str = "mag",
                    rounding: str = "floor", width: float = 180.0) -> torch.Tensor:
    b = theta / (width / n_bins)
    b = torch.round(b) if rounding == "round" else torch.floor(b)
    b = b.long().clamp(0, n_bins - 1)
    w = mag if votes == "mag" else torch.ones_like(mag)
    return torch.zeros(n_bins, dtype=torch.float64).index_add_(0, b.flatten(), w.flatten().double())


@learner_check
def check_cell_histogram(cell_histogram) -> None:
    """``cell_histogram(mag, theta, n_bins=9)``: one cell (h, w) -> (n_bins,) magnitude-weighted votes."""
    g = torch.Generator().manual_seed(113)
    for n_bins, (h, w) in [(9, (8, 8)), (6, (5, 7))]:
        mag = torch.rand(h, w, generator=g, dtype=torch.float64) * 3
        theta = torch.rand(h, w, generator=g, dtype=torch.float64) * 180
        theta[0, 0], theta[0, 1] = 0.0, 180.0 / n_bins     # exactly on a bin edge: the bin that starts there
        out = cell_histogram(mag.clone(), theta.clone(), n_bins)
        got = _tensor(out, "cell_histogram")
        want = _reference_hist(mag, theta, n_bins)
        if tuple(got.shape) != (n_bins,):
            raise ExerciseError(_("cell_histogram returned shape {got_shape}; expected ({n_bins},), one value "
                                  "per orientation bin (for n_bins bins).").format(
                                          got_shape=tuple(got.shape), n_bins=n_bins))
        if _same(got, want):
            continue
        if _same(got, _reference_hist(mag, theta, n_bins, votes="count")):
            raise ExerciseError(_("the bins hold counts: each pixel votes with its MAGNITUDE, so a strong edge "
                                  "counts more than noise in a flat region."))
        if _same(got, want / want.sum()) or _same(got, want / (h * w)) or _same(got, want / want.norm()):
            raise ExerciseError(_("the histogram is normalised: return the plain sum of magnitudes per bin "
                                  "(HOG normalises later, over blocks of cells)."))
        if _same(got, _reference_hist(mag, theta, n_bins, rounding="round")):
            raise ExerciseError(_("theta is rounded to the nearest bin: bin b covers [b·180/n_bins, "
                                  "(b+1)·180/n_bins), so use floor (theta // (180 / n_bins))."))
        if _same(got, _reference_hist(mag, theta, n_bins, width=360.0)):
            raise ExerciseError(_("the bins span 360°: the orientation is unsigned, so n_bins bins cover "
                                  "0–180°."))
        if _same(got, _reference_hist(mag, theta, n_bins, width=math.pi)):
            raise ExerciseError(_("the bins span π: theta is in DEGREES here (0–180), bin width 180 / n_bins."))
        raise ExerciseError(_("the histogram differs from the reference {want_values}: bin b collects the "
                              "magnitudes of the pixels with b·180/n_bins <= theta < (b+1)·180/n_bins.").format(
                                      want_values=[round(v, 3) for v in want.tolist()]))
    _ok(_("cell_histogram: magnitude-weighted votes in unsigned orientation bins."))
