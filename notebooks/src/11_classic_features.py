# ---
# jupyter:
#   jupytext:
#     formats: ipynb,src//py:percent
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
# # 11 — Classic features: Sobel, Harris, HOG, Gabor — next to a learned network
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - write the Sobel and Scharr gradients as a convolution with the course's own `fl.conv2d`,
#   turn them into magnitude and orientation, and check them against scikit-image;
# - build the Harris corner response from the structure tensor, HOG cell histograms (and read HOG's
#   glyphs) and a Gabor bank from scratch, each asserted equal to scikit-image's version;
# - *measure* how much a pretrained network's first layer looks like Gabor/Sobel kernels, against
#   random kernels as a baseline, and how edge-like the feature maps are at each depth, with the
#   same number of channels drawn at every layer;
# - *measure* the trade-off "hand-made features are interpretable and light, but weaker": a linear
#   probe on HOG vs on pooled network features, on textures (clean and shifted) and on faces, over
#   several draws, with verdicts.
#
# **Prerequisites:** `01_convolution_math` (`fl.conv2d` is cross-correlation), `05_feature_maps`
# (`fl.extract`, layer names), `07_embeddings_retrieval` (a linear probe on pooled features).
# **Run time:** about 30 s on a 2-core CPU.
#
# Before networks learned their filters, features were designed by hand. Almost all of them start
# from the **image gradient**: how fast the brightness changes to the right ($g_x$) and downwards
# ($g_y$). The Sobel operator estimates it with two 3×3 kernels — a central difference across, and a
# $[1, 2, 1]$ smoothing along the edge:
#
# $$g_x = I \star \begin{bmatrix}-1&0&1\\-2&0&2\\-1&0&1\end{bmatrix},\qquad
# g_y = I \star \begin{bmatrix}-1&0&1\\-2&0&2\\-1&0&1\end{bmatrix}^{\!\top},\qquad
# |g| = \sqrt{g_x^2+g_y^2},\quad \theta = \operatorname{atan2}(g_y, g_x).$$
#
# ($\star$ is cross-correlation, what `fl.conv2d` and every deep-learning library compute.) The rest
# of this notebook is built on these two maps: **Harris** looks at how the gradients in a window
# spread (one direction: an edge; two: a corner), **HOG** histograms the orientations weighted by
# the magnitudes, and a **Gabor** filter is a gradient-like detector tuned to one orientation and one
# frequency. A CNN's first layer *learns* its kernels instead — the question of the second half is
# how similar the learned ones are, and what each kind of feature is good for.

# %%
# %matplotlib inline
import time

import matplotlib.pyplot as plt
import numpy as np
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
from skimage import data, feature, filters
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import featlab as fl

torch.manual_seed(0)
rng = np.random.default_rng(0)
plt.rcParams["figure.dpi"] = 72
model = fl.load_model("efficientnet_lite0")
camera = data.camera()[64:320, 128:384].astype(np.float64) / 255   # 256×256 grey, values in [0, 1]

# %% [markdown]
# ## 1. Sobel and Scharr as a convolution
#
# A grey image becomes a batch of one channel, `(1, 1, H, W)`; each kernel becomes a weight
# `(1, 1, 3, 3)`; `padding=1` keeps the size (zero padding). Scharr has the same shape with weights
# $[3, 10, 3]$, chosen to make the orientation more rotation-invariant.
#
# scikit-image's `sobel_v`/`sobel_h` compute the same thing with two conventions of their own: they
# **divide by 4** (the sum of the positive weights, so a unit step gives 1) and pad by **reflecting**
# the border instead of zeros. Scharr is divided by 16. So the comparison divides by 4 (16) and looks
# at the interior, where padding plays no role.

# %%
# NBVAL_CHECK_OUTPUT
SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)
SCHARR_X = torch.tensor([[-3.0, 0.0, 3.0], [-10.0, 0.0, 10.0], [-3.0, 0.0, 3.0]], dtype=torch.float64)


def gradients(gray, kernel_x=SOBEL_X):
    """gray (H, W) array -> (gx, gy) arrays (H, W): cross-correlation, zero padding 1."""
    x = torch.as_tensor(gray, dtype=torch.float64)[None, None]
    w = torch.stack([kernel_x, kernel_x.T])[:, None]                  # (2, 1, 3, 3): x then y
    g = fl.conv2d(x, w, padding=1)[0]
    return g[0].numpy(), g[1].numpy()


gx, gy = gradients(camera)
sx, sy = gradients(camera, SCHARR_X)
inner = (slice(1, -1), slice(1, -1))
assert np.allclose(gx[inner] / 4, filters.sobel_v(camera)[inner])     # v = vertical edges = d/dx
assert np.allclose(gy[inner] / 4, filters.sobel_h(camera)[inner])
assert np.allclose(sx[inner] / 16, filters.scharr_v(camera)[inner])
assert np.allclose(sy[inner] / 16, filters.scharr_h(camera)[inner])
border = np.abs(gx / 4 - filters.sobel_v(camera))
print(f"interior: equal to skimage; largest difference on the border (zero vs reflect padding): "
      f"{border.max():.3f}")

magnitude = np.hypot(gx, gy)
theta = np.degrees(np.arctan2(gy, gx))               # signed, (-180, 180]; y points down
unsigned = np.mod(theta, 180.0)                      # an edge and its inverse: same orientation
print(f"magnitude: max {magnitude.max():.2f}, mean {magnitude.mean():.3f}; "
      f"orientation in [{theta.min():.0f}, {theta.max():.0f}] deg, unsigned in "
      f"[{unsigned.min():.0f}, {unsigned.max():.0f}] deg")
ang_sobel = np.mod(np.degrees(np.arctan2(gy, gx)), 180)
ang_scharr = np.mod(np.degrees(np.arctan2(sy, sx)), 180)
strong = magnitude > np.percentile(magnitude, 90)
d = np.abs((ang_sobel - ang_scharr + 90) % 180 - 90)[strong]
print(f"Sobel vs Scharr orientation on the 10% strongest edges: mean difference {d.mean():.2f} deg")

# %%
fig, ax = plt.subplots(1, 4, figsize=(12, 3.2))
ax[0].imshow(camera, cmap="gray"); ax[0].set_title("image")
ax[1].imshow(gx, cmap="RdBu_r"); ax[1].set_title("$g_x$ (Sobel)")
ax[2].imshow(magnitude, cmap="magma"); ax[2].set_title("$|g|$")
ax[3].imshow(np.where(strong, unsigned, np.nan), cmap="hsv", vmin=0, vmax=180)
ax[3].set_title("orientation (0–180°), strong edges")
for a in ax:
    a.axis("off")
plt.tight_layout(); plt.show()


# %% [markdown]
# ## 2. Harris: corners from the structure tensor
#
# Average the outer products of the gradient over a Gaussian window $w$:
# $M = w * \begin{bmatrix} g_x^2 & g_xg_y\\ g_xg_y & g_y^2\end{bmatrix}$. Its two eigenvalues say how
# much the brightness changes along the two principal directions: both small — flat; one large —
# an edge; both large — a corner. Harris avoids the eigenvalues with
# $R = \det M - k\,(\operatorname{tr} M)^2$ (here $k = 0.05$): positive at corners, negative on edges.
# scikit-image's `corner_harris` uses the unnormalised Sobel and a Gaussian with zero padding, so
# the from-scratch version is *exactly* equal, borders included.

# %%
# NBVAL_CHECK_OUTPUT
def harris(gray, sigma=1.0, k=0.05):
    gx, gy = gradients(gray)
    blur = lambda a: ndi.gaussian_filter(a, sigma, mode="constant")
    axx, axy, ayy = blur(gx * gx), blur(gx * gy), blur(gy * gy)
    return axx * ayy - axy**2 - k * (axx + ayy) ** 2


R = harris(camera)
assert np.allclose(R, feature.corner_harris(camera, k=0.05, sigma=1.0))
peaks = feature.corner_peaks(R, min_distance=5, threshold_rel=0.02)
print(f"Harris: equal to skimage.feature.corner_harris; {len(peaks)} corners (peaks, min distance 5); "
      f"R > 0 on {100 * (R > 1e-4).mean():.1f}% of pixels, R < 0 (edges) on {100 * (R < -1e-4).mean():.1f}%")

# %%
fig, ax = plt.subplots(figsize=(3.5, 3.5))
ax.imshow(camera, cmap="gray"); ax.plot(peaks[:, 1], peaks[:, 0], "r+", ms=6)
ax.set_title(f"Harris peaks ({len(peaks)})"); ax.axis("off")
plt.tight_layout(); plt.show()


# %% [markdown]
# ## 3. HOG: histograms of oriented gradients
#
# HOG (Dalal & Triggs, 2005) cuts the image into cells (8×8 pixels), and in each cell histograms the
# **unsigned** orientation (0–180°, 9 bins of 20°), each pixel voting with its **magnitude**. Blocks
# of cells are then normalised, which makes the descriptor robust to contrast. scikit-image's `hog`
# uses the simplest gradient, $[-1, 0, 1]$ (zero on the outermost pixels), and *averages* the
# votes in a cell; with one cell per block and L1 normalisation the from-scratch version is equal.

# %%
# NBVAL_CHECK_OUTPUT
def hog_cells(gray, cell=8, bins=9):
    """(H, W) -> (H // cell, W // cell, bins): magnitude-weighted unsigned-orientation histograms."""
    g_row, g_col = np.zeros_like(gray), np.zeros_like(gray)
    g_row[1:-1, :] = gray[2:, :] - gray[:-2, :]
    g_col[:, 1:-1] = gray[:, 2:] - gray[:, :-2]
    mag = np.hypot(g_row, g_col)
    ang = np.mod(np.degrees(np.arctan2(g_row, g_col)), 180)
    b = np.minimum((ang // (180 / bins)).astype(int), bins - 1)
    ch, cw = gray.shape[0] // cell, gray.shape[1] // cell
    out = np.zeros((ch, cw, bins))
    for i in range(ch):
        for j in range(cw):
            sl = (slice(i * cell, (i + 1) * cell), slice(j * cell, (j + 1) * cell))
            out[i, j] = np.bincount(b[sl].ravel(), weights=mag[sl].ravel(), minlength=bins) / cell**2
    return out


H = hog_cells(camera)
ref = feature.hog(camera, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(1, 1),
                  block_norm="L1", feature_vector=False)[:, :, 0, 0, :]
mine = H / (H.sum(-1, keepdims=True) + 1e-5)
assert np.allclose(mine, ref, atol=1e-6)
print(f"HOG cells {H.shape}: equal to skimage.feature.hog (1×1 blocks, L1); "
      f"the descriptor with 3×3 blocks, L2-Hys: {feature.hog(camera).size} numbers for a 256×256 image")

# %% [markdown]
# HOG can be *looked at*: `feature.hog(..., visualize=True)` draws each cell's histogram as a star of
# line segments, one per orientation bin, drawn **along the edge** (perpendicular to the gradient)
# with a brightness proportional to the bin's vote. The outline of the photographer and his tripod
# survives in 9 numbers per cell; flat sky leaves empty cells.

# %%
_, glyphs = feature.hog(camera, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(1, 1), visualize=True)
fig, ax = plt.subplots(1, 3, figsize=(10, 3.5))
ax[0].imshow(camera, cmap="gray"); ax[0].set_title("image")
ax[1].imshow(glyphs, cmap="gray"); ax[1].set_title("HOG glyphs, 8×8 cells")
ax[2].imshow(glyphs[64:128, 96:160], cmap="gray"); ax[2].set_title("zoom: 8 × 8 cells")
for a in ax:
    a.axis("off")
plt.tight_layout(); plt.show()


# %% [markdown]
# ## 4. A Gabor bank
#
# A Gabor filter is a plane wave under a Gaussian envelope: orientation $\theta$, frequency $f$
# (cycles per pixel), phase $\varphi$, width $\sigma$. Its real part with $\varphi = 0$ is a
# symmetric bar detector, with $\varphi = \pi/2$ an odd edge detector — a smooth, tunable Sobel. A
# bank of them (orientations × frequencies) was the standard texture descriptor, and the model of
# the simple cells of the visual cortex.

# %%
# NBVAL_CHECK_OUTPUT
def gabor(size, f, theta, phase=0.0, sigma=1.0):
    """Real Gabor kernel (size, size) on the grid -size//2 .. size//2 (x to the right, y down)."""
    r = np.arange(size) - size // 2
    y, x = np.meshgrid(r, r, indexing="ij")
    xr = x * np.cos(theta) + y * np.sin(theta)
    yr = -x * np.sin(theta) + y * np.cos(theta)
    env = np.exp(-0.5 * (xr**2 + yr**2) / sigma**2) / (2 * np.pi * sigma**2)
    return env * np.cos(2 * np.pi * f * xr + phase)


ref = filters.gabor_kernel(0.2, theta=np.pi / 6, sigma_x=2.0, sigma_y=2.0, offset=0.7)
assert np.allclose(gabor(ref.shape[0], 0.2, np.pi / 6, 0.7, sigma=2.0), ref.real)
print(f"gabor(): equal to skimage.filters.gabor_kernel(...).real on its {ref.shape} grid")
thetas = np.deg2rad(np.arange(0, 180, 30))
bank = [gabor(15, f, t, 0.0, sigma=3.0) for f in (0.1, 0.25) for t in thetas]
bank = [k - k.mean() for k in bank]            # zero mean: no response to flat brightness
tex = {name: getattr(data, name)().astype(np.float64) / 255 for name in ("brick", "grass", "gravel")}
energy = {name: [np.abs(ndi.correlate(img[:128, :128], k)).mean() for k in bank] for name, img in tex.items()}
print("mean |response| per filter (f=0.10: 0°..150°, then f=0.25: 0°..150°)")
for name, e in energy.items():
    print(f"  {name:6s}", " ".join(f"{v:.4f}" for v in e))

# %% [markdown]
# The bank already describes texture: at the low frequency, brick's mean response changes strongly
# with the orientation, while gravel's is flat (the sentence below is computed) — an oriented texture
# and an isotropic one, told apart by 12 numbers anyone can read.

# %%
# NBVAL_CHECK_OUTPUT
for name in ("brick", "gravel"):
    low = np.array(energy[name][:6])
    print(f"{name}, f = 0.10: from {low.min():.4f} at {30 * low.argmin()}° to {low.max():.4f} at "
          f"{30 * low.argmax()}°, a factor of {low.max() / low.min():.2f}")

# %%
fig, ax = plt.subplots(1, len(bank), figsize=(12, 1.4))
for a, k in zip(ax, bank):
    a.imshow(k, cmap="RdBu_r"); a.axis("off")
plt.suptitle("Gabor bank: 6 orientations × 2 frequencies", y=1.05)
plt.show()


# %% [markdown]
# ## 5. The learned first layer next to the hand-made kernels
#
# EfficientNet-Lite0's first convolution, `conv_stem`, has 32 filters of 3×3×3 with stride 2 — small
# (AlexNet's famous Gabor-like first layer has 11×11 filters; at 3×3 a "Gabor" has little room to be
# one). For a grey input all three channels see the same values, so a filter acts through the **sum
# over its colour channels**, a 3×3 kernel. For each learned kernel we find the best-matching real
# Gabor over 12 orientations × 6 frequencies × 8 phases (σ = 1, sampled on the 3×3 grid) and report
# the Pearson correlation of the 9 numbers. With only 9 numbers and 576 candidates the match is
# never poor, so the **baseline** is the same search for 3×3 random Gaussian kernels: only the gap
# between the two says something.

# %%
# NBVAL_CHECK_OUTPUT
def zscore(v):
    v = v - v.mean(-1, keepdims=True)
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-12)


cands = np.stack([gabor(3, f, t, p, sigma=1.0).ravel()
                  for t in np.deg2rad(np.arange(0, 180, 15)) for f in np.linspace(0.05, 0.5, 6)
                  for p in np.linspace(0, 2 * np.pi, 8, endpoint=False)])
cands = zscore(cands)
W = model.conv_stem.weight.detach().cpu().double()            # (32, 3, 3, 3)
learned = W.sum(1).reshape(32, 9).numpy()
random_k = rng.normal(size=(1000, 9))


def best_match(kernels):
    c = zscore(kernels) @ cands.T                                 # Pearson correlation with each candidate
    return c.max(1), c.argmax(1)


best_l, idx_l = best_match(learned)
best_r, _ = best_match(random_k)
sob = zscore(np.stack([SOBEL_X.numpy().ravel(), SOBEL_X.T.numpy().ravel()]))
sob_l = np.abs(zscore(learned) @ sob.T).max(1)
sob_r = np.abs(zscore(random_k) @ sob.T).max(1)
print(f"conv_stem weight {tuple(W.shape)}; kernel = sum over colour channels (3×3)")
print(f"best Gabor correlation, learned: median {np.median(best_l):.3f}, "
      f"{(best_l > 0.9).sum()}/32 above 0.9")
print(f"best Gabor correlation, random:  median {np.median(best_r):.3f}, "
      f"{100 * (best_r > 0.9).mean():.0f}% above 0.9")
print(f"|corr| with Sobel x or y, learned: median {np.median(sob_l):.3f}; random: {np.median(sob_r):.3f}")
for what, l, r in (("best Gabor correlation", best_l, best_r), ("|corr| with Sobel", sob_l, sob_r)):
    groups = np.median(rng.choice(r, size=(2000, 32)), axis=1)      # medians of 32 random kernels
    lo, hi = np.percentile(groups, [2.5, 97.5])
    v = "better" if np.median(l) > hi else "worse" if np.median(l) < lo else "no clear difference"
    print(f"{what}: learned median {np.median(l):.3f}; medians of 32 random kernels, 95 % range "
          f"[{lo:.3f}, {hi:.3f}] → learned vs random: {v}")

# %% [markdown]
# **What the numbers show.** The best-matching Gabor correlates with the learned kernels at a median
# of 0.857 — but random 3×3 kernels already reach 0.781, and 6 of the 32 learned kernels pass 0.9
# against 10 % of random ones. The last two lines ask whether 32 random kernels could have produced
# the learned medians: for the Gabor match they could not (better than random), for Sobel they could
# (no clear difference). So at 3×3 the textbook statement "the first layer learns Gabor-like
# filters" is only weakly visible in Lite0:
# a 3×3 kernel has too few numbers to be much else than a blob, an edge or a bar, random ones
# included. Two caveats: summing over colour hides colour-opponent filters (which sum to about zero
# on grey), and this stem is followed by BatchNorm, which rescales each filter's output.

# %%
order = np.argsort(-best_l)[:8]
fig, ax = plt.subplots(2, 8, figsize=(12, 3.2))
for j, i in enumerate(order):
    ax[0, j].imshow(learned[i].reshape(3, 3), cmap="RdBu_r"); ax[0, j].set_title(f"#{i}", fontsize=9)
    ax[1, j].imshow(cands[idx_l[i]].reshape(3, 3), cmap="RdBu_r"); ax[1, j].set_title(f"r={best_l[i]:.2f}", fontsize=9)
for a in ax.ravel():
    a.axis("off")
plt.suptitle("top: learned conv_stem kernels (colour-summed); bottom: best Gabor", y=1.02)
plt.show()

# %% [markdown]
# ## 6. How edge-like are the feature maps, layer by layer?
#
# For six sample pictures (160×160 px, to keep it quick), each channel of each layer is upsampled
# (bilinear) to 80×80 — the stem's resolution, half the picture's — and correlated with the Sobel
# magnitude of the grey picture. "The best channel of a layer" would favour wide layers: the best of
# 1280 channels at `head` is a maximum over 40 times more tries than the best of 32 at the stem. So
# every layer gets the **same number of tries**: we draw 16 channels at random (16 is the narrowest
# layer's width), keep the best |r| per picture, average over the pictures, and repeat the draw 50
# times (mean ± standard deviation). A coarse map cannot follow a fine edge map however edge-like it
# is, so the **ceiling** for each resolution is the Sobel magnitude itself pooled down to that
# resolution and upsampled back.

# %%
# NBVAL_CHECK_OUTPUT
names = ["chelsea", "coffee", "astronaut", "rocket", "horse", "coins"]
S = 160
rgb = torch.stack([torch.from_numpy(np.asarray(fl.load_image(n).resize((S, S)), dtype=np.float32) / 255)
                   .permute(2, 0, 1) for n in names])                # (6, 3, S, S) in [0, 1]
gray = rgb.mean(1).double().numpy()
edge = np.stack([np.hypot(*gradients(g)) for g in gray])            # (6, S, S)
edge = F.avg_pool2d(torch.from_numpy(edge)[:, None], 2)[:, 0].numpy()  # (6, 80, 80): compared at 80×80
S = 80
layers = ["stem", "block1", "block2", "block3", "block4", "block6", "head"]
feats = fl.extract(model, ((rgb - 0.5) / 0.5).to(fl.device()), layers)
K, DRAWS = 16, 50


def corr_maps(maps, target):
    """maps (C, S, S), target (S, S) -> Pearson correlation per channel (C,)."""
    return (zscore(maps.reshape(len(maps), -1)) @ zscore(target.ravel())).ravel()


print(f"{'layer':7s} {'C':>5s} {'size':>5s} {'best of 16':>14s} {'ceiling':>8s} {'ratio':>13s}")
edge_r = {}
for layer in layers:
    f = feats[layer].float().cpu()
    e = torch.from_numpy(edge)[:, None]
    ceil = F.interpolate(F.adaptive_avg_pool2d(e, f.shape[-1]), size=(S, S), mode="bilinear",
                         align_corners=False)[:, 0].numpy()
    top = np.mean([corr_maps(ceil[i][None], edge[i])[0] for i in range(len(names))])
    r = np.stack([np.abs(corr_maps(F.interpolate(f[i:i + 1], size=(S, S), mode="bilinear",
                                                 align_corners=False)[0].numpy(), edge[i]))
                  for i in range(len(names))])                      # (6 pictures, C channels)
    draws = np.array([r[:, rng.choice(r.shape[1], K, replace=False)].max(1).mean() for _ in range(DRAWS)])
    edge_r[layer] = (draws, top)
    print(f"{layer:7s} {f.shape[1]:5d} {f.shape[-1]:5d} {draws.mean():7.3f} ± {draws.std():.3f} {top:8.3f} "
          f"{draws.mean() / top:6.2f} ± {draws.std() / top:.2f}")


def depth_verdict(a, b):
    """Ratio-to-ceiling of layer a vs layer b over the draws: the 95 % range of a - b."""
    d = edge_r[a][0] / edge_r[a][1] - edge_r[b][0] / edge_r[b][1]
    lo, hi = np.percentile(d, [2.5, 97.5])
    return "higher" if lo > 0 else "lower" if hi < 0 else "no clear difference"


print(f"relative to the ceiling, head vs stem: {depth_verdict('head', 'stem')}; "
      f"head vs block2: {depth_verdict('head', 'block2')}")
print(f"in absolute terms, head vs block2: "
      f"{'lower' if np.percentile(edge_r['head'][0] - edge_r['block2'][0], 97.5) < 0 else 'not clearly lower'}")

# %%
fig, ax = plt.subplots(figsize=(6, 3))
x = np.arange(len(layers))
for vals, lab in [([edge_r[l][0] for l in layers], "best of 16 channels"),
                  ([edge_r[l][0] / edge_r[l][1] for l in layers], "best of 16 / ceiling")]:
    m = np.array([v.mean() for v in vals]); sd = np.array([v.std() for v in vals])
    ax.errorbar(x, m, yerr=sd, fmt="o-", capsize=3, label=lab)
ax.plot(x, [edge_r[l][1] for l in layers], "k:", label="ceiling (pooled Sobel)")
ax.set_xticks(x, layers); ax.set_ylabel("|r| with the Sobel magnitude"); ax.legend(fontsize=8)
ax.set_title("edge-likeness by depth (mean ± sd of 50 draws of 16 channels)", fontsize=10)
plt.tight_layout(); plt.show()

# %% [markdown]
# **What the numbers show.** In absolute terms, edge-likeness peaks at `block2` and falls with depth
# from there; the stem itself is lower: each of its channels sees one orientation and one sign,
# after BatchNorm and the activation, while the Sobel magnitude adds up all orientations. But most
# of the fall is resolution: relative to what a map of that size can reach at all (the ratio), the
# deep layers are *not* less edge-like — the verdict lines compare them with the same number of
# channels drawn per layer. At 5×5 the pooled edge magnitude means "how busy is this region", and
# deep channels track that well. "Shallow layers are edge detectors, deep ones are not" is true of
# the fine edge map, not of edge density.
#
# ## 7. The trade-off, measured: a linear probe on HOG vs on network features
#
# A common claim: hand-made features are **interpretable and light**, but **weaker** than learned
# ones, and weak **across domains**. Two tasks, both offline and labelled:
#
# - **Textures** (brick, grass, gravel and the moon's craters, from `skimage.data`): small 32×32
#   crops, only **5 per class** for training, from the left half of each 512×512 picture, 30 per
#   class for testing from the *right* half — clean, colour-inverted ($1 - I$) and blurred
#   (Gaussian, σ = 1.5 px): the **domain shift**. Few, small crops keep the accuracies away from
#   1.000, where a comparison ranks nothing. It is a texture task, not a semantic one: it asks
#   whether a feature describes local statistics.
# - **Faces vs non-faces** (scikit-image's `lfw_subset`, 100 + 100 grey 25×25 pictures, resized to
#   48×48): closer to a semantic question. With all 200 pictures both features are near-perfect, a
#   saturated measure that ranks nothing; so the probe is trained on only **20** pictures (10 per
#   class) and tested on the other 180.
#
# Two features: HOG (8×8 cells, 2×2 blocks, 9 bins: 324 numbers for a 32×32 crop) and the global
# average pool of Lite0's `head` (1280 numbers; the grey crop in all three channels, upsampled to
# 64 px — small, to keep the notebook quick). The probe is the same for both: standardise, then
# logistic regression (C = 0.1). **Several draws:** the textures are re-cropped with 5 seeds, the
# faces split 20 times. Each line prints the mean ± standard deviation, the paired difference
# GAP − HOG with its 95 % interval (t-interval over the draws), and the verdict for GAP: **better**,
# **worse** or **no clear difference**.

# %%
# NBVAL_CHECK_OUTPUT
from scipy import stats
from sklearn.model_selection import StratifiedShuffleSplit

SIZE, N_TRAIN, N_TEST = 32, 5, 30                                   # crop side, crops per class


def crops(img, n, half, rng, size=SIZE):
    """n random (size, size) crops from the left (half=0) or right (half=1) half of img."""
    cols = (0, 256 - size) if half == 0 else (256, 512 - size)
    r = rng.integers(0, img.shape[0] - size, n)
    c = rng.integers(cols[0], cols[1], n)
    return np.stack([img[i:i + size, j:j + size] for i, j in zip(r, c)])


def hog_features(X):
    return np.stack([feature.hog(x, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2)) for x in X])


def gap_features(X):
    x = torch.from_numpy(X).float()[:, None].expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=64, mode="bilinear", align_corners=False)
    f = fl.extract(model, ((x - 0.5) / 0.5).to(fl.device()), ["head"])["head"]
    return f.mean((2, 3)).float().cpu().numpy()


def compare(acc_gap, acc_hog, what):
    """Paired accuracies over draws -> one line: means ± sd, GAP - HOG with a 95 % t-interval, verdict."""
    g, h = np.asarray(acc_gap), np.asarray(acc_hog)
    d = g - h
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if d.std() > 0 else 0.0
    lo, hi = d.mean() - half, d.mean() + half
    v = "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"
    print(f"{what:28s} HOG {h.mean():.3f} ± {h.std(ddof=1):.3f} | GAP {g.mean():.3f} ± {g.std(ddof=1):.3f} | "
          f"GAP − HOG {d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] → {v}")
    return v


probe = lambda: make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
FEATURES = {"HOG": hog_features, "GAP": gap_features}
tex = {name: getattr(data, name)().astype(np.float64) / 255 for name in ("brick", "grass", "gravel", "moon")}
ytr, yte = np.repeat(np.arange(len(tex)), N_TRAIN), np.repeat(np.arange(len(tex)), N_TEST)
acc = {(f, s): [] for f in FEATURES for s in ("clean", "inverted", "blurred")}
for seed in range(5):
    r = np.random.default_rng(seed)
    Xtr = np.concatenate([crops(img, N_TRAIN, 0, r) for img in tex.values()])
    Xte = np.concatenate([crops(img, N_TEST, 1, r) for img in tex.values()])
    shifts = {"clean": Xte, "inverted": 1 - Xte, "blurred": np.stack([ndi.gaussian_filter(x, 1.5) for x in Xte])}
    for name, fn in FEATURES.items():
        clf = probe().fit(fn(Xtr), ytr)
        for s, X in shifts.items():
            acc[(name, s)].append(clf.score(fn(X), yte))
print(f"textures, {len(tex)} classes, {N_TRAIN} training crops each, 5 draws of crops; chance {1 / len(tex):.3f}")
for s in ("clean", "inverted", "blurred"):
    compare(acc[("GAP", s)], acc[("HOG", s)], f"  other half, {s}")
for s in ("inverted", "blurred"):
    drop = {f: np.subtract(acc[(f, "clean")], acc[(f, s)]) for f in FEATURES}
    print(f"  drop from clean to {s}: HOG {drop['HOG'].mean():+.3f}, GAP {drop['GAP'].mean():+.3f}")
    compare(-drop["GAP"], -drop["HOG"], f"  robustness to {s}")

faces = data.lfw_subset()                                           # (200, 25, 25): 100 faces, 100 not
yf = np.repeat([1, 0], 100)
Xf = np.stack([ndi.zoom(f, 48 / 25, order=1) for f in faces])       # to 48×48
ff = {name: fn(Xf) for name, fn in FEATURES.items()}
split = StratifiedShuffleSplit(n_splits=20, train_size=20, random_state=0)
acc_f = {name: [probe().fit(ff[name][tr], yf[tr]).score(ff[name][te], yf[te]) for tr, te in split.split(Xf, yf)]
         for name in FEATURES}
print("faces vs non-faces, trained on 20 pictures, 20 splits; chance 0.500")
face_verdict = compare(acc_f["GAP"], acc_f["HOG"], "  the other 180 pictures")

# %%
# timings: not checked (machine-dependent); interleaved, 3 repeats
per = {name: [] for name in FEATURES}
for name, fn in FEATURES.items():
    fn(Xte[:8])
for _ in range(3):
    for name, fn in FEATURES.items():
        t = time.perf_counter(); fn(Xte[:60]); per[name].append((time.perf_counter() - t) / 60)
ratio = np.divide(per["GAP"], per["HOG"])
print(f"GAP / HOG time per {SIZE}×{SIZE} crop: {np.median(ratio):.1f}× (repeats {ratio.min():.1f}–{ratio.max():.1f}×); "
      f"HOG lighter (beyond a ±10 % tie band in every repeat): {'yes' if ratio.min() > 1.1 else 'no clear difference'}")

# %% [markdown]
# **What the numbers show** (the verdicts above are the measurement; the sentences say what they mean).
# - *Textures:* the pooled network features classify texture crops far more accurately than HOG,
#   on the other half of each picture and under both shifts. This is a statement about describing
#   **texture**, not about semantics: four textures are told apart by local statistics.
# - *Faces, trained on 20 pictures:* the closest thing here to a semantic task. The network's
#   features are better, by a small margin (the verdict line); HOG was designed for exactly this
#   kind of rigid shape.
# - *Headroom:* with 5 small training crops per texture neither feature is near perfect on clean
#   crops (the means above), so the clean column ranks the two as well as the shifted ones do.
# - *Light:* HOG needs no weights, is cheaper per crop (the timing line) and shorter (324 numbers
#   per 32×32 crop against 1280).
# - *Across domains:* HOG is exactly invariant to colour inversion (its drop is zero: the gradient
#   changes sign, its magnitude and *unsigned* orientation do not), while the network loses accuracy;
#   the robustness lines compare the drops. The network stays more accurate in every texture column
#   — its lead comes from being better, not from being more robust. A shift that changes the
#   *content* (a new kind of texture, a new viewpoint) is where hand-made features are expected to
#   fail; these offline pictures do not let us measure that.
#
# ## Pitfalls
# - **Convolution vs cross-correlation.** `fl.conv2d` does not flip the kernel; `scipy.ndimage.convolve`
#   does, which turns $g_x$ into $-g_x$ for the antisymmetric Sobel kernel. `ndi.correlate` is the
#   deep-learning operation.
# - **Conventions differ between libraries.** skimage divides Sobel by 4 and Scharr by 16, pads by
#   reflection, names the filter after the *edge* (`sobel_h` finds horizontal edges, i.e. $g_y$), and
#   uses $[-1, 0, 1]$ for HOG; a comparison must match them, or look at the interior only.
# - **Rows point down.** With $y$ downwards, $\operatorname{atan2}(g_y, g_x)$ turns clockwise on
#   screen; skimage's `hog` uses (row, col) and the same angle.
# - **Unsigned vs signed orientation.** HOG folds $\theta$ into 0–180°, so a dark-to-light edge and a
#   light-to-dark one vote alike — which is exactly why HOG did not care about the colour inversion
#   above. Degrees vs radians: `np.arctan2` returns radians.
# - **Magnitude votes, not counts.** A histogram of orientations alone gives noise in flat regions
#   as much weight as a strong edge.
# - **A 3×3 "Gabor" match means little** without a baseline: random kernels match too.
#
# **Exercise:** `exercises/11_classic_features.ipynb` — Sobel as a convolution, magnitude and
# unsigned orientation, and a HOG cell histogram, used on a real picture next to the network.
