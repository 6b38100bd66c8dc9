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
# - Train a linear probe on frozen GAP features and compare it, over several splits, with
#   baselines that could win: a hand-made 4-number feature, a random-weights network, pixels.
#
# **Prerequisites:** `00_setup_and_tour` (models, preprocessing, `fl.extract`, layer names),
# `02_receptive_fields` (stride and receptive field); a little scikit-learn.
#
# **Run time:** about 40 s on a 2-core laptop CPU, no GPU needed, works offline.

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

import skimage.data

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

# %% [markdown]
# A cosine means something only next to another cosine *in the same space*: the flattened map
# has 62 720 dimensions, the GAP vector 1280, and their typical cosines differ. So in each space
# we ask one question — is a moved cat closer to the reference than a cup is? — and measure the
# margin (mean cosine of the 8 moved cats minus that of the 9 cups) with a 95 % bootstrap interval.

# %%
# NBVAL_CHECK_OUTPUT
moved = [i for i in range(9) if i != ref]
cups = list(range(9, 18))
boot = np.random.default_rng(0)
margins = {}
for space, c in [("GAP vector", cos_gap.numpy()), ("flattened map", cos_flat.numpy())]:
    diffs = [boot.choice(c[moved], 8).mean() - boot.choice(c[cups], 9).mean() for _ in range(2000)]
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    margins[space] = c[moved].mean() - c[cups].mean()
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"
    print(f"{space:13s}: mean cos moved cat {c[moved].mean():.2f}, cup {c[cups].mean():.2f}; margin "
          f"{margins[space]:+.2f} (95 % interval {lo:+.2f} to {hi:+.2f}) -> moved cat vs cup: {verdict}")
    if space == "flattened map":
        n_beat = sum(c[i] > c[cups].max() for i in moved)
        print(f"{'':13s}  moved cats closer than every cup: {n_beat} of 8")

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
# Read the table and the plot: in GAP space a moved cat stays much closer to the reference
# than a cup, and the head still predicts a cat at every position. In the flattened map the
# moved cat is also closer on average (verdict better in both spaces), but by a much smaller
# margin, and only half of the moved cats are closer to the reference than every cup: there,
# *where* the cat is weighs about as much as *what* it is. GAP separates *what* and ignores *where*. Position is *in* the
# feature map — it is the averaging that removes it.

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
# If the 1280 GAP numbers describe *what* is in a picture, a plain linear classifier on top of
# them should learn new categories from few examples — the network stays frozen. A claim like
# that needs baselines that *could* win:
#
# - **raw pixels**: the same classifier on the crop's 1024 grey values;
# - **a hand-made feature** of four numbers: mean brightness, contrast (standard deviation),
#   mean |horizontal gradient|, mean |vertical gradient|;
# - **the same network with random weights**: its GAP features show how much comes from the
#   architecture (convolutions + averaging) and how much from ImageNet training.
#
# The task: six grey-level sources that ship with scikit-image (brick, grass, gravel, the moon's
# surface, coins, the cameraman), 32 × 32 crops, "which picture is this crop from?". Each picture
# is cut into a 4 × 4 grid of regions and three crops are taken inside each region, so a fold of whole
# regions never overlaps the training crops. Four folds × three shuffles of the regions = 12
# splits. The crops are upsampled to 96 × 96 for the networks, and the classifier is a linear ridge
# classifier on standardised features. We print mean ± standard deviation over splits, and the pretrained network's advantage
# over each baseline with a 95 % bootstrap interval over the splits.

# %%
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

rng = np.random.default_rng(0)
sources = ["brick", "grass", "gravel", "moon", "coins", "camera"]
crops, y_src, region = [], [], []
for k, name in enumerate(sources):
    src = skimage.data.moon() if name == "moon" else np.asarray(fl.load_image(name).convert("L"))
    rh, rw = src.shape[0] // 4, src.shape[1] // 4
    for g in range(16):                                          # 4 × 4 grid of regions
        r0, c0 = (g // 4) * rh, (g % 4) * rw
        for _ in range(3):                                       # 3 crops inside each region
            r, c = r0 + rng.integers(0, rh - 32), c0 + rng.integers(0, rw - 32)
            crops.append(src[r : r + 32, c : c + 32])
            y_src.append(k)
            region.append(16 * k + g)
crops, y_src, region = np.stack(crops), np.array(y_src), np.array(region)


def net_input(c: np.ndarray) -> torch.Tensor:
    """(N, 32, 32) uint8 crops -> (N, 3, 96, 96) normalised for Lite0 (grey repeated to RGB)."""
    t = torch.from_numpy(c).float()[:, None].div(255).repeat(1, 3, 1, 1)
    t = F.interpolate(t, size=96, mode="bicubic", align_corners=False).clamp(0, 1)
    return fl.preprocess_for(model).normalize((t * 255).round().to(torch.uint8)).to(fl.device())


def hand_made(c: np.ndarray) -> np.ndarray:
    """(N, 32, 32) crops -> (N, 4): mean, standard deviation, mean |d/dx|, mean |d/dy|."""
    c = c.astype(np.float32) / 255
    return np.stack([c.mean((1, 2)), c.std((1, 2)),
                     np.abs(np.diff(c, axis=2)).mean((1, 2)), np.abs(np.diff(c, axis=1)).mean((1, 2))], 1)


torch.manual_seed(0)
random_net = fl.load_model("efficientnet_lite0", pretrained=False).eval()
x_crops = net_input(crops)
feats = {
    "raw pixels (1024)": crops.reshape(len(crops), -1).astype(np.float32) / 255,
    "hand-made (4)": hand_made(crops),
    "random-weights GAP (1280)": gap(fl.extract(random_net, x_crops, "head", batch_size=64)["head"]).cpu().numpy(),
    "pretrained GAP (1280)": gap(fl.extract(model, x_crops, "head", batch_size=64)["head"]).cpu().numpy(),
}
splits = [split for seed in range(3)
          for split in StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=seed).split(crops, y_src, region)]
# ridge: a closed-form linear probe, fast enough for 12 splits × 4 feature sets


def probe_accuracy(X: np.ndarray, train: np.ndarray, test: np.ndarray) -> float:
    """Standardised linear classifier (ridge, one-vs-rest) trained on ``train``; accuracy on ``test``."""
    clf = make_pipeline(StandardScaler(), RidgeClassifier(alpha=10.0))
    return clf.fit(X[train], y_src[train]).score(X[test], y_src[test])


acc = {name: np.array([probe_accuracy(X, tr, te) for tr, te in splits]) for name, X in feats.items()}

# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(crops)} crops of {len(sources)} pictures, {len(splits)} splits "
      f"(about {len(splits[0][1])} test crops each), chance = {1 / len(sources):.2f}")
print(f"{'features':26s} test accuracy (mean ± sd over splits)")
for name, a in acc.items():
    print(f"{name:26s} {a.mean():.3f} ± {a.std():.3f}")
print()
best = acc["pretrained GAP (1280)"]
boot = np.random.default_rng(0)
for name, a in acc.items():
    if name == "pretrained GAP (1280)":
        continue
    d = best - a
    lo, hi = np.percentile([boot.choice(d, len(d)).mean() for _ in range(2000)], [2.5, 97.5])
    verdict = "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"
    print(f"pretrained - {name:26s} {d.mean():+.3f} (95 % interval {lo:+.3f} to {hi:+.3f}) -> pretrained: {verdict}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 2.6), gridspec_kw={"width_ratios": [1.2, 1]})
axes[0].imshow(np.concatenate([np.concatenate(list(crops[y_src == k][:4]), 0) for k in range(6)], 1), cmap="gray")
axes[0].set_xticks(16 + 32 * np.arange(6), sources, fontsize=8); axes[0].set_yticks([])
axes[0].set_title("four crops of each picture (32 × 32)", fontsize=9)
for i, (name, a) in enumerate(acc.items()):
    axes[1].plot(np.full(len(a), i) + np.linspace(-0.15, 0.15, len(a)), a, ".", color="0.5")
    axes[1].errorbar(i, a.mean(), yerr=a.std(), fmt="o", color="C3", capsize=3)
axes[1].axhline(1 / 6, color="k", ls=":", lw=0.8)
axes[1].set_xticks(range(4), ["pixels", "hand-made", "random net", "pretrained"], fontsize=8)
axes[1].set_ylim(0, 1.02); axes[1].set_ylabel("test accuracy", fontsize=8)
axes[1].set_title("dots: 12 splits; red: mean ± sd", fontsize=9)
fig.tight_layout()

# %% [markdown]
# Read the verdict lines: the pretrained GAP features beat each of the three baselines (verdict
# **better** every time, over all 12 splits). Raw pixels at fixed positions barely beat chance —
# a shifted pattern is a different vector. The two baselines that *could* have won do much better
# than pixels and still lose clearly: four hand-made statistics, and the very same architecture
# with random weights (convolutions and averaging alone). So the gap to the pretrained network is
# what ImageNet training adds, not the averaging.
#
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
# - **7 × 7 is coarse.** CAM cells are 32 input pixels *apart* (the stride), but each cell
#   *sees* far more than a 32 × 32 square: its receptive field (notebook 02, printed below) is
#   wider than the whole picture, so a cell's value can depend on pixels anywhere. The smooth
#   look comes from bilinear upsampling, not from the network.
# - **Leaky probe splits.** Random crops from one picture overlap; splitting crops at random
#   would put near-copies of test crops in the training set. Split by region, as above.
# - **One split, one number.** With a few dozen test crops one split can move accuracy by several
#   points; report the spread over splits and compare against baselines that could win.
# - **Preprocessing moves things.** Resize 256 + centre-crop 224 shifts and scales what you
#   pasted; compute boxes in the model's input, not in your canvas.

# %%
# NBVAL_CHECK_OUTPUT
rf_head = fl.receptive_field(model, "head")
print(f"head: {rf_head.output_size[0]}×{rf_head.output_size[1]} cells, {rf_head.stride[0]} px apart, "
      f"each with a receptive field of {rf_head.size[0]} × {rf_head.size[1]} px (the input is 224 × 224)")

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
