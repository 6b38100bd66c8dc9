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
# - explain why the features of an ImageNet classifier are used to compare a set of generated
#   pictures with a set of real ones, and what a pixel baseline sees as well;
# - derive the Fréchet (2-Wasserstein) distance between two Gaussians, check its 1-D closed form,
#   and write it from scratch with `scipy.linalg.sqrtm` (asserted equal to `fl.frechet_distance`);
# - *measure* that the distance grows with blur, noise and JPEG strength, against the distance
#   between two sets of real pictures and against a pixel-patch baseline, with bootstrap intervals;
# - *measure* how the layer, the number of samples and the resize method change the number — and
#   why a distance is only comparable to one computed in exactly the same way.
#
# **Prerequisites:** `05_feature_maps` (`fl.extract`, layer names), `07_embeddings_retrieval`
# (`fl.embed`: one pooled vector per picture).
# **Run time:** about 40 s on a 2-core CPU (4,800 forward passes at 80×80 px, a bootstrap).
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
from threadpoolctl import threadpool_limits

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
# bicubic filter. Two independent sets of $N = 320$ crops each: **A** is the reference, **B** plays
# the generator. The "generated" sets are copies of B degraded at three strengths:
# Gaussian blur (radius 1, 2, 4 px), Gaussian noise (σ = 8, 16, 32 grey levels) and JPEG (quality
# 30, 10, 3). One more copy of B is not damaged at all but turned **upside down**: the same pixels,
# colours and textures, in an arrangement real photographs rarely have. The distance between A and
# B itself is the **floor**: two sets from the same distribution still differ, because each has only
# 320 samples.
#
# The crops are already 80×80, so we normalise them directly instead of calling `fl.preprocess`
# (which would upsample them to 224×224 — almost eight times the computation for no new detail).
# Small inputs keep the notebook fast on a CPU; they also make the numbers smaller-scale than at
# 224 px, another reason they are only comparable among themselves.

# %%
# NBVAL_CHECK_OUTPUT
PX, N = 80, 320
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
# Now the only expensive step: one forward pass per picture (4,800 of them), keeping five layers at
# once — `block3` (40 channels), `block5` (112), `block6` (192), `block7` (320) and `avgpool` (1280,
# the last pooling layer), each global-average-pooled to one vector per picture by `fl.embed`. Only
# the sets that measure (b) compares need all five; the others stop at `block5` (the cell after).
# Note `normalize=False`: `fl.embed` L2-normalises by default (right for cosine retrieval, notebook
# 07), but the Fréchet distance is defined on the raw features. Everything after this reuses these
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
ALL_LAYERS = ["real A", "real B", "blur 4", "noise 16", "noise 32", "jpeg 3", "upside-down"]   # used in (b)


def embed_sets(keys, layers):
    for k in keys:
        vectors = fl.embed(model, to_input(sets[k]), layers, normalize=False, batch_size=80)
        for L in layers:
            feats[L][k] = vectors[L].cpu().double().numpy()


embed_sets(ALL_LAYERS, LAYERS)
print("one vector per picture:", {L: feats[L]["real A"].shape for L in LAYERS})

a, b = feats["block5"]["real A"], feats["block5"]["noise 16"]
scratch, ours = frechet_from_scratch(a, b), fl.frechet_distance(a, b)
ref = pytorch_fid_value(a, b)
assert abs(scratch - ours) < 1e-6 * ours and (ref is None or abs(ref - ours) < 1e-6 * ours)
print(f"block5, real A vs noise 16: from scratch {scratch:.3f} | fl {ours:.3f} | "
      + (f"pytorch-fid {ref:.3f}" if ref is not None else "pytorch-fid not available here"))

# %%
embed_sets([k for k in sets if k not in ALL_LAYERS], ["block3", "block5"])   # the pass stops at block5


# %% [markdown]
# ## Measure (a): does the distance grow with the damage — and could pixels have told us?
#
# The table gives the distance of each set to **real A**, at `block5` — 112 dimensions, a layer
# for which $N = 320$ samples give full-rank covariances (more on that in (b)). The first row,
# **real B**, is the floor; `× floor` divides by it.
#
# A **pixel baseline** that could win: the same distance on **full-resolution pixel patches**.
# From every picture we cut 8 patches of 4×4 pixels × 3 colours = 48 numbers, at the same random
# positions in every set (2,560 patches per set). Blur lowers the contrast inside a patch, noise
# raises it, JPEG makes it blocky: the patch statistics see all three by construction. (A 6×6
# average of each picture, an earlier version of this baseline, cannot see blur or zero-mean noise
# at all — averages are what blur and noise leave unchanged.)
#
# **How sure are we?** Each set is one sample of 320 crops. A **paired bootstrap** redraws the
# pictures 100 times with replacement — A's indices, and one draw of B's indices shared by B and
# every copy made from B — and recomputes every distance. A redrawn set repeats some pictures, which
# adds about the same amount to every distance (the bias of measure (c)), so the interval is taken
# on the *excess over the floor*, $d(A^*, X^*) - d(A^*, B^*)$, divided by the floor: the brackets are
# the middle 95 % of its resamples, written as multiples of the floor. The last column compares the two
# measures at the job that matters, telling a damaged set from the floor: **better** if `block5`'s
# multiple of its floor is larger than the patches' (the 95 % interval of the difference excludes
# 0), **worse** if smaller, otherwise **no clear difference**.

# %%
# NBVAL_CHECK_OUTPUT
PATCH, PER_PIC = 4, 8
pos = rng.integers(0, PX - PATCH + 1, size=(N, PER_PIC, 2))      # picture i: the same 8 positions in every set


def patches(arrays: list[np.ndarray]) -> np.ndarray:
    """(PX, PX, 3) uint8 pictures -> (N, PER_PIC, 48): full-resolution 4x4x3 patches in [0, 1]."""
    win = np.lib.stride_tricks.sliding_window_view(np.stack(arrays), (PATCH, PATCH), axis=(1, 2))
    picked = win[np.arange(len(arrays))[:, None], pos[..., 0], pos[..., 1]]   # (N, PER_PIC, 3, 4, 4)
    return picked.reshape(len(arrays), PER_PIC, -1) / 255.0


def flat(x):
    return x.reshape(-1, x.shape[-1])               # (N, 8, 48) patches -> (8N, 48); (N, D) unchanged


space = {"block5": feats["block5"], "block3": feats["block3"],
         "patches": {k: patches(sets[k]) for k in show + ["real A"]}}
fd = {s: {k: fl.frechet_distance(flat(F["real A"]), flat(F[k])) for k in show} for s, F in space.items()}

R, WEAK = 100, ["blur 1", "noise 8", "jpeg 30"]
boot = {}                                            # boot[(space, reference, set)] = R distances
with threadpool_limits(1):                           # small matrices: one BLAS thread is fastest
    for _ in range(R):
        ia, ib = rng.integers(0, N, N), rng.integers(0, N, N)
        for s, F in space.items():
            st_a = fl.feature_stats(flat(F["real A"][ia]))
            for k in show:
                st_k = fl.feature_stats(flat(F[k][ib]))
                boot.setdefault((s, "real A", k), []).append(fl.frechet_distance_from_stats(*st_a, *st_k))
        st_b = fl.feature_stats(feats["block5"]["real B"][ib])          # (d): the same crops, treated otherwise
        for k in WEAK + RESIZES:
            st_k = fl.feature_stats(feats["block5"][k][ib])
            boot.setdefault(("block5", "real B", k), []).append(fl.frechet_distance_from_stats(*st_b, *st_k))
boot = {key: np.array(v) for key, v in boot.items()}


def ci(x):
    lo, hi = np.percentile(x, [2.5, 97.5])
    return f"[{lo:5.2f}, {hi:5.2f}]"


def verdict(samples, words=("better", "worse"), point=None):
    """From the 95 % interval of a difference: words[0] if it lies above 0, words[1] if below.
    With ``point``, the basic bootstrap interval 2·point − percentiles (it removes a shift of the samples)."""
    lo, hi = np.percentile(samples, [2.5, 97.5])
    if point is not None:
        lo, hi = 2 * point - hi, 2 * point - lo
    return words[0] if lo > 0 else words[1] if hi < 0 else "no clear difference"


def times_floor(s, k):
    """Bootstrap samples of d(A, k) / floor, as 1 + excess over the redrawn floor."""
    return 1 + (boot[(s, "real A", k)] - boot[(s, "real A", "real B")]) / fd[s]["real B"]


floor = fd["block5"]["real B"]
print(f"distance to real A, × floor  block5 (floor {floor:.1f})      pixel patches (floor {fd['patches']['real B']:.4f})"
      "   block5 vs patches")
blind = {"block5": [], "patches": []}
for k in show[1:]:
    cells = []
    for s in ("block5", "patches"):
        cells.append(f"{fd[s][k] / fd[s]['real B']:6.2f} {ci(times_floor(s, k))}")
        if np.percentile(times_floor(s, k), 2.5) <= 1:
            blind[s].append(k)
    v = verdict(times_floor("block5", k) - times_floor("patches", k))
    print(f"  {k:12s}                {cells[0]}       {cells[1]}       {v}")
for s in ("block5", "patches"):
    print(f"{s}: sets it cannot tell from the floor (interval reaches 1): {', '.join(blind[s]) or 'none'}")
for kind, (_, strengths) in DEGRADE.items():
    grows = {s: bool(np.all(np.diff([fd[s][k] for k in ["real B"] + [f"{kind} {x}" for x in strengths]]) > 0))
             for s in ("block5", "patches")}
    print(f"{kind:5s}: grows with strength at block5: {grows['block5']}; on pixel patches: {grows['patches']}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8.5, 2.8), sharey=True)
for ax, s, title in [(axes[0], "block5", "Lite0 block5 features"), (axes[1], "patches", "pixel patches (4×4×3)")]:
    for kind, (_, strengths) in DEGRADE.items():
        ks = ["real B"] + [f"{kind} {x}" for x in strengths]
        mid = np.array([fd[s][k] / fd[s]["real B"] for k in ks])
        lo, hi = np.array([np.percentile(times_floor(s, k), [2.5, 97.5]) for k in ks]).T
        ax.errorbar(range(4), mid, yerr=[np.maximum(mid - lo, 0), np.maximum(hi - mid, 0)], fmt="o-", capsize=3,
                    label=kind)
    ax.axhline(1, color="grey", ls="--", lw=1); ax.set_yscale("log")
    ax.set(title=title, xlabel="strength"); ax.set_xticks(range(4), ["none", "weak", "medium", "strong"])
axes[0].set_ylabel("distance / floor (95 % interval)"); axes[0].legend(fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# Read the table and the plot. At `block5` every degradation moves the set away from the real
# pictures, and the stronger the damage, the larger the distance; the intervals say this is not
# luck of the draw.
#
# **The pixel patches see the damage too.** Blur, noise and JPEG change the statistics of small
# patches, and a Fréchet distance on those statistics grows with the strength of each. So the
# claim of an earlier version of this notebook, "a distance on pixels would call a blurred set as
# good as a real one", was wrong: it held only for a pixel summary (6×6 averages) that is blind to
# blur by construction. The last column says, set by set, which measure separates the damage from
# the floor more strongly, and the answer depends on the damage: the patches are as good or better
# on blur and on the strongest noise; `block5` is better on weaker noise, on every JPEG level (the
# 8×8 JPEG blocks hardly show inside 4×4 patches) and on the upside-down copies. Those are what the
# patches cannot see: the same patches, re-arranged, have almost the same statistics — the interval
# reaches 1. That is where a network's features earn their place: they respond to what is in the
# picture and how it is arranged, not only to local texture.
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
cols = ["blur 4", "noise 32", "jpeg 3", "upside-down"]
print(f"N = {N} per set. Distance to real A as a multiple of the layer's floor:")
print("layer      D  N > D   floor | " + " ".join(f"{k:>11s}" for k in cols) + " | noise 32 / upside-down, above the floor")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for L in LAYERS:
        A = feats[L]["real A"]
        f0 = fl.frechet_distance(A, feats[L]["real B"])
        r = {k: fl.frechet_distance(A, feats[L][k]) / f0 for k in cols}
        print(f"{L:8s} {A.shape[1]:4d}  {str(N > A.shape[1]):5s} {f0:7.1f} | "
              + " ".join(f"{r[k]:11.2f}" for k in cols) + f" | {(r['noise 32'] - 1) / (r['upside-down'] - 1):6.2f}")
print(f"{len(caught)} warnings, the first: {caught[0].category.__name__}: {caught[0].message}")
balance = {L: (times_floor(L, "noise 32") - 1) / (times_floor(L, "upside-down") - 1) for L in ("block3", "block5")}
for L, x in balance.items():
    print(f"{L}: noise 32 / upside-down above the floor, 95 % interval {ci(x)}")
print("block3 vs block5: " + verdict(balance["block3"] - balance["block5"], ("larger", "smaller")))

# %% [markdown]
# Three things to read.
#
# 1. Every layer puts every changed set above its floor (all ratios > 1).
# 2. **The balance shifts with depth.** Between the two layers whose covariances are well
#    estimated, `block3` counts the σ = 32 noise many times more than the upside-down pictures and
#    `block5` much less, and the bootstrap line's verdict, **larger** for `block3`, says that the
#    difference is clear. The deeper layers continue the trend in the table, but see point 3
#    before reading anything into their ratios. FID uses the last pooling layer; the trend here is
#    consistent with that choice, but 320 samples cannot *test* it at the deep layers.
# 3. **The price of depth is dimension.** The layers with at least as many channels as samples have
#    singular covariances and, as the warning says, their distances are then mostly estimation
#    noise: their ratios are the least trustworthy numbers in the table. `avgpool` would need several
#    times 1280 pictures, which is one reason FID is computed on 10,000 to 50,000. Also note the raw
#    floors: each layer has its own scale, so never compare numbers across layers.
#
# **Precision.** All of this is float64 — `fl.feature_stats` converts. The cell below recomputes
# the distance between real A and the σ = 16 noisy set with the covariances in float32 (what you
# get by calling `torch.cov` on float32 GPU features) and compares the from-scratch `sqrtm` version
# with `fl` at each layer.

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
# The from-scratch `sqrtm` version agrees with `fl` to the printed digits at every layer: on these
# features `scipy.linalg.sqrtm` copes (pytorch-fid guards against a failing `sqrtm` by adding 1e-6
# to the diagonals when it returns non-finite values). Float32 covariances, however, can shift the
# distance (the last column): not to two decimals of a percent at `block5` and `block6`, but by
# about a tenth of a percent at `block7`, the widest of the three and the one whose covariance is
# singular (320 pictures for 320 dimensions, the warning above), so width and singularity are not
# told apart here. Small, but not guaranteed to be zero: compute the statistics in float64.
#
# ## Measure (c): the number of samples
#
# The floor is not a constant: it depends on $N$. Pool the 640 real crops (A and B), split them at
# random into two disjoint halves of $n$ pictures, and compute the distance between the halves —
# ten random splits per $n$. Both halves come from the *same* distribution, so the true distance is
# 0; whatever we measure is bias from estimating $\mu$ and $\Sigma$ from $n$ samples. For
# comparison, the same for real A against the σ = 16 noisy copies of B, subsampled to $n$.

# %%
# NBVAL_CHECK_OUTPUT
pool = np.concatenate([feats["block5"]["real A"], feats["block5"]["real B"]])
noisy = feats["block5"]["noise 16"]
sizes, same, vs_noise = [20, 40, 80, 160, 320], {}, {}
with warnings.catch_warnings(), threadpool_limits(1):
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
m = {n: np.mean(same[n]) for n in sizes}
print(f"two halves of the same real pictures at n = 20 are {m[20]:.0f} apart; real A vs noise 16 at n = {N}: "
      f"{np.mean(vs_noise[N]):.0f} — the smaller sample looks worse than the damaged set: {m[20] > np.mean(vs_noise[N])}")

# %%
fig, ax = plt.subplots(figsize=(4.5, 2.8))
for data, label in [(same, "same distribution (two halves)"), (vs_noise, "real A vs noise 16")]:
    mm = np.array([np.mean(data[n]) for n in sizes]); s = np.array([np.std(data[n]) for n in sizes])
    ax.errorbar(sizes, mm, yerr=s, marker="o", capsize=3, label=label)
ax.axvline(feats["block5"]["real A"].shape[1], color="grey", ls=":", lw=1, label="n = D = 112")
ax.set(xscale="log", xlabel="samples per set n", ylabel="Fréchet distance (block5)")
ax.minorticks_off(); ax.set_xticks(sizes, [str(n) for n in sizes]); ax.legend(fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# The floor shrinks roughly as $1/n$: $n$ × distance stays in a narrow band once $n$ is above a few
# dozen (the third column). Two halves of the *same* real pictures at $n = 20$ are further apart
# than real A and the σ = 16 noisy set at full size (the last line). A distance therefore means
# something only next to distances computed with the same $n$. The bias is roughly additive: the
# noisy set sits a roughly constant amount above the same-distribution value once $n$ is well above
# $D = 112$ (the last column). At $n = 320$ the noisy column has no spread because the
# "subsample" is the whole set.
#
# ## Measure (d): the resize method
#
# Before the network, every picture is resized to its input size. Here the same B crops are
# resized to 80×80 with four methods: PIL bicubic (how A and B were made), PIL bilinear, PIL
# nearest-neighbour, and `torch.nn.functional.interpolate` bilinear **without** antialiasing (a
# common default in tensor pipelines). Like with like: each is measured against the *same* crops
# resized bicubically (real B), and so are the three weakest degradations of (a) — every row is one
# change applied to the same 320 crops. The intervals come from the paired bootstrap of (a); with no
# floor to subtract here, they are taken on the *ratio* of two shifts, as *basic* bootstrap
# intervals (twice the estimate minus the percentiles), which remove the shift that repeated
# pictures add.

# %%
# NBVAL_CHECK_OUTPUT
shift = {k: fl.frechet_distance(feats["block5"]["real B"], feats["block5"][k]) for k in RESIZES + WEAK}
print("the same crops, changed one way: block5 distance to real B (bicubic)")
for k in RESIZES + WEAK:
    print(f"  {k:30s} {shift[k]:7.1f}")


def shift_ratio(a, b):
    """shift a / shift b, its basic-bootstrap 95 % interval, and a verdict."""
    point = np.log(shift[a] / shift[b])
    samples = np.log(boot[("block5", "real B", a)] / boot[("block5", "real B", b)])
    lo, hi = np.exp(2 * point - np.percentile(samples, [97.5, 2.5]))
    return f"{shift[a] / shift[b]:.2f}× [{lo:.2f}, {hi:.2f}] → {verdict(samples, ('larger', 'smaller'), point)}"


weakest = min(WEAK, key=shift.get)
for k in RESIZES:
    print(f"{k} vs {weakest} (the smallest damage): {shift_ratio(k, weakest)}")
print(f"bilinear without antialiasing vs PIL bilinear: {shift_ratio(RESIZES[2], 'bilinear')}")

# %%
big = int(np.argmax([c.size[0] for c in crops_b]))       # the crop shrunk the most
fig, axes = plt.subplots(1, 4, figsize=(8, 2.3))
for ax, how in zip(axes, ["real B"] + RESIZES):
    ax.imshow(sets[how][big][:48, :48], interpolation="nearest")
    ax.set_title("bicubic" if how == "real B" else how.replace(", ", "\n"), fontsize=8); ax.axis("off")
plt.suptitle(f"top-left 48×48 px of one crop, {crops_b[big].size[0]} px -> {PX} px", fontsize=9)
plt.tight_layout(); plt.show()

# %% [markdown]
# The resize method alone moves the number, without any change to what the pictures show.
# Nearest-neighbour sampling aliases fine texture (see the crop above) and shifts the set most;
# torch bilinear without antialiasing shifts it more than PIL's bilinear, which antialiases — the
# same filter. Measured like with like, every resize shift is *smaller* than the weakest real damage
# (the verdicts), but not zero: nearest-neighbour moves the set about a third of the way a blur of
# radius 1 does. (An earlier version of this notebook compared these shifts with the A-vs-B floor,
# a distance between *different* crops: a different quantity.) Parmar et al. (2022, "clean-fid")
# report the same effect for Inception FID. Resize the real and the generated pictures with the
# same, antialiased method.
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
