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
# - compute Fisher's criterion $J$ from class means and spreads, from scratch, for two and for
#   many classes, and know what it is (and is not) invariant to;
# - find the Fisher direction $w \propto S_W^{-1}(\mu_1 - \mu_2)$, check it against
#   scikit-learn's LDA, and see why it beats the mean-difference direction on correlated data;
# - *measure* the claim "deeper layers are more semantic" on a pretrained network: $J$ and a
#   cross-validated linear probe, layer by layer, against a raw-pixel baseline;
# - see where $J$ and the probe disagree, and explain the disagreement with a number.
#
# **Prerequisites:** `05_feature_maps` (layers and hooks), `07_embeddings_retrieval` (one pooled
# vector per image and layer, `fl.embed`).
# **Run time:** about 20–30 s on a 2-core CPU (the 200 pictures are 112 px, not 224 px).
#
# Take a layer, pool each picture's feature map to one vector (notebook 07), and colour the
# vectors by class. Are the classes two tight, distant clouds, or two overlapping smears? Fisher's
# criterion puts one number on it: the squared distance between the class means, divided by how
# spread out the classes are around their own means,
#
# $$J = \frac{\lVert \mu_1 - \mu_2 \rVert^2}{\sigma_1^2 + \sigma_2^2}, \qquad
# \sigma_k^2 = \frac{1}{n_k}\sum_{i \in k} \lVert x_i - \mu_k \rVert^2 .$$
#
# $\mu_k$ is the mean of class $k$'s $n_k$ vectors, and $\sigma_k^2$ is their **mean squared
# distance** to it: the per-dimension variances (dividing by $n_k$, not $n_k - 1$) summed over
# the dimensions — the trace of the class covariance. Large $J$: classes far apart for their
# spread. With more than two classes, `fl.fisher_criterion` reports the **mean of $J$ over all
# pairs** of classes.

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
# ## From scratch: means, spreads, J
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
    """J of two classes (na, D) and (nb, D)."""
    (mu_a, s_a), (mu_b, s_b) = mean_and_spread(a), mean_and_spread(b)
    return float(((mu_a - mu_b) ** 2).sum() / (s_a + s_b))


def fisher_j_multi(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean of J over all pairs of the classes in labels y (N,)."""
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
    print(f"J(class {i}, class {j}) = {v:.3f}")
two = toy_y < 2
assert abs(fisher_j(toy_x[toy_y == 0], toy_x[toy_y == 1]) - fl.fisher_criterion(toy_x[two], toy_y[two])) < 1e-12
assert abs(fisher_j_multi(toy_x, toy_y) - fl.fisher_criterion(toy_x, toy_y)) < 1e-12
print(f"three classes: mean over pairs = {fisher_j_multi(toy_x, toy_y):.3f}  (== fl.fisher_criterion)")

# %% [markdown]
# The mean over pairs is a summary: the pair (0, 2) is far less separated (0.242) than the two
# others, and the mean (0.665) hides it. Print the pairs when one of them matters.
#
# **Invariances.** $J$ is a ratio of squared distances, so it does not change when all features
# are multiplied by one number, shifted, or rotated. It *does* change when the dimensions are
# rescaled one by one — that changes which distances count (0.665 → 1.052 below).

# %%
# NBVAL_CHECK_OUTPUT
q, _ = torch.linalg.qr(torch.randn(5, 5, dtype=torch.float64))       # a random rotation
per_dim = torch.tensor([10.0, 1, 1, 1, 0.1], dtype=torch.float64)
print(f"J                          {fl.fisher_criterion(toy_x, toy_y):.3f}")
print(f"J of 1000 * x              {fl.fisher_criterion(1000 * toy_x, toy_y):.3f}")
print(f"J of x + 7                 {fl.fisher_criterion(toy_x + 7, toy_y):.3f}")
print(f"J of x rotated             {fl.fisher_criterion(toy_x @ q, toy_y):.3f}")
print(f"J, one dim x10, one x0.1   {fl.fisher_criterion(toy_x * per_dim, toy_y):.3f}")

# %% [markdown]
# ## The Fisher direction
#
# $J$ above uses every dimension with the same weight. Project the points onto one unit
# direction $w$ instead, and the projections $w^\top x$ have their own criterion
# $J(w) = (w^\top(\mu_1-\mu_2))^2 / (w^\top(\Sigma_1+\Sigma_2)w)$, with $\Sigma_k$ the class
# covariance. The $w$ that maximises it is Fisher's direction
#
# $$w \propto S_W^{-1}(\mu_1 - \mu_2), \qquad S_W = \sum_k \sum_{i \in k}(x_i-\mu_k)(x_i-\mu_k)^\top,$$
#
# the within-class scatter. (With equal class sizes $S_W \propto \Sigma_1 + \Sigma_2$ exactly; with
# unequal sizes the larger class weighs more, as in scikit-learn's LDA.) The mean difference
# $\mu_1 - \mu_2$ alone is the best direction only when the spread is the same in every
# direction. On correlated data it is not — a 2-D example, 200 points per class, both classes
# stretched along the diagonal:

# %%
# NBVAL_CHECK_OUTPUT
cov = np.array([[1.0, 0.9], [0.9, 1.0]])
x2 = np.concatenate([rng.multivariate_normal([0, 0], cov, 200), rng.multivariate_normal([1, 0], cov, 200)])
y2 = np.repeat([0, 1], 200)

a, b = x2[y2 == 0], x2[y2 == 1]
s_w = (a - a.mean(0)).T @ (a - a.mean(0)) + (b - b.mean(0)).T @ (b - b.mean(0))   # (2, 2)
w_fisher = np.linalg.solve(s_w, b.mean(0) - a.mean(0))
w_fisher /= np.linalg.norm(w_fisher)
assert np.allclose(w_fisher, fl.fisher_direction(x2, y2))
w_mean = (b.mean(0) - a.mean(0)) / np.linalg.norm(b.mean(0) - a.mean(0))
lda = LinearDiscriminantAnalysis().fit(x2, y2)
w_lda = lda.coef_[0] / np.linalg.norm(lda.coef_[0])


def j_along(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """J of the 1-D projections x @ w."""
    return fl.fisher_criterion((x @ w)[:, None], y)


angles = np.deg2rad(np.arange(0, 180, 0.5))
j_sweep = np.array([j_along(x2, y2, np.array([np.cos(t), np.sin(t)])) for t in angles])
angle_of = lambda w: np.rad2deg(np.arctan2(w[1], w[0])) % 180
print("from scratch == fl.fisher_direction:", np.round(w_fisher, 3))
print(f"|cos| with scikit-learn's LDA direction: {abs(w_fisher @ w_lda):.4f}")
print(f"mean-difference direction {np.round(w_mean, 3)}: J = {j_along(x2, y2, w_mean):.3f}")
print(f"Fisher direction                 : J = {j_along(x2, y2, w_fisher):.3f}")
print(f"best of 360 directions tried     : J = {j_sweep.max():.3f} at {np.rad2deg(angles[j_sweep.argmax()]):.1f} deg"
      f" (Fisher direction: {angle_of(w_fisher):.1f} deg)")
print(f"J in the full 2-D space          : J = {fl.fisher_criterion(x2, y2):.3f}")

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
    ax.set_title(f"onto {name}: J = {j_along(x2, y2, w):.2f}", fontsize=9); ax.set_yticks([])
axes[3].plot(np.rad2deg(angles), j_sweep)
axes[3].axvline(angle_of(w_fisher), color="r", ls="--", label="Fisher")
axes[3].axvline(angle_of(w_mean), color="k", ls=":", label="mean diff.")
axes[3].set_xlabel("direction (degrees)"); axes[3].set_title("J of the projection", fontsize=9)
axes[3].legend(fontsize=7)
plt.tight_layout(); plt.show()

# %% [markdown]
# Along the mean difference the two histograms overlap a lot ($J$ = 0.502); along the Fisher
# direction they overlap much less ($J$ = 2.644), and none of the 360 directions tried does
# better. Note also that the $J$ of the full 2-D points (0.226) is smaller than that of either
# projection: $J$ counts the spread in all directions, including the long diagonal that says
# nothing about the class. Keep that in mind for the network.
#
# When $S_W$ is singular — fewer vectors than dimensions, or a constant feature — it has no
# inverse. `fl.fisher_direction` then adds a small ridge, $10^{-6}\cdot\mathrm{tr}(S_W)/D$, to its
# diagonal (`ridge=` sets the multiple). The direction then exists; the section "beware
# $N \le D$" below measures what it is worth.
#
# ## The real thing: a labelled set where depth should matter
#
# `skimage.data.lfw_subset()` holds 100 faces and 100 non-face patches, 25×25 grayscale. As they
# come, faces are centred and aligned, so even raw pixels separate them:

# %%
# NBVAL_CHECK_OUTPUT
lfw = data.lfw_subset()                                          # (200, 25, 25), floats in [0, 1]
face = np.repeat([1, 0], 100)                                    # 100 faces, then 100 non-faces
cv = StratifiedKFold(5, shuffle=True, random_state=0)


def probe(features: torch.Tensor, labels: np.ndarray) -> float:
    """5-fold cross-validated accuracy of a logistic regression on standardised features."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    return float(cross_val_score(clf, features.double().numpy(), labels, cv=cv).mean())


aligned = torch.from_numpy(lfw).flatten(1)
print(f"aligned 25x25 faces, raw pixels: J = {fl.fisher_criterion(aligned, face):.3f}, "
      f"probe accuracy = {probe(aligned, face):.3f}")
edges = np.abs(np.diff(lfw, axis=2)).mean(axis=(1, 2))           # mean |step| between neighbours
print(f"edge strength (mean |horizontal pixel step|): faces {edges[:100].mean():.3f}, "
      f"non-faces {edges[100:].mean():.3f}")

# %% [markdown]
# Note also the second line: the non-face patches are much smoother than the faces — a low-level
# cue that any edge detector picks up. A task that raw pixels already solve cannot show what
# depth adds, so we make it harder: each of the 200 patches is pasted, at a random size
# (40–72 px) and position and randomly mirrored, onto a 112×112 picture of one of four textures
# (a random 224-px crop of brick, grass, gravel or the moon's surface, halved), all grayscale so
# that colour gives nothing away. Each background appears 50 times, about half of them behind a
# face (the counts are printed). The same pictures then carry **two labellings**:
# - **face or not** — a semantic question, the background is a nuisance;
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
    patch = np.asarray(Image.fromarray((lfw[i] * 255).astype(np.uint8)).resize((s, s), Image.BICUBIC))
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    top, left = rng.integers(0, S - s + 1), rng.integers(0, S - s + 1)
    canvas[top:top + s, left:left + s] = patch
    pictures.append(canvas)
gray = torch.from_numpy(np.stack(pictures)).float()[:, None] / 255         # (200, 1, 112, 112)
x = ((gray.repeat(1, 3, 1, 1) - prep.mean[0]) / prep.std[0]).to(fl.device())  # the model's normalisation
print("pictures:", tuple(x.shape), " faces:", int(face.sum()), " per background:", np.bincount(background).tolist())
print("faces per background:", np.bincount(background[face == 1]).tolist())

# %%
fig, axes = plt.subplots(2, 8, figsize=(10, 2.8))
for ax, i in zip(axes.flat, list(range(0, 100, 13)) + list(range(100, 200, 13))):
    ax.imshow(pictures[i], cmap="gray", vmin=0, vmax=255); ax.axis("off")
    ax.set_title(f"{'face' if face[i] else 'non-face'}, {bg_names[background[i]]}", fontsize=7)
plt.tight_layout(); plt.show()

# %% [markdown]
# One forward pass gives every layer's pooled vector (`fl.embed`, average pooling, **not**
# L2-normalised: see the pitfalls). `avgpool` is the mean of `head` over its spatial grid, so its
# vectors are the pooled `head` vectors exactly; we keep `head`. The baseline is the raw pixels,
# shrunk to 28×28 (784 numbers) so the probe on them stays fast.

# %%
# NBVAL_CHECK_OUTPUT
LAYERS = ["stem"] + [f"block{i}" for i in range(1, 8)] + ["head"]
emb = fl.embed(model, x, LAYERS + ["avgpool"], normalize=False, batch_size=50)
emb = {k: v.cpu().double() for k, v in emb.items()}
assert torch.allclose(emb["avgpool"], emb["head"], rtol=1e-4, atol=1e-5)
feats = {"pixels": F.interpolate(gray, size=(28, 28), mode="area").flatten(1).double(),
         **{k: emb[k] for k in LAYERS}}
rows = {}
print("layer       D  | face or not: J  probe | background: J  probe")
for name, f in feats.items():
    rows[name] = (fl.fisher_criterion(f, face), probe(f, face),
                  fl.fisher_criterion(f, background), probe(f, background))
    print(f"{name:7s} {f.shape[1]:5d}  | {rows[name][0]:14.3f}  {rows[name][1]:.3f} | "
          f"{rows[name][2]:13.3f}  {rows[name][3]:.3f}")

# %%
names = list(feats)
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
for k, (task, chance) in enumerate([("face or not", 0.5), ("background", 0.25)]):
    axes[0].semilogy(names, [rows[n][2 * k] for n in names], "o-", label=task)
    axes[1].plot(names, [rows[n][2 * k + 1] for n in names], "o-", label=task)
    axes[1].axhline(chance, ls=":", color=f"C{k}")
axes[0].set_title("Fisher J (log scale)", fontsize=9)
axes[1].set_title("linear probe, 5-fold CV accuracy (dotted: chance)", fontsize=9)
for ax in axes:
    ax.tick_params(axis="x", rotation=45, labelsize=8); ax.legend(fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# **What the numbers say.**
# - **The probe supports "deeper = more semantic".** For *face or not* it climbs from 0.630 on
#   pixels and 0.810 at `stem` through 0.900 (`block2`) and 0.945 (`block4`) to 0.995–1.000 from
#   `block5` on. For *which background* it is 0.990 already at `block2` and 1.000 from `block3`:
#   texture is a shallow feature.
# - **$J$ tells the texture side clearly.** For the background it jumps at `block2` (8.108, from
#   0.360 at `block1`) and then falls at every later layer, to 0.522 at `head`: the background
#   makes up less and less of what varies in the deeper layers — what "more semantic" should
#   mean. It is not *lost*: the probe still reads it perfectly (1.000) at `head`.
# - **$J$ and the probe disagree on faces.** $J$ for *face or not* is *not* monotonic in depth: it
#   is highest at `block1` (0.383) and `stem` (0.316), dips to 0.10 at `block3`/`block4` (where the
#   probe is already 0.930–0.945), rises to 0.290 at `block6` and falls again to 0.236 at `head`.
#   By $J$, `block1` is the most face-separable layer; by the probe it is one of the worst
#   (0.815, against 0.995–1.000 from `block5` on). The high $J$ of `stem`/`block1` fits the edge
#   cue printed above (faces have about five times the edge strength of the non-faces), which
#   the first layers' averaged edge responses would carry; we did not test that explanation
#   further. Only the raw pixels are last by both measures (J = 0.079).
#
# So on this data "deeper = more separable" holds for the probe, and for $J$ only in the sense
# that the background fades from the deeper layers; it does **not** hold for $J$ of the face
# label.
#
# ## Why they disagree: $J$ counts the spread in every direction
#
# Write $u = (\mu_1 - \mu_2)/\lVert\mu_1-\mu_2\rVert$. Then
# $J = J(u) \cdot \frac{u^\top(\Sigma_1+\Sigma_2)u}{\mathrm{tr}(\Sigma_1+\Sigma_2)}$: the criterion
# of the projections onto the mean difference, times the **share of the within-class spread
# that lies along it** (the cell asserts this identity on every layer). Where most of the
# spread lies in other directions — background variation, or simply hundreds of dimensions —
# $J$ is small however well *some* direction separates the classes. A linear probe ignores
# the directions it does not use.
#
# So we also measure $J$ along two single directions, fitted on one half of the pictures (half
# A) and measured on the other (half B), so that the numbers are not flattered by fitting: the
# mean difference $u$, and the Fisher direction with `ridge=1` (why that ridge: next section).

# %%
# NBVAL_CHECK_OUTPUT
half_a, half_b = next(StratifiedKFold(2, shuffle=True, random_state=0).split(np.zeros(200), face))
ya, yb = face[half_a], face[half_b]
held_out = {}
print("                       |  share of the   |  held-out J along a direction |")
print("layer       D  |   J   |  spread along u |  u (mean diff.)  w (Fisher)   | probe")
for name, f in feats.items():
    f = f.numpy()
    u = f[face == 1].mean(0) - f[face == 0].mean(0)
    u /= np.linalg.norm(u)
    spread_u = sum(((f[face == k] - f[face == k].mean(0)) @ u).var() for k in (0, 1))
    spread_all = sum(((f[face == k] - f[face == k].mean(0)) ** 2).sum(1).mean() for k in (0, 1))
    assert np.isclose(rows[name][0], j_along(f, face, u) * spread_u / spread_all)
    fa, fb = f[half_a], f[half_b]
    u_a = fa[ya == 1].mean(0) - fa[ya == 0].mean(0)
    w_a = fl.fisher_direction(fa, ya, ridge=1.0)
    held_out[name] = (j_along(fb, yb, u_a), j_along(fb, yb, w_a))
    print(f"{name:7s} {f.shape[1]:5d}  | {rows[name][0]:5.3f} |   {spread_u / spread_all:6.1%}        |"
          f"  {held_out[name][0]:8.3f}       {held_out[name][1]:8.3f}      | {rows[name][1]:.3f}")

# %% [markdown]
# Three things to read off:
# - the **share of the within-class spread along $u$** falls from 83.1% at `block1` to 2.5% at
#   `head`: in the deep layers the classes differ along a few directions and vary along
#   hundreds, so $J$ stays small although they are well separated;
# - along the mean difference alone, held-out $J(u)$ stays small up to `block4` (0.085–0.187)
#   and only jumps from `block5` on (0.578, then 4.653–6.390);
# - the held-out **Fisher direction**, which discounts the directions in which the classes vary
#   (the background), follows the probe: 0.091 on pixels, 0.543–0.773 at `stem`/`block1`, 0.954
#   → 3.623 over `block2`–`block4`, 18.5–20.5 from `block6` on — and it still separates the deep
#   layers where the probe has saturated. It differs from the probe in details: `block1` is below
#   `stem` (0.543 against 0.773; probe 0.815 against 0.810), and the peak is at `block6`, not `head`.
#
# So the disagreement is not noise. $J$ answers "how far apart are the class means, compared
# with *all* the within-class variation?"; the probe and the Fisher direction answer "is there
# a direction along which the classes separate?". Say which one you mean.
#
# ## The Fisher direction on the network: beware $N \le D$
#
# At `block7` there are $D = 320$ features and 100 pictures in each half, so $S_W$ (fitted on
# half A) is singular and `fl.fisher_direction` adds its tiny default ridge. A larger ridge,
# `ridge=1`, adds the mean per-dimension scatter $\mathrm{tr}(S_W)/D$ to the diagonal: it pulls
# $S_W$ towards a multiple of the identity, i.e. the direction towards the mean difference
# (which is what an infinite ridge gives). We fit each direction on half A and measure $J$ of
# the projections on both halves:

# %%
# NBVAL_CHECK_OUTPUT
f7 = feats["block7"].numpy()
fa, fb = f7[half_a], f7[half_b]
directions = {"mean difference": fa[ya == 1].mean(0) - fa[ya == 0].mean(0),
              "Fisher, default ridge": fl.fisher_direction(fa, ya),
              "Fisher, ridge = 1": fl.fisher_direction(fa, ya, ridge=1.0)}
print("block7, direction from half A | J on half A (fitted) | J on half B (held out)")
for name, w in directions.items():
    fit = j_along(fa, ya, w)
    fit_text = f"{fit:.2f}" if fit < 1e4 else "more than 10^4"
    print(f"{name:29s} | {fit_text:>20s} | {j_along(fb, yb, w):8.2f}")

# %% [markdown]
# With the default (tiny) ridge the projections of half A separate almost perfectly — $J$ above
# $10^4$: with 320 dimensions and 100 pictures there is a direction that squeezes each class of
# the fitting set to nearly a point. That number says nothing about new pictures. On the
# held-out half B the default-ridge Fisher direction (13.23) still beats the mean difference
# (6.39), and `ridge=1` does better still (19.44), with a fitted value (94.58) that is less absurd
# but still about five times its held-out one. Fit a direction on one set, measure it on another.
#
# ## Pitfalls
#
# - **$J$ is not a separability test.** It divides by the spread in *all* directions, so it
#   is small when a layer varies a lot in directions that have nothing to do with the class, even
#   if one direction separates the classes well (above: `block4` has $J$ = 0.101, a probe at 0.945
#   and a held-out Fisher $J$ of 3.623). Pair $J$ with a probe or a held-out $J$ along a direction.
# - **Per-dimension scaling changes $J$.** Scaling all features by one number, shifting or
#   rotating them does not; rescaling features one by one does (0.665 → 1.052 in the toy example).
#   On the network's `head` features, standardising every feature takes the face $J$ from 0.236
#   to 0.146, L2-normalising every vector (`fl.embed`'s default, a different factor per picture)
#   to 0.241 (printed below). Choose the preprocessing, say which, and keep it across layers.
# - **$N$ or $N-1$.** $\sigma_k^2$ here is a *mean* squared distance (divide by $n_k$), like
#   `np.var`. `torch.var` divides by $n_k - 1$ by default (`correction=1`): with five vectors
#   per class that turns $J$ = 1.725 into 1.380 (printed below).
# - **In-sample numbers with $N \le D$.** The Fisher direction, LDA and probes overfit when there
#   are fewer vectors than dimensions; measure on held-out data (cross-validation), and use a
#   ridge or shrinkage.
# - **A mean over pairs hides pairs.** The multi-class $J$ is the mean of the pairwise values;
#   print the pairs when one confusion matters.

# %%
# NBVAL_CHECK_OUTPUT
head = feats["head"]
head_std = (head - head.mean(0)) / head.std(0).clamp_min(1e-12)
print(f"head, face or not: J = {rows['head'][0]:.3f} as pooled, {fl.fisher_criterion(head_std, face):.3f} "
      f"with every feature standardised, {fl.fisher_criterion(fl.l2_normalize(head), face):.3f} "
      "with every vector L2-normalised")
small_a, small_b = toy_x[:5], toy_x[40:45]                       # five vectors per class
unbiased = float(((small_a.mean(0) - small_b.mean(0)) ** 2).sum()
                 / (torch.var(small_a, dim=0).sum() + torch.var(small_b, dim=0).sum()))
print(f"5 vectors per class: J = {fisher_j(small_a, small_b):.3f} (divide by n), "
      f"{unbiased:.3f} with torch.var (divide by n - 1)")

# %% [markdown]
# **Exercise:** `exercises/09_fisher_criterion.ipynb` — write the class mean and spread,
# two-class $J$, the multi-class mean over pairs and the projection onto a direction yourself,
# then use them on the network's layers.

# %%
print(f"notebook run time: {time.time() - t0:.0f} s")
