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
# # 10 — Feature distance: the Fréchet distance (FID) between two sets of pictures
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - explain why the features of an ImageNet classifier, not pixels, are used to compare a set of
#   generated pictures with a set of real ones, and why the last pooling layer is the usual choice;
# - derive the Fréchet (2-Wasserstein) distance between two Gaussians, check its 1-D closed form,
#   and write it from scratch with `scipy.linalg.sqrtm` (asserted equal to `fl.frechet_distance`);
# - *measure* that the distance grows with blur, noise and JPEG strength, against the distance
#   between two sets of real pictures and against a pixel baseline;
# - *measure* how the layer, the number of samples and the resize method change the number — and
#   why a distance is only comparable to one computed in exactly the same way.
#
# **Prerequisites:** `05_feature_maps` (`fl.extract`, layer names), `07_embeddings_retrieval`
# (`fl.embed`: one pooled vector per picture).
# **Run time:** about 20 s on a 2-core CPU (2,400 forward passes at 80×80 px).
#
# A generator (a GAN, a diffusion model) makes pictures that have no "true" partner: there is no
# pair to compare pixel by pixel. What we can compare is two **sets**: are the generated pictures
# distributed like real ones? Pixels are a poor space for that — a picture shifted by two pixels is
# far away in pixel space, and a blurred picture is close. So each picture is first mapped to a
# feature vector by a network trained on ImageNet: its deep layers have learned to respond to
# objects, parts and textures and to ignore small shifts. The **last pooling layer** (the global
# average before the classifier) is the usual choice: one vector per picture, spatial position
# averaged out, rich (1280 numbers for Lite0, 2048 for Inception-v3), but not yet squeezed into the
# 1000 ImageNet classes of the logits.
#
# Each set becomes a cloud of $N$ points in $\mathbb{R}^D$. Fit a Gaussian to each cloud — mean
# $\mu$, covariance $\Sigma$ — and measure the distance between the two Gaussians with the
# **Fréchet distance** (Heusel et al., 2017, who called it FID on Inception-v3 features):
#
# $$d^2 = \|\mu_a-\mu_b\|^2 + \mathrm{Tr}\Big(\Sigma_a+\Sigma_b-2\,(\Sigma_a\Sigma_b)^{1/2}\Big).$$
#
# **Where it comes from.** The Fréchet (or 2-Wasserstein) distance between two distributions is the
# least mean squared distance $\mathbb{E}\|X-Y\|^2$ over all ways of pairing $X\sim a$ with
# $Y\sim b$ (all joint distributions with these two marginals). Expanding the square,
# $\mathbb{E}\|X-Y\|^2 = \|\mu_a-\mu_b\|^2 + \mathrm{Tr}\,\Sigma_a + \mathrm{Tr}\,\Sigma_b -
# 2\,\mathrm{Tr}\,C$, where $C = \mathrm{Cov}(X, Y)$ is the only thing the pairing controls. For
# Gaussians the largest possible $\mathrm{Tr}\,C$ is
# $\mathrm{Tr}\,(\Sigma_a^{1/2}\Sigma_b\Sigma_a^{1/2})^{1/2}$, which equals
# $\mathrm{Tr}\,(\Sigma_a\Sigma_b)^{1/2}$ (the two matrices have the same eigenvalues). In 1-D this
# is easy to see: $\mathrm{Cov}(X, Y) \le \sigma_a\sigma_b$ (Cauchy–Schwarz), reached by pairing
# each $x$ with $y = \mu_b + \frac{\sigma_b}{\sigma_a}(x-\mu_a)$ — the smallest with the smallest.
# So in 1-D:
# $d^2 = (\mu_a-\mu_b)^2 + \sigma_a^2 + \sigma_b^2 - 2\sigma_a\sigma_b = (\mu_a-\mu_b)^2 + (\sigma_a-\sigma_b)^2$.
#
# Two conventions to keep in mind: "FID" is $d^2$, the *squared* distance (no square root is
# taken), and the mean term is squared too.

# %%
# %matplotlib inline
import io
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

import featlab as fl

t0 = time.time()


def pytorch_fid_value(a, b):
    """The same distance by pytorch-fid, an independent implementation (a test dependency that
    `make lab` installs); None where it is missing, or broken by a newer SciPy."""
    try:
        from pytorch_fid.fid_score import calculate_frechet_distance
        return calculate_frechet_distance(*fl.feature_stats(a), *fl.feature_stats(b))
    except (ImportError, TypeError):
        return None

torch.manual_seed(0)
rng = np.random.default_rng(0)
plt.rcParams["figure.dpi"] = 72
model = fl.load_model("efficientnet_lite0")


# %% [markdown]
# ## The 1-D case: the closed form, and the pairing that achieves it
#
# Three ways to the same number for two 1-D Gaussians: the closed form; `fl.frechet_distance_from_stats`
# on 1×1 "covariance matrices"; and the definition itself — draw many samples from each, pair them
# smallest-with-smallest (sort both) and average the squared differences.

# %%
# NBVAL_CHECK_OUTPUT
def frechet_1d(mu_a, sigma_a, mu_b, sigma_b):
    return (mu_a - mu_b) ** 2 + (sigma_a - sigma_b) ** 2

print("  mu_a sd_a  mu_b sd_b | closed form | fl (1x1 matrices) | sorted samples")
for mu_a, sd_a, mu_b, sd_b in [(0, 1, 0, 1), (0, 1, 2, 1), (0, 1, 0, 3), (1, 2, -1, 0.5)]:
    closed = frechet_1d(mu_a, sd_a, mu_b, sd_b)
    ours = fl.frechet_distance_from_stats([mu_a], [[sd_a**2]], [mu_b], [[sd_b**2]])
    xa = np.sort(rng.normal(mu_a, sd_a, 200_000))
    xb = np.sort(rng.normal(mu_b, sd_b, 200_000))
    paired = np.mean((xa - xb) ** 2)                # the best pairing in 1-D: sorted order
    assert abs(ours - closed) < 1e-12 and abs(paired - closed) < 0.02 * (1 + closed)
    print(f"  {mu_a:4} {sd_a:4} {mu_b:5} {sd_b:4} | {closed:11.3f} | {ours:17.3f} | {paired:14.3f}")


# %% [markdown]
# ## From scratch: mean, covariance and a matrix square root
#
# Eight lines: the mean of each set, its covariance (`np.cov`, rows are samples, so
# `rowvar=False`; it divides by $N-1$), and the square root of the product $\Sigma_a\Sigma_b$ with
# `scipy.linalg.sqrtm`. $\Sigma_a\Sigma_b$ is not symmetric, and rounding gives its square root tiny
# imaginary parts: keep the real part. We test it on two synthetic 6-D Gaussian clouds with
# *different, non-commuting* covariances, against `fl.frechet_distance` and against the
# implementation in the `pytorch-fid` package. The last lines show why the product matters:
# $\mathrm{Tr}(\Sigma_a^{1/2}\Sigma_b^{1/2})$, the tempting shortcut, is a different number unless
# the two matrices commute.

# %%
# NBVAL_CHECK_OUTPUT
def frechet_from_scratch(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """(Na, D), (Nb, D) -> ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))."""
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    cov_a = np.cov(features_a, rowvar=False)                  # (D, D), divides by N - 1
    cov_b = np.cov(features_b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)                  # may come back complex
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root.real))

D = 6
mix_a, mix_b = rng.normal(size=(D, D)), rng.normal(size=(D, D))
cloud_a = rng.normal(size=(2000, D)) @ mix_a                 # covariance mix_a.T @ mix_a
cloud_b = rng.normal(size=(2000, D)) @ mix_b + 0.5           # another covariance, shifted mean
scratch = frechet_from_scratch(cloud_a, cloud_b)
ours = fl.frechet_distance(cloud_a, cloud_b)
ref = pytorch_fid_value(cloud_a, cloud_b)
assert abs(scratch - ours) < 1e-8 * ours and (ref is None or abs(ref - ours) < 1e-8 * ours)
print(f"from scratch {scratch:.4f} | fl.frechet_distance {ours:.4f} | "
      + (f"pytorch-fid {ref:.4f}" if ref is not None else "pytorch-fid not available here"))

cov_a, cov_b = mix_a.T @ mix_a, mix_b.T @ mix_b
right = np.trace(scipy.linalg.sqrtm(cov_a @ cov_b)).real
shortcut = np.trace(scipy.linalg.sqrtm(cov_a) @ scipy.linalg.sqrtm(cov_b)).real
print(f"Tr (Sa Sb)^1/2 = {right:.3f}   Tr (Sa^1/2 Sb^1/2) = {shortcut:.3f}   "
      f"commute? {np.allclose(cov_a @ cov_b, cov_b @ cov_a)}")

# %% [markdown]
# `fl.frechet_distance(features_a, features_b)` fits the two Gaussians (`fl.feature_stats`: mean and
# unbiased covariance in float64) and calls `fl.frechet_distance_from_stats`, which computes the
# trace as $\mathrm{Tr}(\Sigma_a^{1/2}\Sigma_b\Sigma_a^{1/2})^{1/2}$: the same eigenvalues, but of a
# *symmetric* matrix, so the result is real by construction and no complex arithmetic is needed.
#
# ## The real thing: real crops and degraded copies
#
# Our "real pictures" are random square crops (128–256 px on a side) of eleven sample pictures
# (`fl.sample_images()` without the binary horse silhouette), resized to 80×80 px with PIL's
# bicubic filter. Two independent sets of $N = 160$ crops each: **A** is the reference, **B** plays
# the generator. The "generated" sets are copies of B degraded at three strengths:
# Gaussian blur (radius 1, 2, 4 px), Gaussian noise (σ = 8, 16, 32 grey levels) and JPEG (quality
# 30, 10, 3). One more copy of B is not damaged at all but turned **upside down**: the same pixels,
# colours and textures, in an arrangement real photographs rarely have. The distance between A and
# B itself is the **floor**: two sets from the same distribution still differ, because each has only
# 160 samples.
#
# The crops are already 80×80, so we normalise them directly instead of calling `fl.preprocess`
# (which would upsample them to 224×224 — almost eight times the computation for no new detail).
# Small inputs keep the notebook fast on a CPU; they also make the numbers smaller-scale than at
# 224 px, another reason they are only comparable among themselves.

# %%
# NBVAL_CHECK_OUTPUT
PX, N = 80, 160
names = [n for n in fl.sample_images() if n != "horse"]
pictures = {n: fl.load_image(n) for n in names}

def random_crops(n: int) -> list[Image.Image]:
    """n square crops of random size (128-256 px) and position from the sample pictures."""
    crops = []
    for _ in range(n):
        im = pictures[names[rng.integers(len(names))]]
        s = min(int(rng.integers(128, 257)), *im.size)
        left, top = int(rng.integers(0, im.size[0] - s + 1)), int(rng.integers(0, im.size[1] - s + 1))
        crops.append(im.crop((left, top, left + s, top + s)))
    return crops

PIL_FILTERS = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}

def resize(crops: list[Image.Image], how: str = "bicubic") -> list[np.ndarray]:
    """Crops -> (PX, PX, 3) uint8 arrays, by a PIL filter or by torch bilinear without antialiasing."""
    if how in PIL_FILTERS:
        return [np.array(c.resize((PX, PX), PIL_FILTERS[how])) for c in crops]
    out = []
    for c in crops:                                   # how == "torch bilinear, no antialias"
        t = torch.from_numpy(np.array(c)).permute(2, 0, 1)[None].float()
        t = F.interpolate(t, size=(PX, PX), mode="bilinear", align_corners=False, antialias=False)
        out.append(t[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy())
    return out

def blur(a: np.ndarray, radius: float) -> np.ndarray:
    return np.array(Image.fromarray(a).filter(ImageFilter.GaussianBlur(radius)))

def noise(a: np.ndarray, sigma: float) -> np.ndarray:
    return np.clip(a + rng.normal(0, sigma, a.shape), 0, 255).round().astype(np.uint8)

def jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=quality)
    return np.array(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))

DEGRADE = {"blur": (blur, [1, 2, 4]), "noise": (noise, [8, 16, 32]), "jpeg": (jpeg, [30, 10, 3])}
crops_a, crops_b = random_crops(N), random_crops(N)
sets = {"real A": resize(crops_a), "real B": resize(crops_b)}
for kind, (fn, strengths) in DEGRADE.items():
    for s in strengths:
        sets[f"{kind} {s}"] = [fn(a, s) for a in sets["real B"]]
sets["upside-down"] = [a[::-1].copy() for a in sets["real B"]]   # same pixels, other arrangement
RESIZES = ["bilinear", "nearest", "torch bilinear, no antialias"]
for how in RESIZES:
    sets[how] = resize(crops_b, how)
print(f"{len(sets)} sets of {N} pictures, {PX}x{PX} px:", ", ".join(sets))

# %%
show = ["real B"] + [f"{k} {s}" for k, (_, ss) in DEGRADE.items() for s in ss] + ["upside-down"]
pick = int(np.argmax([a.std(axis=2).mean() for a in sets["real B"]]))   # the most colourful crop
fig, axes = plt.subplots(1, len(show), figsize=(11, 1.5))
for ax, k in zip(axes, show):
    ax.imshow(sets[k][pick]); ax.set_title(k, fontsize=8); ax.axis("off")
plt.tight_layout(); plt.show()

# %% [markdown]
# Now the only expensive step: one forward pass per picture (2,400 of them), keeping five layers at
# once — `block3` (40 channels), `block5` (112), `block6` (192), `block7` (320) and `avgpool` (1280,
# the last pooling layer), each global-average-pooled to one vector per picture by `fl.embed`. Note
# `normalize=False`: `fl.embed` L2-normalises by default (right for cosine retrieval, notebook 07),
# but the Fréchet distance is defined on the raw features. Everything after this cell reuses these
# vectors.

# %%
# NBVAL_CHECK_OUTPUT
LAYERS = ["block3", "block5", "block6", "block7", "avgpool"]
prep = fl.preprocess_for(model)
mean, std = torch.tensor(prep.mean).view(1, 3, 1, 1), torch.tensor(prep.std).view(1, 3, 1, 1)

def to_input(arrays: list[np.ndarray]) -> torch.Tensor:
    """(H, W, 3) uint8 pictures -> normalised (N, 3, H, W), no resize or crop."""
    t = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    return ((t - mean) / std).to(fl.device())

feats = {L: {} for L in LAYERS}                       # feats[layer][set] = (N, D) float64 array
for k, arrays in sets.items():
    vectors = fl.embed(model, to_input(arrays), LAYERS, normalize=False, batch_size=80)
    for L in LAYERS:
        feats[L][k] = vectors[L].cpu().double().numpy()
print("one vector per picture:", {L: feats[L]["real A"].shape for L in LAYERS})

a, b = feats["block5"]["real A"], feats["block5"]["noise 16"]
scratch, ours = frechet_from_scratch(a, b), fl.frechet_distance(a, b)
ref = pytorch_fid_value(a, b)
assert abs(scratch - ours) < 1e-6 * ours and (ref is None or abs(ref - ours) < 1e-6 * ours)
print(f"block5, real A vs noise 16: from scratch {scratch:.3f} | fl {ours:.3f} | "
      + (f"pytorch-fid {ref:.3f}" if ref is not None else "pytorch-fid not available here"))


# %% [markdown]
# ## Measure (a): does the distance grow with the damage?
#
# The table gives the distance of each set to **real A**, at `block5` — 112 dimensions, the widest
# layer for which $N = 160$ samples give full-rank covariances (more on that in (b)). The first row,
# **real B**, is the floor; `× floor` divides by it. The last two columns are a **pixel baseline**:
# the same distance on the pictures themselves, area-averaged to 6×6×3 = 108 numbers (about
# `block5`'s 112), so that the covariances are full-rank there too.

# %%
# NBVAL_CHECK_OUTPUT
def pixels(arrays: list[np.ndarray]) -> np.ndarray:
    """(PX, PX, 3) uint8 pictures -> (N, 108): 6x6 area averages per colour channel, in [0, 1]."""
    t = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    return F.adaptive_avg_pool2d(t, 6).flatten(1).double().numpy()

pix = {k: pixels(arrays) for k, arrays in sets.items()}
fd = {k: fl.frechet_distance(feats["block5"]["real A"], feats["block5"][k]) for k in sets if k != "real A"}
fd_pix = {k: fl.frechet_distance(pix["real A"], pix[k]) for k in fd}
floor, floor_pix = fd["real B"], fd_pix["real B"]
print("distance to real A    block5  x floor |  pixels  x floor")
for k in show:
    print(f"  {k:18s} {fd[k]:8.1f} {fd[k] / floor:7.2f}  | {fd_pix[k]:7.3f} {fd_pix[k] / floor_pix:7.2f}")
for kind, (_, strengths) in DEGRADE.items():
    values = [floor] + [fd[f"{kind} {s}"] for s in strengths]
    pvalues = [floor_pix] + [fd_pix[f"{kind} {s}"] for s in strengths]
    print(f"{kind:5s}: block5 grows with strength: {bool(np.all(np.diff(values) > 0))};"
          f" pixels grow: {bool(np.all(np.diff(pvalues) > 0))}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8.5, 2.8))
for kind, (_, strengths) in DEGRADE.items():
    axes[0].plot(range(4), [fd[k] for k in ["real B"] + [f"{kind} {s}" for s in strengths]], "o-", label=kind)
    axes[1].plot(range(4), [fd_pix[k] / floor_pix for k in ["real B"] + [f"{kind} {s}" for s in strengths]],
                 "o-", label=kind)
axes[0].axhline(floor, color="grey", ls="--", lw=1, label="floor (real B)")
axes[1].axhline(1, color="grey", ls="--", lw=1)
axes[0].set(title="Lite0 block5 features", ylabel="Fréchet distance to real A")
axes[1].set(title="pixel baseline (6×6×3)", ylabel="distance / floor")
for ax in axes:
    ax.set_xticks(range(4), ["none", "weak", "medium", "strong"]); ax.set_xlabel("strength")
axes[0].legend(fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# Read the table. At `block5` every degradation moves the set away from the real pictures, and
# the stronger the damage, the larger the distance: blur 2.72 → 6.20 → 10.57 times the floor,
# noise 3.44 → 4.79 → 6.91, JPEG 2.93 → 5.90 → 11.98. Even the weakest level (blur radius 1,
# noise σ = 8, JPEG quality 30) is 2.7 to 3.4 times the floor.
#
# The pixel baseline is blind to blur and noise: blurring and zero-mean noise hardly change 6×6
# averages, and their distances even dip slightly *below* the floor (0.98–0.99). Only the blockiest
# JPEG (quality 3: 1.11) registers. A distance on pixels would call a blurred set as good as a
# real one — this is why the features of a trained network are used. The upside-down copies are
# 1.94 times the floor at `block5`; the pixel baseline sees them too (1.81), because the 6×6
# averages keep the layout, and turning the pictures over changes it.
#
# ## Measure (b): which layer?
#
# The same comparison at five layers. Two things change with the layer. First the **scale**:
# each layer's features have their own magnitude, so the raw numbers of different layers cannot be
# compared — only each layer's ratio to its own floor. Second the **dimension** $D$: a covariance
# estimated from $N$ samples has rank at most $N-1$, so with $N \le D$ it is singular and the
# distance is dominated by estimation noise. `fl.frechet_distance` warns when that happens; the
# cell collects the warnings and prints the first one.

# %%
# NBVAL_CHECK_OUTPUT
compare = ["blur 4", "noise 32", "jpeg 3", "upside-down"]
print(f"N = {N} per set. Distance to real A as a multiple of the layer's floor:")
print("layer      D  N > D   floor | " + " ".join(f"{k:>11s}" for k in compare) + " | noise 32 / upside-down")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for L in LAYERS:
        A = feats[L]["real A"]
        f0 = fl.frechet_distance(A, feats[L]["real B"])
        r = {k: fl.frechet_distance(A, feats[L][k]) / f0 for k in compare}
        print(f"{L:8s} {A.shape[1]:4d}  {str(N > A.shape[1]):5s} {f0:7.1f} | "
              + " ".join(f"{r[k]:11.2f}" for k in compare) + f" | {r['noise 32'] / r['upside-down']:6.2f}")
print(f"{len(caught)} warnings, the first: {caught[0].category.__name__}: {caught[0].message}")

# %% [markdown]
# Three things to read.
#
# 1. Every layer puts every changed set above its floor (all ratios > 1).
# 2. **The balance shifts with depth.** `block3` sees the σ = 32 noise 27 times more strongly than
#    the upside-down pictures; at `avgpool` the two count about the same (1.21). Shallow layers
#    measure pixel-level damage; deep layers weigh what is in the picture and how it is arranged as
#    much as the damage. That is the reason FID uses the last pooling layer: the question is
#    "do these look like real photographs?", and deep features still see the damage here (2.2 to
#    3.4 times the floor at `avgpool`) without letting it dominate.
# 3. **The price of depth is dimension.** `block6`, `block7` and `avgpool` have more channels than
#    our 160 samples, so their covariances are singular (rank ≤ 159) and, as the warning says, the
#    distance is then mostly estimation noise: their ratios are the least trustworthy numbers in the
#    table. With 160 samples `block5` is the widest layer we can trust; `avgpool` would need several
#    times 1280 pictures, which is one reason FID is computed on 10,000 to 50,000. Also note the raw
#    floors (16.0 at `block3`, 467.6 at `avgpool`): each layer has its own scale, so never compare
#    numbers across layers.
#
# **Precision.** All of this is float64 — `fl.feature_stats` converts. The cell below recomputes
# the distance between real A and the σ = 16 noisy set with the covariances in float32 (what you get by calling `torch.cov` on float32
# GPU features) and compares the from-scratch `sqrtm` version with `fl` at each layer.

# %%
# NBVAL_CHECK_OUTPUT
print("real A vs noise 16   fl (float64) | sqrtm, float64 | sqrtm, float32 covariances")
for L in LAYERS[1:4]:
    fa, fb = feats[L]["real A"], feats[L]["noise 16"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = fl.frechet_distance(fa, fb)
    (mu_a, cov_a), (mu_b, cov_b) = fl.feature_stats(fa), fl.feature_stats(fb)
    root64 = scipy.linalg.sqrtm(cov_a @ cov_b)
    d64 = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root64.real)
    ca32, cb32 = cov_a.astype(np.float32), cov_b.astype(np.float32)
    root32 = scipy.linalg.sqrtm(ca32 @ cb32)
    d32 = ((mu_a - mu_b) ** 2).sum() + np.trace(ca32 + cb32 - 2 * root32.real)
    change = round(100 * (d32 - exact) / exact, 2) + 0.0          # + 0.0: no "-0.00"
    print(f"  {L:8s} {exact:16.2f} | {d64:14.2f} | {d32:9.1f}  ({change:+.2f} %)")

# %% [markdown]
# The from-scratch `sqrtm` version agrees with `fl` to the printed digits even at `block6` and
# `block7`, where the covariances are singular: on these features `scipy.linalg.sqrtm` copes, and we
# could not make it fail on the offline data (pytorch-fid guards against that case by adding 1e-6 to
# the diagonals when `sqrtm` returns non-finite values). Float32 covariances, however, shift the
# distance by −0.18 % at `block6` and −0.73 % at `block7` — small, but not zero, and larger where
# the covariances are singular. Compute the statistics in float64.
#
# ## Measure (c): the number of samples
#
# The floor is not a constant: it depends on $N$. Pool the 320 real crops (A and B), split them at
# random into two disjoint halves of $n$ pictures, and compute the distance between the halves —
# ten random splits per $n$. Both halves come from the *same* distribution, so the true distance is
# 0; whatever we measure is bias from estimating $\mu$ and $\Sigma$ from $n$ samples. For
# comparison, the same for real A against the σ = 16 noisy copies of B, subsampled to $n$.

# %%
# NBVAL_CHECK_OUTPUT
pool = np.concatenate([feats["block5"]["real A"], feats["block5"]["real B"]])
noisy = feats["block5"]["noise 16"]
sizes, same, vs_noise = [20, 40, 80, 160], {}, {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")          # n <= 112 warns: that is the point here
    for n in sizes:
        same[n], vs_noise[n] = [], []
        for _ in range(10):
            order = rng.permutation(len(pool))
            same[n].append(fl.frechet_distance(pool[order[:n]], pool[order[n:2 * n]]))
            ia, ib = rng.permutation(N)[:n], rng.permutation(N)[:n]
            vs_noise[n].append(fl.frechet_distance(feats["block5"]["real A"][ia], noisy[ib]))
print("   n  same distribution   n x same   real A vs noise 16   difference")
for n in sizes:
    s, v = np.array(same[n]), np.array(vs_noise[n])
    print(f" {n:3d}  {s.mean():7.1f} ± {s.std():5.1f}   {n * s.mean():8.0f}   {v.mean():7.1f} ± {v.std():5.1f}"
          f"     {v.mean() - s.mean():6.1f}")

# %%
fig, ax = plt.subplots(figsize=(4.5, 2.8))
for data, label in [(same, "same distribution (two halves)"), (vs_noise, "real A vs noise 16")]:
    m = np.array([np.mean(data[n]) for n in sizes]); s = np.array([np.std(data[n]) for n in sizes])
    ax.errorbar(sizes, m, yerr=s, marker="o", capsize=3, label=label)
ax.axvline(feats["block5"]["real A"].shape[1], color="grey", ls=":", lw=1, label="n = D = 112")
ax.set(xscale="log", xlabel="samples per set n", ylabel="Fréchet distance (block5)")
ax.minorticks_off(); ax.set_xticks(sizes, [str(n) for n in sizes]); ax.legend(fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# The floor shrinks roughly as $1/n$: from $n = 40$ to $n = 160$, $n$ × distance stays between
# 20,115 and 21,982 (at $n = 20$ it is 16,547). At $n = 20$, two halves of the *same* real
# pictures are 827.3 apart — more than real A and the σ = 16 noisy set at $n = 160$ (526.8). A
# distance therefore means something only next to distances computed with the same $n$. The bias
# is roughly additive: the noisy set sits 335 to 389 above the same-distribution value for
# $n \ge 40$ (at $n = 20$, far below $D = 112$, only 229). At $n = 160$ the noisy column has no
# spread because the "subsample" is the whole set; the A-vs-B floor of (a), 110.1, is one split of
# this kind, 1.2 standard deviations below the mean 137.4.
#
# ## Measure (d): the resize method
#
# Before the network, every picture is resized to its input size. Here the same B crops are
# resized to 80×80 with four methods: PIL bicubic (how A and B were made), PIL bilinear, PIL
# nearest-neighbour, and `torch.nn.functional.interpolate` bilinear **without** antialiasing (a
# common default in tensor pipelines). Two distances for each: to real A (other crops), and to the
# *same* crops resized bicubically, which isolates the effect of the resize alone.

# %%
# NBVAL_CHECK_OUTPUT
print("B resized with              to real A  x floor | to B (bicubic)")
for how in ["real B"] + RESIZES:
    to_a = fl.frechet_distance(feats["block5"]["real A"], feats["block5"][how])
    to_b = fl.frechet_distance(feats["block5"]["real B"], feats["block5"][how])
    label = "bicubic (= real B)" if how == "real B" else how
    print(f"  {label:28s} {to_a:7.1f} {to_a / floor:7.2f}  | {to_b:7.1f}")

# %%
big = int(np.argmax([c.size[0] for c in crops_b]))       # the crop shrunk the most
fig, axes = plt.subplots(1, 4, figsize=(8, 2.3))
for ax, how in zip(axes, ["real B"] + RESIZES):
    ax.imshow(sets[how][big][:48, :48], interpolation="nearest")
    ax.set_title("bicubic" if how == "real B" else how.replace(", ", "\n"), fontsize=8); ax.axis("off")
plt.suptitle(f"top-left 48×48 px of one crop, {crops_b[big].size[0]} px -> {PX} px", fontsize=9)
plt.tight_layout(); plt.show()

# %% [markdown]
# The resize method alone moves the number. Nearest-neighbour sampling, which aliases fine texture
# (see the crop above), puts the B crops 63.8 away from the same crops resized bicubically, and
# raises their distance to real A from 110.1 to 163.9 (1.49 times the floor) without any change to
# what the pictures show. Torch bilinear without antialiasing moves them by 28.7, PIL bilinear
# (which antialiases) by 10.5: the same filter, almost three times the shift without
# antialiasing. These shifts are smaller than our weakest degradation (noise σ = 8: 378.6 to
# real A), but the nearest-neighbour one (63.8) is more than half the floor (110.1). Parmar et
# al. (2022, "clean-fid") report the same effect for Inception FID. Resize the real and the
# generated pictures with the same, antialiased method.
#
# ## These are Lite0 numbers, not FID
#
# Every distance in this notebook is a Fréchet distance between **EfficientNet-Lite0** features of
# 80×80-px crops, with a few hundred samples. The "FID" that papers report is the same formula on
# **Inception-v3** pool features (2048-D) of 299×299 pictures, usually with 10,000–50,000 samples
# and a specific resize. The numbers above cannot be compared with published FIDs, nor with each
# other unless the network, layer, input size, resize method, JPEG handling and $N$ are all the
# same. (The Inception weights need a download, so this course does not compute real FID.)
#
# ## Pitfalls
#
# - **Comparing numbers computed differently.** The layer changes the scale (b), $N$ changes the
#   bias (c), the resize method changes the value (d). Report them with every number, and compare
#   only numbers computed the same way — ideally with the same reference statistics.
# - **Too few samples.** With $N \le D$ the covariances are singular and the distance is mostly
#   noise; `fl.frechet_distance` warns. Use $N$ several times $D$, a narrower layer, or fewer
#   dimensions (PCA fitted on the real set). The bias shrinks with $N$ but does not vanish: compare
#   at equal $N$. (Chong & Forsyth, 2020, extrapolate to $N\to\infty$; KID, Bińkowski et al., 2018,
#   is an unbiased alternative.)
# - **Product, not product of roots.** $\mathrm{Tr}(\Sigma_a\Sigma_b)^{1/2} \ne
#   \mathrm{Tr}(\Sigma_a^{1/2}\Sigma_b^{1/2})$ unless the covariances commute — and real ones don't.
# - **The conventions:** the factor 2 on the trace term, the *squared* mean difference, the
#   *unbiased* covariance ($N-1$), no square root of the total.
# - **`sqrtm` returns complex numbers.** Keep the real part (check that the imaginary part is
#   tiny), or use the symmetric form $\mathrm{Tr}(\Sigma_a^{1/2}\Sigma_b\Sigma_a^{1/2})^{1/2}$ as
#   `fl` does. Compute in float64.
# - **Normalised embeddings.** `fl.embed` L2-normalises by default; pass `normalize=False` for the
#   Fréchet distance, as FID uses the raw pool features.
# - **A small distance is not "realistic".** The distance only compares two Gaussians' means and
#   covariances: sets with the same statistics but very different pictures get a small distance,
#   and a generator that copies its training pictures scores perfectly.
#
# **Exercise:** `exercises/10_feature_distance.ipynb` — write the mean and covariance of a feature
# set, the mean term, the Fréchet distance from means and covariances, and the 1-D closed form.

# %%
print(f"notebook run time: {time.time() - t0:.0f} s")
