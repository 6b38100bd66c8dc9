# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 11 — Classic features: Sobel as a convolution, and a HOG cell histogram
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/11_classic_features.ipynb`. Fill in each `TODO`, run the cell, then run the
# check below it: it prints ✓ when your function is right, and says what is wrong when it is not.
#
# Everything here is a torch tensor. A grey picture is a batch `(N, 1, H, W)`; the image gradient is
#
# $$g_x = I \star \begin{bmatrix}-1&0&1\\-2&0&2\\-1&0&1\end{bmatrix},\qquad
# g_y = I \star \begin{bmatrix}-1&0&1\\-2&0&2\\-1&0&1\end{bmatrix}^{\!\top},$$
#
# with $\star$ the cross-correlation that `fl.conv2d` computes ($x$ to the right, $y$ downwards).

# %%
import numpy as np
import torch
import torch.nn.functional as F

import featlab as fl

_ = torch.manual_seed(0)


# %% [markdown]
# ## 1. Sobel as a convolution
#
# `sobel(gray)` takes `(N, 1, H, W)` and returns `(gx, gy)`, each `(N, 1, H, W)`: the two Sobel
# gradients with **zero padding 1** (same size as the input), *not* divided by 4. Use `fl.conv2d`
# with a weight of shape `(1, 1, 3, 3)`; mind the dtype of the kernel (`gray.dtype`).

# %%
def sobel(gray):
    ### BEGIN SOLUTION
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=gray.dtype)
    gx = fl.conv2d(gray, kx[None, None], padding=1)
    gy = fl.conv2d(gray, kx.T[None, None], padding=1)
    return gx, gy
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_sobel(sobel)


# %% [markdown]
# ## 2. Magnitude and unsigned orientation
#
# `magnitude_orientation(gx, gy)` returns `(mag, theta)`, both the shape of `gx`: the gradient length
# $\sqrt{g_x^2+g_y^2}$ and the **unsigned** orientation in **degrees**, $\operatorname{atan2}(g_y, g_x)$
# folded into $[0, 180)$ — HOG treats a dark-to-light and a light-to-dark edge alike.

# %%
def magnitude_orientation(gx, gy):
    ### BEGIN SOLUTION
    mag = torch.hypot(gx, gy)
    theta = torch.remainder(torch.rad2deg(torch.atan2(gy, gx)), 180.0)
    return mag, theta
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_magnitude_orientation(magnitude_orientation)


# %% [markdown]
# ## 3. A HOG cell histogram
#
# `cell_histogram(mag, theta, n_bins=9)` takes the magnitudes and orientations of **one cell**
# (two tensors of the same shape, theta in degrees in $[0, 180)$) and returns a tensor `(n_bins,)`:
# bin $b$ covers $[b\cdot 180/n, (b+1)\cdot 180/n)$, and every pixel adds its **magnitude** to its
# bin (not 1). No normalisation — HOG normalises later, over blocks of cells.

# %%
def cell_histogram(mag, theta, n_bins=9):
    ### BEGIN SOLUTION
    b = torch.div(theta, 180.0 / n_bins, rounding_mode="floor").long().clamp(0, n_bins - 1)
    hist = torch.zeros(n_bins, dtype=mag.dtype)
    return hist.index_add_(0, b.flatten(), mag.flatten())
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_cell_histogram(cell_histogram)

# %% [markdown]
# ## 4. Your functions on a real picture, next to the network
#
# The brick texture: its mortar lines are horizontal and vertical, so the cell histograms should
# pile up around 0° (the first and the last bin: 0° and 180° are the same orientation) and
# 90°. Then the edge magnitude is compared with the 32 channels of
# EfficientNet-Lite0's first layer (`stem`, stride 2, upsampled back): which channel looks most like
# an edge detector?

# %%
picture = fl.load_image("brick").convert("L").resize((128, 128))
gray = torch.from_numpy(np.asarray(picture, dtype=np.float64) / 255)[None, None]     # (1, 1, 128, 128)
gx, gy = sobel(gray)
mag, theta = magnitude_orientation(gx, gy)
cells = [cell_histogram(mag[0, 0, i:i + 8, j:j + 8], theta[0, 0, i:i + 8, j:j + 8])
         for i in range(0, 128, 8) for j in range(0, 128, 8)]
total = torch.stack(cells).sum(0)
print("share of the gradient mass per 20° bin:", [round(v, 3) for v in (total / total.sum()).tolist()])

model = fl.load_model("efficientnet_lite0")
x = ((gray.float().expand(-1, 3, -1, -1) - 0.5) / 0.5).to(fl.device())
stem = fl.extract(model, x, ["stem"])["stem"].float().cpu()
up = F.interpolate(stem, size=(128, 128), mode="bilinear", align_corners=False)[0].reshape(32, -1)
e = mag.float().reshape(-1)
r = torch.stack([torch.corrcoef(torch.stack([c, e]))[0, 1] for c in up]).nan_to_num()   # constant channel: 0
print(f"best stem channel: #{r.abs().argmax().item()}, correlation with |g| = {r[r.abs().argmax()].item():.3f}")
