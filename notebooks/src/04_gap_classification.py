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
# # 04 · GAP classification and Class Activation Maps
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# The last layers of many modern CNNs are short: **global average pooling** (GAP) squeezes
# the final feature map to one number per channel, and a single **linear layer** turns those
# numbers into class scores. In this notebook we take a pretrained network apart at that
# seam, rebuild its prediction by hand, and see what the seam tells us: GAP keeps *what* is
# in the picture and throws away *where*, yet the same weights can put the *where* back as
# a **Class Activation Map** (CAM).
#
# **Learning goals**
# - Rebuild a classifier's logits from its last feature map with a mean and a matrix product.
# - Measure that GAP features are (almost) unchanged when the object moves, while the
#   flattened map is not.
# - Write CAM as one `einsum`, check it against `fl.cam`, and read CAM overlays.
# - Train a linear probe on frozen GAP features and compare it with the same probe on pixels.
#
# **Prerequisites:** `00_setup_and_tour` (models, preprocessing), `05_feature_maps`
# (`fl.extract`, layer names); a little scikit-learn.
#
# **Run time:** about 30 s on a 2-core laptop CPU, no GPU needed, works offline.

# %% [markdown]
# ## The idea
#
# Let the last convolutional block give a feature map $y \in \mathbb{R}^{C \times H \times W}$
# (for EfficientNet-Lite0: $C = 1280$, $H = W = 7$). The head computes
#
# $$g_c = \frac{1}{HW}\sum_{h,w} y_{c,h,w}, \qquad z_k = \sum_c W_{k,c}\, g_c + b_k, \qquad
# p = \operatorname{softmax}(z).$$
#
# Because the mean and the matrix product are both linear, they can be swapped:
#
# $$z_k = \frac{1}{HW}\sum_{h,w} \underbrace{\sum_c W_{k,c}\, y_{c,h,w}}_{M_k(h,w)} + b_k .$$
#
# $M_k$ is the **class activation map** of class $k$ (Zhou et al., 2016): how much each
# position contributes to the logit of class $k$. Its mean (plus the bias) *is* the logit.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import featlab as fl

torch.manual_seed(0)
np.random.seed(0)
plt.rcParams["figure.dpi"] = 72

model = fl.load_model("efficientnet_lite0")   # pretrained, offline, on fl.device()
labels = fl.imagenet_labels()

# %% [markdown]
# ## Taking the network apart
#
# The last four entries of `fl.layer_names` show the seam: `bn2` (alias `head`) gives
# the (1280, 7, 7) map, `global_pool` averages it to 1280 numbers, `classifier` is a
# Linear layer 1280 → 1000.

# %%
# NBVAL_CHECK_OUTPUT
shapes = fl.layer_names(model)
for name in ["bn2", "global_pool", "classifier"]:
    print(f"{name:12s} -> {shapes[name]}")
print("alias 'head' =", fl.resolve_layer(model, "head"))
print(model.classifier)


# %% [markdown]
# ## From scratch: GAP + Linear = the model's logits
#
# We take the feature map with `fl.extract`, average it ourselves, multiply by the
# classifier's weights, and compare with the logits the full model returns.

# %%
def gap(y: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) feature map -> (N, C): the mean over all positions."""
    return y.mean(dim=(2, 3))


def linear_head(g: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """(N, C) pooled features -> (N, K) logits: z = g Wᵀ + b."""
    return g @ weight.T + bias


W = model.classifier.weight.detach()     # (1000, 1280)
b = model.classifier.bias.detach()       # (1000,)

x = fl.preprocess(["chelsea", "coffee"], model)   # (2, 3, 224, 224)
y = fl.extract(model, x, "head")["head"]          # (2, 1280, 7, 7)
with torch.inference_mode():
    logits_model = model(x)
logits_ours = linear_head(gap(y), W, b)

err = (logits_ours - logits_model).abs().max().item()
assert torch.allclose(logits_ours, logits_model, atol=1e-4, rtol=1e-4), err
assert torch.allclose(gap(y), F.adaptive_avg_pool2d(y, 1).flatten(1), atol=1e-6)
print("max |our logits - model logits| =", f"{err:.1e}")

# %%
# NBVAL_CHECK_OUTPUT
probs = logits_ours.softmax(dim=1).cpu()
for name, p, pred in zip(["chelsea", "coffee"], probs, fl.predict(model, x, topk=3)):
    top = p.topk(3)
    ours = [labels[i] for i in top.indices]
    assert ours == [lab for lab, _ in pred]          # same ranking as fl.predict
    print(f"{name:8s}", ", ".join(f"{lab} {q:.2f}" for lab, q in zip(ours, top.values)))

# %% [markdown]
# Nothing else happens after `bn2`: 1280 averages and one matrix product *are* the
# classifier. Everything the network knows about the picture must be in those 1280
# averages.

# %% [markdown]
# ## GAP knows *what*, not *where* — measured
#
# If the head only sees averages, moving the object should hardly change the pooled vector,
# while the full 7 × 7 map (flattened to 62 720 numbers) should change a lot. We paste a
# 96 × 96 crop of the cat's head on the grass texture at 9 positions, and a crop of the
# espresso cup at the same 9 positions, then compare every picture with the *cat in the
# centre* using cosine similarity,
# $\cos(u, v) = \frac{u \cdot v}{\lVert u\rVert\,\lVert v\rVert}$.
#
# The canvases are 256 × 256, the size the model's preprocessing resizes to, so the
# centre-crop keeps the middle 224 × 224: a canvas position $(p_x, p_y)$ becomes
# $(p_x - 16, p_y - 16)$ in the model input.

# %%
cat_crop = fl.load_image("chelsea").crop((75, 0, 375, 300)).resize((96, 96), Image.BICUBIC)
cup_crop = fl.load_image("coffee").crop((30, 20, 430, 400)).resize((96, 96), Image.BICUBIC)
grass = fl.load_image("grass").resize((256, 256), Image.BICUBIC)


def paste(obj: Image.Image, pos: tuple[int, int], background: Image.Image = grass) -> Image.Image:
    """A copy of ``background`` with ``obj`` pasted at pixel ``pos`` = (x, y) of its top-left corner."""
    canvas = background.copy()
    canvas.paste(obj, pos)
    return canvas


positions = [(16 + dx, 16 + dy) for dy in (0, 64, 128) for dx in (0, 64, 128)]
scenes = [paste(cat_crop, p) for p in positions] + [paste(cup_crop, p) for p in positions]
kinds = ["cat"] * 9 + ["cup"] * 9
ref = 4                                                   # the cat in the centre

ys = fl.extract(model, fl.preprocess(scenes, model), "head")["head"]   # (18, 1280, 7, 7)
gs = gap(ys)
cos_gap = F.cosine_similarity(gs, gs[ref : ref + 1]).cpu()
cos_flat = F.cosine_similarity(ys.flatten(1), ys[ref : ref + 1].flatten(1)).cpu()
top1 = linear_head(gs, W, b).argmax(dim=1).cpu()

fig = fl.plot.show_images([scenes[i] for i in (0, 4, 8, 13)],
                          ["cat, top-left", "cat, centre (reference)", "cat, bottom-right", "cup, centre"],
                          ncols=4, size=1.8)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'object':6s} {'position':10s} {'top-1 (from GAP)':18s} {'cos GAP':>8s} {'cos flat':>9s}")
for i in range(18):
    print(f"{kinds[i]:6s} {str(positions[i % 9]):10s} {labels[top1[i]]:18s} "
          f"{cos_gap[i]:8.2f} {cos_flat[i]:9.2f}")

# %%
# NBVAL_CHECK_OUTPUT
moved = [i for i in range(9) if i != ref]
cups = list(range(9, 18))
summary = {
    "cat moved":  (cos_gap[moved].mean().item(), cos_flat[moved].mean().item()),
    "cup (any position)": (cos_gap[cups].mean().item(), cos_flat[cups].mean().item()),
}
for k, (cg, cf) in summary.items():
    print(f"{k:20s} mean cos GAP {cg:.2f}   mean cos flattened map {cf:.2f}")
assert summary["cat moved"][0] > summary["cup (any position)"][0]     # GAP separates cat from cup ...
assert summary["cat moved"][0] > summary["cat moved"][1]              # ... and barely notices the move

# %%
fig, ax = plt.subplots(figsize=(4.2, 3.2))
for kind, marker in [("cat", "o"), ("cup", "s")]:
    idx = [i for i in range(18) if kinds[i] == kind and i != ref]
    ax.scatter(cos_flat[idx], cos_gap[idx], marker=marker, label=f"{kind} (moved)")
ax.plot([0, 1], [0, 1], "k:", lw=0.8)
ax.set_xlabel("cosine to reference, flattened 7×7 map")
ax.set_ylabel("cosine to reference, GAP vector")
ax.set_xlim(0, 1); ax.set_ylim(0, 1)
ax.legend(fontsize=8); ax.set_title("GAP keeps what, drops where", fontsize=9)
fig.tight_layout()


# %% [markdown]
# Read the table and the plot: a moved cat keeps a GAP vector very close to the reference
# (the upper-left cluster), and the head still predicts a cat at every position; the
# flattened map of the same moved cat falls far from the reference — in the summary its mean
# cosine is even below the cup's *GAP* cosine. The cup's GAP vector is far from the cat's at
# any position: GAP separates *what*, and ignores *where*. Position is *in* the feature map — it is the averaging
# that removes it.

# %% [markdown]
# ## Class Activation Maps from scratch
#
# $M_k(h, w) = \sum_c W_{k,c}\, y_{c,h,w}$ is one `einsum`: for each image `n`, take the
# weight row of its target class and dot it with the channel vector at every position.

# %%
def cam_from_scratch(y: torch.Tensor, weight: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) map, (K, C) weights, (N,) classes -> (N, H, W) class activation maps."""
    return torch.einsum("nc,nchw->nhw", weight[target], y)


target = logits_ours.argmax(dim=1)                  # the top-1 class of chelsea and coffee
maps = cam_from_scratch(y, W, target)               # (2, 7, 7)

# 1. the map's mean plus the bias is the logit
rebuilt = maps.mean(dim=(1, 2)) + b[target]
assert torch.allclose(rebuilt, logits_model.gather(1, target[:, None])[:, 0], atol=1e-4)
# 2. featlab's raw CAM is the same map
raw = fl.cam(model, x, target, upsample=False, normalize=False)
assert torch.allclose(maps, raw, atol=1e-4)
# 3. ... and its default (bilinear upsampling to 224 × 224, min-max to [0, 1]) too
up = F.interpolate(maps[:, None], size=(224, 224), mode="bilinear", align_corners=False)[:, 0]
lo, hi = up.amin(dim=(1, 2), keepdim=True), up.amax(dim=(1, 2), keepdim=True)
assert torch.allclose((up - lo) / (hi - lo), fl.cam(model, x, target), atol=1e-4)
print("CAM from scratch == fl.cam; mean(CAM) + bias == logit")

# %% [markdown]
# ## CAM on real pictures: top class and another class
#
# For chelsea we show the maps of the top class and of an unrelated class ("espresso"),
# for coffee the top class and "tabby". `fl.cam` returns maps in [0, 1] at the input's
# resolution; `fl.plot.overlay` draws them over the de-normalised input.

# %%
cls = {name: labels.index(name) for name in ["tiger cat", "tabby", "espresso"]}
pre = fl.preprocess_for(model)
rows = [("chelsea", x[0], [target[0].item(), cls["espresso"]]),
        ("coffee", x[1], [target[1].item(), cls["tabby"]])]
fig, axes = plt.subplots(2, 3, figsize=(7, 4.6))
for r, (name, xi, ks) in enumerate(rows):
    img = pre.denormalize(xi).cpu()
    axes[r, 0].imshow(img.permute(1, 2, 0)); axes[r, 0].axis("off"); axes[r, 0].set_title(name, fontsize=9)
    for c, k in enumerate(ks, start=1):
        m = fl.cam(model, xi[None], k)[0]
        fl.plot.overlay(img, m, ax=axes[r, c], title=f"CAM '{labels[k]}'")
fig.tight_layout()

# %% [markdown]
# Min-max normalisation makes *every* map use the full colour range, even for a class the
# picture has no evidence for. To compare classes, measure instead. Below, a scene holds the
# cat (left) and the cup (right); for the classes "tiger cat" and "espresso" we ask what
# fraction of the positive CAM mass falls in each object's box, and where the maximum is.

# %%
scene = paste(cup_crop, (136, 80), paste(cat_crop, (24, 80)))
xs = fl.preprocess(scene, model)
boxes = {"cat": (8, 64, 104, 160), "cup": (120, 64, 216, 160)}   # (x0, y0, x1, y1) in the 224 input


def box_mass(m: torch.Tensor, box: tuple[int, int, int, int]) -> float:
    """Fraction of the positive part of the (H, W) map that lies inside ``box``."""
    pos = m.clamp_min(0)
    x0, y0, x1, y1 = box
    return (pos[y0:y1, x0:x1].sum() / pos.sum()).item()


def argmax_in(m: torch.Tensor) -> str:
    """Name of the box that contains the map's maximum, or 'neither'."""
    r, c = divmod(m.argmax().item(), m.shape[1])
    return next((k for k, (x0, y0, x1, y1) in boxes.items() if x0 <= c < x1 and y0 <= r < y1), "neither")


scene_maps = {}
for k in ["tiger cat", "espresso"]:
    scene_maps[k] = fl.cam(model, xs, cls[k], normalize=False)[0].cpu()   # raw, upsampled

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'class':10s} {'mass in cat box':>16s} {'mass in cup box':>16s}  max lies in")
for k, m in scene_maps.items():
    print(f"{k:10s} {box_mass(m, boxes['cat']):16.2f} {box_mass(m, boxes['cup']):16.2f}  {argmax_in(m)}")
assert box_mass(scene_maps["tiger cat"], boxes["cat"]) > box_mass(scene_maps["tiger cat"], boxes["cup"])
assert box_mass(scene_maps["espresso"], boxes["cup"]) > box_mass(scene_maps["espresso"], boxes["cat"])

# %%
import matplotlib.patches as patches

img = pre.denormalize(xs[0]).cpu()
fig, axes = plt.subplots(1, 2, figsize=(6, 3.2))
for ax, (k, m) in zip(axes, scene_maps.items()):
    fl.plot.overlay(img, (m - m.min()) / (m.max() - m.min()), ax=ax, title=f"CAM '{k}'")
    for x0, y0, x1, y1 in boxes.values():
        ax.add_patch(patches.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="w", lw=1))
fig.tight_layout()

# %% [markdown]
# ## A linear probe on frozen GAP features
#
# If the 1280 GAP numbers describe *what* is in a picture, a plain linear classifier on
# top of them should learn new categories from few examples — the network stays frozen.
# We test this on three textures that ship with scikit-image (brick, grass, gravel):
# 64 × 64 grayscale crops, 12 per class for training taken from the **top half** of each
# texture, 12 per class for testing from the **bottom half** (so no test crop overlaps a
# training crop). The same `LogisticRegression` is trained on the raw pixels as a baseline.

# %%
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

rng = np.random.default_rng(0)
textures = ["brick", "grass", "gravel"]
crops, y_tex, half = [], [], []
for k, name in enumerate(textures):
    a = np.asarray(fl.load_image(name).convert("L"))           # (512, 512) uint8
    for h in (0, 1):                                             # 0 = top half (train), 1 = bottom (test)
        for _ in range(12):
            r = rng.integers(0, 256 - 64) + 256 * h
            c = rng.integers(0, 512 - 64)
            crops.append(a[r : r + 64, c : c + 64])
            y_tex.append(k)
            half.append(h)
crops, y_tex, half = np.stack(crops), np.array(y_tex), np.array(half)
train, test = half == 0, half == 1

feats = {
    "raw pixels (4096)": crops.reshape(len(crops), -1).astype(np.float32) / 255,
    "GAP features (1280)": gap(fl.extract(model, fl.preprocess(list(crops), model), "head",
                                          batch_size=36)["head"]).cpu().numpy(),
}


def probe_accuracy(X: np.ndarray) -> tuple[float, float]:
    """Train a standardised logistic regression on the train crops; (train, test) accuracy."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    clf.fit(X[train], y_tex[train])
    return clf.score(X[train], y_tex[train]), clf.score(X[test], y_tex[test])


results = {name: probe_accuracy(X) for name, X in feats.items()}

# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(crops[train])} training crops, {len(crops[test])} test crops, 3 classes (chance = 0.33)")
print(f"{'features':22s} {'train acc':>9s} {'test acc':>9s}")
for name, (tr, te) in results.items():
    print(f"{name:22s} {tr:9.2f} {te:9.2f}")
assert results["GAP features (1280)"][1] > results["raw pixels (4096)"][1]

# %%
fig, axes = plt.subplots(1, 4, figsize=(8, 2.2), gridspec_kw={"width_ratios": [1, 1, 1, 2]})
for k, ax in enumerate(axes[:3]):
    ax.imshow(crops[y_tex == k][0], cmap="gray"); ax.axis("off"); ax.set_title(textures[k], fontsize=9)
names = list(results)
axes[3].bar([0, 1], [results[n][1] for n in names], color=["grey", "tab:blue"])
axes[3].axhline(1 / 3, color="k", ls=":", lw=0.8)
axes[3].set_xticks([0, 1], ["raw pixels", "GAP features"], fontsize=8)
axes[3].set_ylim(0, 1.05); axes[3].set_ylabel("held-out accuracy", fontsize=8)
fig.tight_layout()

# %% [markdown]
# Pixels tell textures apart only partly: a linear rule on raw intensities at fixed
# positions cannot cope with the same pattern shifted by a few pixels. GAP features, being
# averages over positions, are shift-tolerant by construction and carry what ImageNet
# training taught the network about surfaces — a linear rule on them separates the three
# textures on crops it has never seen.

# %% [markdown]
# ## Pitfalls
#
# - **CAM needs a GAP → Linear head.** VGG flattens its 7 × 7 × 512 map into `fc6`, so the
#   weights do not split per position; `fl.cam` refuses such models with a message
#   (demonstrated below) — use Grad-CAM (`06_grad_cam`) there.
# - **Normalised maps always look confident.** Min-max scaling to [0, 1] hides the scale and
#   the sign: a class with no evidence still gets a bright spot. Compare classes on raw maps
#   (`normalize=False`), as in the box-mass table.
# - **The bias is not in the map.** $z_k = \operatorname{mean}(M_k) + b_k$; the bias shifts
#   every position equally and is left out.
# - **7 × 7 is coarse.** Each CAM cell covers 32 × 32 input pixels; the smooth look comes from
#   bilinear upsampling, not from the network.
# - **Leaky probe splits.** Random crops from one texture overlap; splitting crops at random
#   would put near-copies of test crops in the training set. Split by region, as above.
# - **Preprocessing moves things.** Resize 256 + centre-crop 224 shifts and scales what you
#   pasted; compute boxes in the model's input, not in your canvas.

# %%
# NBVAL_CHECK_OUTPUT
no_gap = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 30 * 30, 10))
try:
    fl.cam(no_gap, torch.zeros(1, 3, 32, 32))
except ValueError as e:
    print("ValueError:", str(e).split("(")[0].strip())

# %% [markdown]
# ## Exercise
#
# Open `exercises/04_gap_classification.ipynb`: write GAP + linear logits, CAM as an
# `einsum`, and the upsample-and-normalise step yourself; each task has a check cell.
