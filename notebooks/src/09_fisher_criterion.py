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
# # 09 — The Fisher criterion: how far apart are the classes, layer by layer?
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - compute a class-separation criterion from class means and spreads, from scratch, for two and
#   for many classes, and know what it is (and is not) invariant to;
# - tell apart the **trace ratio** $\mathrm{tr}(S_B)/\mathrm{tr}(S_W)$ that `fl.fisher_criterion`
#   reports from **Fisher's criterion** $J(w) = w^\top S_B w / w^\top S_W w$ and its maximum
#   $\mathrm{tr}(S_W^{-1}S_B)$, reached at the Fisher direction $w \propto S_W^{-1}(\mu_1-\mu_2)$
#   (checked against scikit-learn's LDA);
# - *measure* the claim "deeper layers are more semantic" on a pretrained network, on a task with
#   no low-level cue: both criteria and a linear probe, layer by layer, over 10 random splits,
#   against raw pixels and a low-level baseline;
# - explain with a number why the trace ratio and the held-out Fisher criterion disagree.
#
# **Prerequisites:** `05_feature_maps` (layers and hooks), `07_embeddings_retrieval` (one pooled
# vector per image and layer, `fl.embed`).
# **Run time:** about 30–50 s on a 2-core CPU (the 200 pictures are 112 px, not 224 px).
#
# Take a layer, pool each picture's feature map to one vector (notebook 07), and colour the
# vectors by class. Are the classes two tight, distant clouds, or two overlapping smears? One
# number for it: the squared distance between the class means, divided by how spread out the
# classes are around their own means,
#
# $$J_{\mathrm{tr}} = \frac{\lVert \mu_1 - \mu_2 \rVert^2}{\sigma_1^2 + \sigma_2^2}, \qquad
# \sigma_k^2 = \frac{1}{n_k}\sum_{i \in k} \lVert x_i - \mu_k \rVert^2 .$$
#
# $\mu_k$ is the mean of class $k$'s $n_k$ vectors, and $\sigma_k^2$ is their **mean squared
# distance** to it: the per-dimension variances (dividing by $n_k$, not $n_k - 1$) summed over
# the dimensions — the trace of the class covariance $\Sigma_k$. With the between-class matrix
# $S_B = (\mu_1-\mu_2)(\mu_1-\mu_2)^\top$ and the within-class matrix $S_W = \Sigma_1 + \Sigma_2$,
#
# $$J_{\mathrm{tr}} = \frac{\mathrm{tr}(S_B)}{\mathrm{tr}(S_W)} ,$$
#
# a **ratio of traces**. This is what `fl.fisher_criterion` reports (with more than two classes:
# the mean of $J_{\mathrm{tr}}$ over all pairs of classes). It is *not* Fisher's criterion.
# Fisher's criterion belongs to a direction $w$: the criterion of the projections $w^\top x$,
#
# $$J(w) = \frac{w^\top S_B\, w}{w^\top S_W\, w}, \qquad
# \max_w J(w) = (\mu_1-\mu_2)^\top S_W^{-1}(\mu_1-\mu_2) = \mathrm{tr}(S_W^{-1} S_B),$$
#
# reached at the Fisher (LDA) direction $w^\ast \propto S_W^{-1}(\mu_1-\mu_2)$. The trace ratio
# weighs every dimension the same; Fisher's maximum first finds the direction that discounts the
# dimensions along which the classes vary. Both appear below.

# %%
# %matplotlib inline
import itertools
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import featlab as fl

t0 = time.time()
torch.manual_seed(0)
rng = np.random.default_rng(0)
plt.rcParams["figure.dpi"] = 72


# %% [markdown]
# ## From scratch: means, spreads, the trace ratio
#
# Three classes of 5-D points with different means and spreads (float64, so the comparison with
# featlab is exact).

# %%
# NBVAL_CHECK_OUTPUT
def mean_and_spread(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, D) -> class mean (D,) and sigma^2 = mean squared distance to it."""
    mu = x.mean(dim=0)
    return mu, ((x - mu) ** 2).sum(dim=1).mean()


def fisher_j(a: torch.Tensor, b: torch.Tensor) -> float:
    """The trace ratio J_tr of two classes (na, D) and (nb, D)."""
    (mu_a, s_a), (mu_b, s_b) = mean_and_spread(a), mean_and_spread(b)
    return float(((mu_a - mu_b) ** 2).sum() / (s_a + s_b))


def fisher_j_multi(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean of J_tr over all pairs of the classes in labels y (N,)."""
    groups = [x[y == c] for c in torch.unique(y)]
    return float(np.mean([fisher_j(a, b) for a, b in itertools.combinations(groups, 2)]))


toy_x = torch.cat([torch.randn(40, 5, dtype=torch.float64) * 1.0,
                   torch.randn(50, 5, dtype=torch.float64) * 0.5 + 1.0,
                   torch.randn(60, 5, dtype=torch.float64) * 2.0 - 1.0])
toy_y = torch.tensor([0] * 40 + [1] * 50 + [2] * 60)
for c in range(3):
    mu, s2 = mean_and_spread(toy_x[toy_y == c])
    print(f"class {c}: n = {int((toy_y == c).sum())}, |mu| = {float(mu.norm()):.3f}, sigma^2 = {float(s2):.3f}")
pairs = {(i, j): fisher_j(toy_x[toy_y == i], toy_x[toy_y == j]) for i, j in itertools.combinations(range(3), 2)}
for (i, j), v in pairs.items():
    print(f"J_tr(class {i}, class {j}) = {v:.3f}")
two = toy_y < 2
assert abs(fisher_j(toy_x[toy_y == 0], toy_x[toy_y == 1]) - fl.fisher_criterion(toy_x[two], toy_y[two])) < 1e-12
assert abs(fisher_j_multi(toy_x, toy_y) - fl.fisher_criterion(toy_x, toy_y)) < 1e-12
print(f"three classes: mean over pairs = {fisher_j_multi(toy_x, toy_y):.3f}  (== fl.fisher_criterion)")

# %% [markdown]
# The mean over pairs is a summary: the pair (0, 2) is far less separated (0.242) than the two
# others, and the mean (0.665) hides it. Print the pairs when one of them matters.
#
# **Which criterion is it?** For the pair (0, 1), the cell below builds $S_B$ and $S_W$ and
# prints the trace ratio, Fisher's maximum $\mathrm{tr}(S_W^{-1}S_B)$, and $J(w)$ along the
# direction of scikit-learn's `LinearDiscriminantAnalysis`: `fl.fisher_criterion` is the first.

# %%
# NBVAL_CHECK_OUTPUT
def scatter_matrices(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two classes, (N, D) -> S_B = (mu1 - mu0)(mu1 - mu0)^T and S_W = Sigma_0 + Sigma_1 (1/n_k)."""
    a, b = x[y == 0], x[y == 1]
    d = b.mean(0) - a.mean(0)
    return np.outer(d, d), np.cov(a.T, bias=True) + np.cov(b.T, bias=True)


def j_along(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Fisher's J(w): the criterion of the 1-D projections x @ w."""
    return fl.fisher_criterion((x @ w)[:, None], y)


x01, y01 = toy_x[two].numpy(), toy_y[two].numpy()
s_b, s_w = scatter_matrices(x01, y01)
w_lda = LinearDiscriminantAnalysis().fit(x01, y01).coef_[0]
w_star = np.linalg.solve(s_w, x01[y01 == 1].mean(0) - x01[y01 == 0].mean(0))
print(f"trace ratio tr(S_B)/tr(S_W)          = {np.trace(s_b) / np.trace(s_w):.3f}   "
      f"fl.fisher_criterion = {fl.fisher_criterion(x01, y01):.3f}")
print(f"Fisher's maximum tr(S_W^-1 S_B)      = {np.trace(np.linalg.solve(s_w, s_b)):.3f}   "
      f"J(w*) = {j_along(x01, y01, w_star):.3f}   J(sklearn LDA direction) = {j_along(x01, y01, w_lda):.3f}")
proj = x01 @ np.random.default_rng(2).standard_normal((5, 10000))          # 10,000 random directions
j_random = (proj[y01 == 1].mean(0) - proj[y01 == 0].mean(0)) ** 2 / (proj[y01 == 0].var(0) + proj[y01 == 1].var(0))
print(f"J(w) of 10,000 random directions: max = {j_random.max():.3f}")

# %% [markdown]
# The trace ratio (0.795) and Fisher's maximum (3.848) are different numbers for the same two
# classes. No random direction beats the maximum; scikit-learn's LDA direction comes within a
# hair of it (3.845), because LDA weighs the two classes by their sizes (40 and 50) where
# $S_W = \Sigma_1 + \Sigma_2$ weighs them equally.
#
# **Invariances.** The trace ratio is a ratio of squared distances, so it does not change when
# all features are multiplied by one number, shifted, or rotated. It *does* change when the
# dimensions are rescaled one by one — that changes which distances count. Fisher's maximum
# does not change under *any* invertible linear map of the features, per-dimension scaling
# included: the best direction simply rescales with them.

# %%
# NBVAL_CHECK_OUTPUT
q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))       # a random rotation
per_dim = torch.tensor([10.0, 1, 1, 1, 0.1], dtype=torch.float64)


def fisher_max(x: torch.Tensor, y: torch.Tensor) -> float:
    """Fisher's maximum tr(S_W^-1 S_B) of the two classes 0 and 1."""
    s_b, s_w = scatter_matrices(x[y < 2].numpy(), y[y < 2].numpy())
    return float(np.trace(np.linalg.solve(s_w, s_b)))


print("                           trace ratio (3 classes)  Fisher's max (classes 0, 1)")
for name, xx in [("x", toy_x), ("1000 * x", 1000 * toy_x), ("x + 7", toy_x + 7), ("x rotated", toy_x @ q),
                 ("one dim x10, one x0.1", toy_x * per_dim)]:
    print(f"{name:26s} {fl.fisher_criterion(xx, toy_y):11.3f}  {fisher_max(xx, toy_y):22.3f}")

# %% [markdown]
# ## The Fisher direction
#
# The mean difference $\mu_1 - \mu_2$ is the best direction only when the spread is the same in
# every direction. On correlated data it is not — a 2-D example, 200 points per class, both
# classes stretched along the diagonal. `fl.fisher_direction` computes
# $w \propto S_W^{-1}(\mu_1-\mu_2)$ with $S_W$ the within-class *scatter*
# $\sum_k \sum_{i \in k}(x_i-\mu_k)(x_i-\mu_k)^\top$ (with equal class sizes that is
# $n(\Sigma_1+\Sigma_2)$, the same direction; with unequal sizes the larger class weighs more, as
# in scikit-learn's LDA).

# %%
# NBVAL_CHECK_OUTPUT
cov = np.array([[1.0, 0.9], [0.9, 1.0]])
x2 = np.concatenate([rng.multivariate_normal([0, 0], cov, 200), rng.multivariate_normal([1, 0], cov, 200)])
y2 = np.repeat([0, 1], 200)

a, b = x2[y2 == 0], x2[y2 == 1]
scatter_w = (a - a.mean(0)).T @ (a - a.mean(0)) + (b - b.mean(0)).T @ (b - b.mean(0))   # (2, 2)
w_fisher = np.linalg.solve(scatter_w, b.mean(0) - a.mean(0))
w_fisher /= np.linalg.norm(w_fisher)
assert np.allclose(w_fisher, fl.fisher_direction(x2, y2))
w_mean = (b.mean(0) - a.mean(0)) / np.linalg.norm(b.mean(0) - a.mean(0))
lda = LinearDiscriminantAnalysis().fit(x2, y2)
w_lda = lda.coef_[0] / np.linalg.norm(lda.coef_[0])
s_b2, s_w2 = scatter_matrices(x2, y2)

angles = np.deg2rad(np.arange(0, 180, 0.5))
j_sweep = np.array([j_along(x2, y2, np.array([np.cos(t), np.sin(t)])) for t in angles])
angle_of = lambda w: np.rad2deg(np.arctan2(w[1], w[0])) % 180
print("from scratch == fl.fisher_direction:", np.round(w_fisher, 3))
print(f"|cos| with scikit-learn's LDA direction: {abs(w_fisher @ w_lda):.4f}")
print(f"mean-difference direction {np.round(w_mean, 3)}: J(w) = {j_along(x2, y2, w_mean):.3f}")
print(f"Fisher direction                 : J(w) = {j_along(x2, y2, w_fisher):.3f}"
      f"  (tr(S_W^-1 S_B) = {np.trace(np.linalg.solve(s_w2, s_b2)):.3f})")
print(f"best of 360 directions tried     : J(w) = {j_sweep.max():.3f} at {np.rad2deg(angles[j_sweep.argmax()]):.1f} deg"
      f" (Fisher direction: {angle_of(w_fisher):.1f} deg)")
print(f"trace ratio of the 2-D points    : J_tr = {fl.fisher_criterion(x2, y2):.3f}")
share = w_mean @ s_w2 @ w_mean / np.trace(s_w2)
assert np.isclose(fl.fisher_criterion(x2, y2), j_along(x2, y2, w_mean) * share)
print(f"J_tr = J(u) x share of the within-class spread along u: {j_along(x2, y2, w_mean):.3f} x {share:.3f}")

# %%
fig, axes = plt.subplots(1, 4, figsize=(12, 2.7))
axes[0].scatter(*a.T, s=4, alpha=0.5, label="class 0")
axes[0].scatter(*b.T, s=4, alpha=0.5, label="class 1")
for w, name, col in [(w_mean, "mean diff.", "k"), (w_fisher, "Fisher", "r")]:
    axes[0].arrow(0.5, 0, 1.5 * w[0], 1.5 * w[1], color=col, width=0.04, label=name)
axes[0].set_aspect("equal"); axes[0].legend(fontsize=7, loc="lower right"); axes[0].set_title("data", fontsize=9)
for ax, w, name in [(axes[1], w_mean, "mean difference"), (axes[2], w_fisher, "Fisher direction")]:
    p = x2 @ w
    bins = np.linspace(p.min(), p.max(), 40)
    ax.hist(p[y2 == 0], bins, alpha=0.6); ax.hist(p[y2 == 1], bins, alpha=0.6)
    ax.set_title(f"onto {name}: J(w) = {j_along(x2, y2, w):.2f}", fontsize=9); ax.set_yticks([])
axes[3].plot(np.rad2deg(angles), j_sweep)
axes[3].axvline(angle_of(w_fisher), color="r", ls="--", label="Fisher")
axes[3].axvline(angle_of(w_mean), color="k", ls=":", label="mean diff.")
axes[3].axhline(fl.fisher_criterion(x2, y2), color="g", ls="-.", label="trace ratio")
axes[3].set_xlabel("direction (degrees)"); axes[3].set_title("J(w) of the projection", fontsize=9)
axes[3].legend(fontsize=7)
plt.tight_layout(); plt.show()

# %% [markdown]
# Along the mean difference $u$ the two histograms overlap a lot ($J(u)$ = 0.502); along the
# Fisher direction they overlap much less ($J(w^\ast)$ = 2.644 = $\mathrm{tr}(S_W^{-1}S_B)$), and
# none of the 360 directions tried does better. The trace ratio of the 2-D points (0.226) is
# smaller than either: the last line shows why. **The trace ratio is $J(u)$ times the share of
# the within-class spread that lies along $u$**, $u^\top S_W u/\mathrm{tr}(S_W)$ — here 0.450, as
# the long diagonal carries most of the spread and says nothing about the class. Keep that
# identity for the network.
#
# When $S_W$ is singular — fewer vectors than dimensions, or a constant feature — it has no
# inverse. `fl.fisher_direction` then adds a small ridge, $10^{-6}\cdot\mathrm{tr}(S_W)/D$, to its
# diagonal (`ridge=` sets the multiple). The direction then exists; the section "beware
# $N \le D$" below measures what it is worth.
#
# ## The real thing: a task without a low-level cue
#
# `skimage.data.lfw_subset()` holds 100 faces and 100 non-face patches, 25×25 grayscale. The
# non-faces are no fair contrast: they are much smoother than the faces (first line below), a
# low-level cue any edge detector picks up, so a layer could tell them apart without knowing what
# a face is. We replace them with **phase-scrambled faces**: each face's Fourier amplitudes kept,
# its phases randomised, then its pixel values put back in the same ranks (histogram matching).
# A scrambled face has its face's exact histogram (mean, contrast) and close to its Fourier
# amplitudes, but no eyes, nose or mouth.

# %%
# NBVAL_CHECK_OUTPUT
lfw = data.lfw_subset()                                          # (200, 25, 25), floats in [0, 1]


def phase_scramble(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Same Fourier amplitudes, random phases, then the original pixel values by rank."""
    spectrum = np.fft.fft2(img)
    noise_phase = np.angle(np.fft.fft2(rng.standard_normal(img.shape)))   # Hermitian: result is real
    out = np.real(np.fft.ifft2(np.abs(spectrum) * np.exp(1j * (np.angle(spectrum) + noise_phase))))
    matched = np.empty_like(img)
    matched.flat[np.argsort(out, axis=None)] = np.sort(img, axis=None)
    return matched


scrambled = np.stack([phase_scramble(f, rng) for f in lfw[:100]])
patches = np.concatenate([lfw[:100], scrambled])                 # 100 faces, then their 100 scrambles
face = np.repeat([1, 0], 100)


def low_level(p: np.ndarray) -> np.ndarray:
    """(N, h, w) -> (N, 4): mean, std, mean |horizontal step|, mean |vertical step|."""
    return np.stack([p.mean((1, 2)), p.std((1, 2)), np.abs(np.diff(p, axis=2)).mean((1, 2)),
                     np.abs(np.diff(p, axis=1)).mean((1, 2))], 1)


for name, p in [("lfw non-faces", lfw[100:]), ("faces", lfw[:100]), ("scrambled faces", scrambled)]:
    m = low_level(p).mean(0)
    print(f"{name:16s} mean {m[0]:.3f}  std {m[1]:.3f}  mean |step| horizontal {m[2]:.3f}, vertical {m[3]:.3f}")

# %%
fig, axes = plt.subplots(2, 8, figsize=(9, 2.5))
for k in range(8):
    axes[0, k].imshow(lfw[k * 12], cmap="gray", vmin=0, vmax=1)
    axes[1, k].imshow(scrambled[k * 12], cmap="gray", vmin=0, vmax=1)
for ax in axes.flat:
    ax.axis("off")
axes[0, 0].set_title("faces", fontsize=8, loc="left"); axes[1, 0].set_title("their phase-scrambled twins", fontsize=8, loc="left")
plt.tight_layout(); plt.show()

# %% [markdown]
# Means and contrasts now match exactly; the scrambles are a little *edgier* than the faces (the
# face's border, which the Fourier transform treats as wrapping round, is spread over the whole
# scramble) — the opposite of the lfw non-faces, and small: the low-level baseline below, which
# sees these four numbers, stays near chance. To make the task
# harder still, each of the 200 patches is pasted, at a random size (40–72 px) and position and
# randomly mirrored, onto a 112×112 picture of one of four textures (a random 224-px crop of
# brick, grass, gravel or the moon's surface, halved), all grayscale so that colour gives nothing
# away. Each background appears 50 times, about half of them behind a face (the counts are
# printed). The same pictures then carry **two labellings**:
# - **face or scrambled** — a semantic question, the background is a nuisance;
# - **which background** — a texture question, the pasted patch is the nuisance.

# %%
# NBVAL_CHECK_OUTPUT
model = fl.load_model("efficientnet_lite0")
prep = fl.preprocess_for(model)
S = 112
bg_names = ["brick", "grass", "gravel", "moon"]
textures = [np.asarray(fl.load_image(n).convert("L")) for n in bg_names[:3]] + [data.moon()]
background = rng.permutation(np.tile(np.arange(4), 50))        # (200,) 50 of each
pictures = []
for i in range(200):
    tex = textures[background[i]]
    r, c = rng.integers(0, tex.shape[0] - 224), rng.integers(0, tex.shape[1] - 224)
    canvas = np.asarray(Image.fromarray(tex[r:r + 224, c:c + 224]).resize((S, S), Image.BICUBIC)).copy()
    s = int(rng.integers(40, 73))
    patch = np.asarray(Image.fromarray((patches[i] * 255).astype(np.uint8)).resize((s, s), Image.BICUBIC))
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    y0, x0 = rng.integers(0, S - s + 1), rng.integers(0, S - s + 1)   # box (x0, y0, x0 + s, y0 + s)
    canvas[y0:y0 + s, x0:x0 + s] = patch
    pictures.append(canvas)
gray = torch.from_numpy(np.stack(pictures)).float()[:, None] / 255         # (200, 1, 112, 112)
x = ((gray.repeat(1, 3, 1, 1) - prep.mean[0]) / prep.std[0]).to(fl.device())  # the model's normalisation
print("pictures:", tuple(x.shape), " faces:", int(face.sum()), " per background:", np.bincount(background).tolist())
print("faces per background:", np.bincount(background[face == 1]).tolist())

# %%
fig, axes = plt.subplots(2, 8, figsize=(10, 2.8))
for ax, i in zip(axes.flat, list(range(0, 100, 13)) + list(range(100, 200, 13))):
    ax.imshow(pictures[i], cmap="gray", vmin=0, vmax=255); ax.axis("off")
    ax.set_title(f"{'face' if face[i] else 'scrambled'}, {bg_names[background[i]]}", fontsize=7)
plt.tight_layout(); plt.show()

# %% [markdown]
# One forward pass gives every layer's pooled vector (`fl.embed`, average pooling, **not**
# L2-normalised: see the pitfalls). `avgpool` is the mean of `head` over its spatial grid, so its
# vectors are the pooled `head` vectors exactly; we keep `head`. Two baselines that could win if
# the task had a shortcut: the raw pixels, shrunk to 28×28 (784 numbers), and the four low-level
# numbers above (mean, contrast, edge strengths) of each whole picture.
#
# Three measures per layer, for *face or scrambled*:
# - the **trace ratio** $J_{\mathrm{tr}}$ on all 200 pictures;
# - **Fisher's criterion held out**: the direction $w$ fitted on 10 pictures per class, $J(w)$
#   measured on the other 180. With $D$ up to 1280 and 20 fitting pictures $S_W$ is singular, so
#   we use `ridge=1` (why: the section "beware $N \le D$"), which is scikit-learn's LDA with
#   shrinkage 0.5 (asserted);
# - a **linear probe** (logistic regression on standardised features) trained on the same 20 and
#   tested on the other 180. Trained on 160 pictures and tested on 40 (5 folds), such a probe
#   is nearly always right in the deep layers (the last line of the table) and ranks nothing;
#   10 training pictures per class leave it room.
#
# Both held-out measures are repeated over 10 random splits (mean ± standard deviation over splits).

# %%
# NBVAL_CHECK_OUTPUT
LAYERS = ["stem"] + [f"block{i}" for i in range(1, 8)] + ["head"]
emb = fl.embed(model, x, LAYERS + ["avgpool"], normalize=False, batch_size=50)
emb = {k: v.cpu().double() for k, v in emb.items()}
assert torch.allclose(emb["avgpool"], emb["head"], rtol=1e-4, atol=1e-5)
feats = {"low-level": torch.from_numpy(low_level(gray[:, 0].double().numpy())),
         "pixels": F.interpolate(gray, size=(28, 28), mode="area").flatten(1).double(),
         **{k: emb[k] for k in LAYERS}}

split_rng = np.random.default_rng(1)
splits = []
for _ in range(10):
    train = np.concatenate([split_rng.choice(np.flatnonzero(face == k), 10, replace=False) for k in (0, 1)])
    splits.append((train, np.setdiff1d(np.arange(200), train)))

f7 = feats["block7"].numpy()
tr, te = splits[0]
shrunk = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=0.5).fit(f7[tr], face[tr]).coef_[0]
assert abs(fl.fisher_direction(f7[tr], face[tr], ridge=1.0) @ shrunk / np.linalg.norm(shrunk)) > 1 - 1e-9

rows, per_split = {}, {}
print("layer        D |  J_tr  | held-out J(w), 10 splits | probe accuracy, 10 splits | background J_tr")
for name, f in feats.items():
    f = f.numpy()
    j_held, acc = [], []
    for train, test in splits:
        w = fl.fisher_direction(f[train], face[train], ridge=1.0)
        j_held.append(j_along(f[test], face[test], w))
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(f[train], face[train])
        acc.append(clf.score(f[test], face[test]))
    per_split[name] = (np.array(j_held), np.array(acc))
    rows[name] = (fl.fisher_criterion(f, face), fl.fisher_criterion(f, background))
    print(f"{name:9s} {f.shape[1]:5d} | {rows[name][0]:6.3f} | {np.mean(j_held):8.2f} ± {np.std(j_held):5.2f}"
          f"          | {np.mean(acc):.3f} ± {np.std(acc):.3f}             | {rows[name][1]:7.3f}")
folds = StratifiedKFold(5, shuffle=True, random_state=0)
saturated = {n: cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
                                feats[n].numpy(), face, cv=folds).mean() for n in ("block5", "head")}
print("5-fold probe (160 train / 40 test pictures): "
      + ", ".join(f"{n} {v:.3f}" for n, v in saturated.items()))

# %%
names = list(feats)
fig, axes = plt.subplots(1, 3, figsize=(13, 3))
axes[0].semilogy(names, [rows[n][0] for n in names], "o-", label="face or scrambled")
axes[0].semilogy(names, [rows[n][1] for n in names], "o-", label="background")
axes[0].set_title("trace ratio $J_{tr}$, all pictures (log scale)", fontsize=9); axes[0].legend(fontsize=8)
for ax, k, title in [(axes[1], 0, "Fisher's J(w), held out"), (axes[2], 1, "linear probe accuracy, held out")]:
    m = np.array([per_split[n][k].mean() for n in names])
    s = np.array([per_split[n][k].std() for n in names])
    ax.errorbar(names, m, yerr=s, fmt="o-", capsize=3)
    ax.set_title(f"{title} (± sd, 10 splits)", fontsize=9)
axes[2].axhline(0.5, ls=":", color="k")
for ax in axes:
    ax.tick_params(axis="x", rotation=45, labelsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# **Is deeper more semantic?** Compare layers on the *same* splits: the difference of two layers'
# probe accuracies (and of their held-out $J(w)$) is computed split by split, and the verdict is
# *better* / *worse* when the interval from the 2.5th to the 97.5th percentile of the 10
# differences lies above / below zero, and *no clear difference* otherwise.

# %%
# NBVAL_CHECK_OUTPUT
def verdict(diff: np.ndarray) -> str:
    lo, hi = np.percentile(diff, [2.5, 97.5])
    word = "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"
    return f"{diff.mean():+7.3f}  [{lo:+7.3f}, {hi:+7.3f}]  {word}"


best = max(LAYERS, key=lambda n: per_split[n][1].mean())
comparisons = [("stem", "pixels"), ("block4", "stem"), (best, "block4"), ("head", "stem"), ("head", best)]
print(f"best layer by mean probe accuracy: {best}")
print("A vs B              probe accuracy A - B (95 % of splits)      held-out J(w) A - B (95 % of splits)")
for a_, b_ in comparisons:
    print(f"{a_:7s} vs {b_:7s}   {verdict(per_split[a_][1] - per_split[b_][1])}   "
          f"{verdict(per_split[a_][0] - per_split[b_][0])}")

# %% [markdown]
# **What the numbers say** (read them off the two tables above).
# - **Without a low-level cue, the first layers see almost nothing.** The low-level baseline and
#   the raw pixels stay near chance, and `stem` and `block1` hardly rise above it: the matched
#   histograms and spectra took away what they could read. `stem` does not even beat the pixels
#   (probe: *no clear difference*; held-out $J(w)$: *worse*, by a hair: the upper end of its
#   interval prints as -0.000).
# - **The face signal appears in the middle and peaks late.** Probe accuracy and held-out $J(w)$
#   climb from `block2` to `block6`, and both steps of the verdict table along that climb
#   (`block4` vs `stem`, `block6` vs `block4`) are *better* by both measures. `head` is
#   *better* than `stem` by both measures, but *worse* than `block6`: the peak is in the last
#   blocks, not at the end.
# - **The background fades with depth.** Its trace ratio jumps at `block2` and falls at every later
#   layer: texture is a shallow feature, and the background makes up less and less of what varies
#   in the deeper layers.
#
# So on a task where only the arrangement of the parts distinguishes the classes, "deeper = more
# semantic" holds up to the last blocks, measured with headroom and with spreads; it does not
# say the very last layer is best.
#
# ## Why the trace ratio and Fisher's criterion disagree
#
# Write $u = (\mu_1 - \mu_2)/\lVert\mu_1-\mu_2\rVert$. As in the 2-D example,
# $J_{\mathrm{tr}} = J(u) \cdot \frac{u^\top S_W u}{\mathrm{tr}(S_W)}$: Fisher's criterion along
# the mean difference, times the **share of the within-class spread that lies along it** (the
# cell asserts this identity on every layer). Fisher's maximum instead uses
# $w^\ast \propto S_W^{-1}(\mu_1-\mu_2)$, which discounts every direction in which the classes
# vary. Where most of the spread lies in other directions — background variation, or simply
# hundreds of dimensions — $J_{\mathrm{tr}}$ is small however well some direction separates the
# classes.

# %%
# NBVAL_CHECK_OUTPUT
print("layer        D |  J_tr  | share of the spread along u | J(u) in-sample | held-out J(w*) | ratio J(w*)/J_tr")
for name, f in feats.items():
    f = f.numpy()
    u = f[face == 1].mean(0) - f[face == 0].mean(0)
    u /= np.linalg.norm(u)
    s_w_layer = sum(np.cov(f[face == k].T, bias=True) for k in (0, 1))
    share = u @ s_w_layer @ u / np.trace(s_w_layer)
    assert np.isclose(rows[name][0], j_along(f, face, u) * share)
    j_w = per_split[name][0].mean()
    print(f"{name:9s} {f.shape[1]:5d} | {rows[name][0]:6.3f} |   {share:7.1%}                   |"
          f"  {j_along(f, face, u):8.3f}      | {j_w:8.2f}       | {j_w / rows[name][0]:8.0f}")
peak = lambda score: max(feats, key=score)
print(f"highest: J_tr at {peak(lambda n: rows[n][0])}, held-out J(w) at {peak(lambda n: per_split[n][0].mean())}, "
      f"probe at {peak(lambda n: per_split[n][1].mean())}")

# %% [markdown]
# On this task the two criteria *rank* the layers much alike (all three measures peak at
# `block6`, last line). They disagree on *how separated* the classes are, and the last column says
# by how much: from about 1 in the first layers, the held-out $J(w^\ast)$ grows to dozens of times
# $J_{\mathrm{tr}}$ from `block4` on. A trace ratio far below 1 reads as "the classes overlap", yet
# one direction separates them well on pictures it never saw. The gap opens because the share of
# the within-class spread along the mean difference falls with depth: in the deep layers the
# classes differ along a few directions and vary along hundreds, and the trace ratio counts all of
# them. $J_{\mathrm{tr}}$ answers
# "how far apart are the class means, compared with *all* the within-class variation?";
# Fisher's $J(w^\ast)$ and the probe answer "is there a direction along which the classes
# separate?". Say which one you mean.
#
# ## Fisher's direction on the network: beware $N \le D$
#
# At `block7` there are $D = 320$ features and 100 pictures in each half, so $S_W$ (fitted on
# half A) is singular and `fl.fisher_direction` adds its tiny default ridge. A larger ridge,
# `ridge=1`, adds the mean per-dimension scatter $\mathrm{tr}(S_W)/D$ to the diagonal: it pulls
# $S_W$ towards a multiple of the identity, i.e. the direction towards the mean difference
# (which is what an infinite ridge gives); it is the same direction as scikit-learn's LDA with
# `shrinkage=0.5`. We fit each direction on half A and measure $J(w)$ on both halves:

# %%
# NBVAL_CHECK_OUTPUT
half_a = np.concatenate([np.flatnonzero(face == k)[::2] for k in (0, 1)])
half_b = np.setdiff1d(np.arange(200), half_a)
ya, yb = face[half_a], face[half_b]
fa, fb = f7[half_a], f7[half_b]
directions = {"mean difference": fa[ya == 1].mean(0) - fa[ya == 0].mean(0),
              "Fisher, default ridge": fl.fisher_direction(fa, ya),
              "Fisher, ridge = 1": fl.fisher_direction(fa, ya, ridge=1.0)}
print("block7, direction from half A | J(w) on half A (fitted) | J(w) on half B (held out)")
for name, w in directions.items():
    fit = j_along(fa, ya, w)
    fit_text = f"{fit:.2f}" if fit < 1e4 else "more than 10^4"
    print(f"{name:29s} | {fit_text:>23s} | {j_along(fb, yb, w):8.2f}")

# %% [markdown]
# With the default (tiny) ridge the projections of half A separate almost perfectly — $J(w)$
# above $10^4$: with 320 dimensions and 100 pictures there is a direction that squeezes each
# class of the fitting set to nearly a point. That number says nothing about new pictures; on the
# held-out half compare the three directions in the right column. Fit a direction on one set,
# measure it on another.
#
# ## Pitfalls
#
# - **Say which criterion.** `fl.fisher_criterion` is the trace ratio
#   $\mathrm{tr}(S_B)/\mathrm{tr}(S_W)$; Fisher's criterion is $J(w)$ of a direction, with maximum
#   $\mathrm{tr}(S_W^{-1}S_B)$. The first is small when a layer varies a lot in directions that have
#   nothing to do with the class, even if one direction separates the classes well. It is not a
#   separability test: pair it with a probe or a held-out $J(w)$.
# - **Check the task for shortcuts.** The lfw non-faces differ from faces in smoothness; any
#   edge detector separates them. A low-level baseline that could win is the quickest check.
# - **Per-dimension scaling changes the trace ratio**, not Fisher's maximum. On the network's
#   `head` features, standardising every feature changes $J_{\mathrm{tr}}$; L2-normalising every
#   vector (`fl.embed`'s default, a different factor per picture) can too, though here it hardly
#   does (printed below). Choose the preprocessing, say which, and keep it across layers.
# - **$N$ or $N-1$.** $\sigma_k^2$ here is a *mean* squared distance (divide by $n_k$), like
#   `np.var`. `torch.var` divides by $n_k - 1$ by default (`correction=1`): with five vectors
#   per class that turns $J_{\mathrm{tr}}$ = 1.725 into 1.380 (printed below).
# - **In-sample numbers with $N \le D$.** The Fisher direction, LDA and probes overfit when there
#   are fewer vectors than dimensions; measure on held-out data, and use a ridge or shrinkage.
# - **A saturated measure ranks nothing.** A probe that is (nearly) always right on 40 test
#   pictures cannot tell layers apart; train on fewer pictures, or use a continuous held-out measure such as $J(w)$.
# - **A mean over pairs hides pairs.** The multi-class $J_{\mathrm{tr}}$ is the mean of the
#   pairwise values; print the pairs when one confusion matters.

# %%
# NBVAL_CHECK_OUTPUT
head = feats["head"]
head_std = (head - head.mean(0)) / head.std(0).clamp_min(1e-12)
print(f"head, face or scrambled: J_tr = {rows['head'][0]:.3f} as pooled, {fl.fisher_criterion(head_std, face):.3f} "
      f"with every feature standardised, {fl.fisher_criterion(fl.l2_normalize(head), face):.3f} "
      "with every vector L2-normalised")
small_a, small_b = toy_x[:5], toy_x[40:45]                       # five vectors per class
unbiased = float(((small_a.mean(0) - small_b.mean(0)) ** 2).sum()
                 / (torch.var(small_a, dim=0).sum() + torch.var(small_b, dim=0).sum()))
print(f"5 vectors per class: J_tr = {fisher_j(small_a, small_b):.3f} (divide by n), "
      f"{unbiased:.3f} with torch.var (divide by n - 1)")

# %% [markdown]
# **Exercise:** `exercises/09_fisher_criterion.ipynb` — write the class mean and spread,
# two-class $J$, the multi-class mean over pairs and the projection onto a direction yourself,
# then use them on the network's layers.

# %%
print(f"notebook run time: {time.time() - t0:.0f} s")
