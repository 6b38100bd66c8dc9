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
# # 06 — Grad-CAM: which pixels made the network say "cat"?
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - derive Grad-CAM from the chain rule and write it from scratch with two hooks;
# - know why gradients are recorded with `tensor.register_hook`, not module backward hooks;
# - see that Grad-CAM at the layer feeding global average pooling *is* CAM (notebook 04);
# - check the from-scratch version against an independent implementation, `pytorch_grad_cam`;
# - *measure* what a saliency map is worth, with bootstrap intervals and baselines that could win:
#   class contrast, a sanity check with randomised weights, a pointing game with known object
#   positions, and the effect of the layer you pick.
#
# **Prerequisites:** `04_gap_classification` (GAP and CAM), `05_feature_maps` (forward hooks).
# **Run time:** about 40 s on a 2-core CPU.
#
# CAM (notebook 04) needs a very particular head: global average pooling straight into one
# linear layer. Grad-CAM (Selvaraju et al., 2017) works for any convolutional layer of any
# network. Take the score of class $c$ *before* the softmax, $y^c$, and a layer's output
# $A \in \mathbb{R}^{K \times h \times w}$ ($K$ channels). The gradient $\partial y^c / \partial A_k$
# says how much the score would rise if channel $k$ fired more at each position. Average it
# over the positions to get one weight per channel, then sum the channels with those weights:
#
# $$\alpha_k^c = \frac{1}{hw}\sum_{i,j} \frac{\partial y^c}{\partial A_k[i,j]}, \qquad
# L^c_{\text{Grad-CAM}} = \mathrm{ReLU}\Big(\sum_k \alpha_k^c A_k\Big).$$
#
# The ReLU keeps only the evidence *for* the class. Finally the $h \times w$ map is upsampled to
# the input size and scaled to $[0, 1]$ to lay it over the picture.

# %%
# %matplotlib inline
import copy
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import spearmanr

import featlab as fl

t0 = time.time()
torch.manual_seed(0)
rng = np.random.default_rng(0)
plt.rcParams["figure.dpi"] = 72
model = fl.load_model("efficientnet_lite0")
labels = fl.imagenet_labels()
TABBY = labels.index("tabby")
x = fl.preprocess("chelsea", model)          # (1, 3, 224, 224) on the model's device
picture = fl.preprocess_for(model).denormalize(x[0]).cpu()  # (3, 224, 224) in [0, 1], for overlays

# %% [markdown]
# ## From scratch: a forward hook and a tensor hook
#
# We need two things from the layer: its output $A$ (a forward hook records it) and the gradient
# of the class score with respect to $A$. For the gradient we put a hook **on the output tensor
# itself** (`A.register_hook`), which autograd calls with $\partial y^c / \partial A$ during
# `backward()`. The layer is `head`, EfficientNet's last convolution block (1280 channels at 7×7).

# %%
# NBVAL_CHECK_OUTPUT
saved = {}

def forward_hook(module, inputs, output):
    saved["A"] = output.detach().clone()                         # (1, K, h, w)
    output.register_hook(lambda grad: saved.update(dA=grad.detach().clone()))

layer = dict(model.named_modules())[fl.resolve_layer(model, "head")]
handle = layer.register_forward_hook(forward_hook)
try:
    logits = model(x)                                            # (1, 1000), gradients on
    logits[0, TABBY].backward()                                  # y^c: the tabby score
finally:
    handle.remove()
model.zero_grad(set_to_none=True)                                # backward() filled .grad of the weights

A, dA = saved["A"][0], saved["dA"][0]                            # (K, h, w) each
alpha = dA.mean(dim=(1, 2))                                      # (K,)  one weight per channel
raw = torch.relu((alpha[:, None, None] * A).sum(dim=0))         # (h, w)
up = F.interpolate(raw[None, None], size=(224, 224), mode="bilinear", align_corners=False)[0, 0]
scratch = (up - up.min()) / (up.max() - up.min())                # (224, 224) in [0, 1]

ours = fl.grad_cam(model, x, "head", target=TABBY)[0]
assert torch.allclose(scratch, ours, atol=1e-5)
print("A:", tuple(A.shape), " alpha:", tuple(alpha.shape), " map:", tuple(raw.shape), "->", tuple(ours.shape))
print("from scratch == fl.grad_cam")

# %% [markdown]
# **An independent check.** The package `pytorch_grad_cam` (Gildenblat et al., `pip install
# grad-cam`) implements the same method with its own hooks. It normalises the $h \times w$ map to
# $[0, 1]$ and *then* resizes it; `fl.grad_cam` resizes and then normalises. Bilinear resizing
# keeps the ordering of values but not always the exact extremes, so the two agree to a
# tolerance, printed below.

# %%
# NBVAL_CHECK_OUTPUT
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

with GradCAM(model=model, target_layers=[layer]) as reference:
    theirs = torch.from_numpy(reference(input_tensor=x, targets=[ClassifierOutputTarget(TABBY)])[0])
model.zero_grad(set_to_none=True)                                # it leaves .grad on the weights
gap = float((theirs - ours.cpu()).abs().max())
assert gap < 1e-3
print(f"pytorch_grad_cam.GradCAM vs fl.grad_cam: max |difference| < 0.001 on the {tuple(theirs.shape)} map")

# %% [markdown]
# `fl.grad_cam(model, images, layer, target=None)` does the same for a batch (one target class per
# image, `None` = the top-1 class), always removes its hooks (also after an error), leaves no
# `.grad` on the weights, and stops the backward pass at the layer instead of running it down to
# the input. `upsample=False, normalize=False` returns the raw $h \times w$ map.
#
# ## The real thing: pictures and their top class

# %%
# NBVAL_CHECK_OUTPUT
names = ["chelsea", "coffee", "flower", "rocket"]
xs = fl.preprocess(names, model)
top1 = [p[0][0] for p in fl.predict(model, xs, topk=1)]
maps = fl.grad_cam(model, xs, "head").cpu()                      # target None: each image's top-1
print("maps:", tuple(maps.shape), f" range: {float(maps.min()):.2f} to {float(maps.max()):.2f}")
for n, lab in zip(names, top1):
    print(f"{n:8s} -> {lab}")

# %%
fig, axes = plt.subplots(1, 4, figsize=(8, 2.3))
for ax, n, lab, m_ in zip(axes, names, top1, maps):
    fl.plot.overlay(fl.preprocess_for(model).denormalize(xs[names.index(n)]).cpu(), m_, ax=ax, title=f"{n}: {lab}")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Grad-CAM at the layer feeding GAP is CAM
#
# For a GAP→Linear head, $y^c = \sum_k W_{ck}\,\frac{1}{hw}\sum_{i,j}A_k[i,j] + b_c$, so
# $\partial y^c/\partial A_k[i,j] = W_{ck}/hw$ everywhere and $\alpha^c_k = W_{ck}/hw$:
# Grad-CAM at `head` equals $\mathrm{ReLU}(\text{CAM})/hw$. Check it on the raw maps:

# %%
# NBVAL_CHECK_OUTPUT
g_raw = fl.grad_cam(model, x, "head", target=TABBY, upsample=False, normalize=False)[0].cpu()
c_raw = fl.cam(model, x, target=TABBY, upsample=False, normalize=False)[0].cpu()
hw = g_raw.numel()
assert torch.allclose(g_raw * hw, c_raw.relu(), rtol=1e-3, atol=1e-4)
print(f"Grad-CAM * {hw} == ReLU(CAM) on the {tuple(g_raw.shape)} grid")
print("pixels where CAM < 0 (ReLU zeroes them):", int((c_raw < 0).sum()), "of", hw)


# %% [markdown]
# ## Measure (a): does the map depend on the class?
#
# A saliency map that shows the same blob for every class explains nothing. Two tests:
# 1. on `chelsea`, compare the tabby map with maps for other cat classes and for unrelated classes;
# 2. on a picture with **two objects** — the cat on the left, the espresso on the right — the
#    "tabby" and "espresso" maps should point at different halves. We report each map's
#    correlation with the tabby map and the share of its mass in the left half.

# %%
# NBVAL_CHECK_OUTPUT
def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(np.corrcoef(a.flatten().numpy(), b.flatten().numpy())[0, 1])

classes = ["tabby", "tiger cat", "Egyptian cat", "goldfish", "espresso"]
ids = [labels.index(c) for c in classes]
on_cat = fl.grad_cam(model, x.repeat(len(ids), 1, 1, 1), "head", target=ids).cpu()
with torch.inference_mode():
    probs = model(x).softmax(dim=1)[0].cpu()
print("chelsea: probability | correlation with the 'tabby' map")
for c, k, m_ in zip(classes, ids, on_cat):
    print(f"  {c:13s} {float(probs[k]):.3f} | {corr(on_cat[0], m_):6.2f}")

cat_part = fl.load_image("chelsea").crop((0, 0, 300, 300)).resize((112, 112), Image.BICUBIC)
cup_part = fl.load_image("coffee").crop((60, 0, 460, 400)).resize((112, 112), Image.BICUBIC)
both = np.full((224, 224, 3), 128, np.uint8)
both[56:168, :112], both[56:168, 112:] = np.asarray(cat_part), np.asarray(cup_part)
x_both = fl.preprocess(both, model)     # 224 px: resize 256 + crop 224 keeps the halves apart
print("two objects, top-3:", [lab for lab, _ in fl.predict(model, x_both, topk=3)[0]])
on_both = fl.grad_cam(model, x_both.repeat(len(ids), 1, 1, 1), "head", target=ids).cpu()
print("two objects: corr. with 'tabby' | mass in left (cat) half")
for c, m_ in zip(classes, on_both):
    print(f"  {c:13s} {corr(on_both[0], m_):6.2f} | {float(m_[:, :112].sum() / m_.sum()):.2f}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(6.3, 2.2))
axes[0].imshow(both); axes[0].axis("off"); axes[0].set_title("input", fontsize=9)
both_pic = fl.preprocess_for(model).denormalize(x_both[0]).cpu()
for ax, c in zip(axes[1:], ["tabby", "espresso"]):
    fl.plot.overlay(both_pic, on_both[classes.index(c)], ax=ax, title=f"target: {c}")
plt.tight_layout(); plt.show()


# %% [markdown]
# Read the tables: close classes (three kinds of cat) share a map; on the two-object picture the
# tabby and espresso maps have a negative correlation and put their mass on opposite halves. The
# goldfish row is the warning, drawn below with each map's strength *before* normalisation (the
# maximum of the raw map): a class the network gives almost no probability still gets a
# full-range map, and it sits on the cat, the only "fishy" evidence there is.

# %%
raw_on_cat = fl.grad_cam(model, x.repeat(len(ids), 1, 1, 1), "head", target=ids, upsample=False, normalize=False).cpu()
fig, axes = plt.subplots(1, len(classes), figsize=(10, 2.4))
for ax, c, k, m_, r_ in zip(axes, classes, ids, on_cat, raw_on_cat):
    fl.plot.overlay(picture, m_, ax=ax, title=f"{c}\np = {float(probs[k]):.3f}, raw max {float(r_.max()):.2g}")
plt.suptitle("chelsea: every class gets a map scaled to [0, 1]", fontsize=9)
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Measure (b): a sanity check — randomise the top layers
#
# Adebayo et al. (2018, *Sanity Checks for Saliency Maps*) showed that some saliency methods
# give nearly the same picture when the trained weights are replaced by random ones: then the map
# shows the input's edges, not what the model learned. We randomise EfficientNet **from the top
# down**, one more stage at a time (classifier, then `head`, then `block7`, then `block6`), and
# compare each Grad-CAM map (layer `head`, each picture's top-1 class under the trained model)
# with the trained model's by **Spearman rank correlation** $\rho$ over the pixels, on eight
# pictures. A method that passes gives maps that carry nothing of the trained one.
#
# A map can come out **blank** (all zero): when no channel has a positive weighted sum, the ReLU
# removes everything. A blank map carries nothing of the trained one; we count it as $\rho = 0$
# and print how many there were.
#
# What is "nothing"? A baseline that could win: a fixed blob in the image centre (a Gaussian),
# which knows neither the picture nor the weights. Photographers centre their subjects, so it
# correlates with the trained maps too. If a randomised model's map is no closer to the trained
# map than the blob is, randomising took away what the map showed. The interval is a bootstrap
# over the pictures (2,000 resamples of the eight, 95 %), and the verdict says whether the
# randomised map is *closer* to the trained map than the blob, *further*, or shows *no clear
# difference*.

# %%
# NBVAL_CHECK_OUTPUT
def randomise(module: torch.nn.Module) -> None:
    for m_ in module.modules():
        if hasattr(m_, "reset_parameters"):
            m_.reset_parameters()           # fresh random weights; BatchNorm back to identity


def bootstrap(values: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the mean of values (one per picture), resampling the pictures."""
    idx = np.random.default_rng(seed).integers(0, len(values), (n, len(values)))
    return tuple(np.percentile(values[idx].mean(1), [2.5, 97.5]))


def verdict(diff: np.ndarray, words: tuple[str, str] = ("better", "worse")) -> str:
    """Mean paired difference, its bootstrap interval, and the word it earns."""
    lo, hi = bootstrap(diff)
    word = words[0] if lo > 0 else words[1] if hi < 0 else "no clear difference"
    return f"{diff.mean():+.2f} [{lo:+.2f}, {hi:+.2f}]  {word}"


def spearman_each(maps_a: torch.Tensor, maps_b: torch.Tensor) -> np.ndarray:
    """Spearman rho of each pair of maps, over the pixels; 0 where a map is blank (constant)."""
    return np.array([0.0 if a.std() == 0 or b.std() == 0 else spearmanr(a.flatten().numpy(), b.flatten().numpy())[0]
                     for a, b in zip(maps_a, maps_b)])


sanity_names = ["chelsea", "coffee", "astronaut", "rocket", "china", "flower", "camera", "coins"]
x_sanity = fl.preprocess(sanity_names, model)
sanity_targets = [labels.index(p[0][0]) for p in fl.predict(model, x_sanity, topk=1)]
trained_maps = fl.grad_cam(model, x_sanity, "head", target=sanity_targets).cpu()
yy, xx = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
centre_blob = torch.exp(-((yy - 111.5) ** 2 + (xx - 111.5) ** 2) / (2 * 56.0**2))   # sigma: a quarter of the side

rho_blob = spearman_each(trained_maps, centre_blob.expand_as(trained_maps))
lo, hi = bootstrap(rho_blob)
print(f"centre blob (baseline)   : rho with the trained map = {rho_blob.mean():5.2f} [{lo:5.2f}, {hi:5.2f}]")
scrambled = copy.deepcopy(model)
modules = dict(scrambled.named_modules())
torch.manual_seed(0)
cascade = {"classifier": ["classifier"], "+ head": ["conv_head", "bn2"], "+ block7": ["blocks.6"],
           "+ block6": ["blocks.5"]}
sanity_maps, rho = {"trained": trained_maps}, {}
for step, paths in cascade.items():
    for p in paths:
        randomise(modules[p])
    sanity_maps[step] = fl.grad_cam(scrambled, x_sanity, "head", target=sanity_targets).cpu()
    rho[step] = spearman_each(trained_maps, sanity_maps[step])
    lo, hi = bootstrap(rho[step])
    blank = int((sanity_maps[step].flatten(1).std(1) == 0).sum())
    print(f"randomised {step:11s}: rho with the trained map = {rho[step].mean():5.2f} [{lo:5.2f}, {hi:5.2f}]"
          f" ({blank} of 8 maps blank) | minus the blob's: "
          f"{verdict(rho[step] - rho_blob, ('closer than the blob', 'further than the blob'))}")

# %%
fig, axes = plt.subplots(2, len(sanity_maps), figsize=(9.5, 4.2))
for row, i in enumerate([0, 2]):
    for ax, (step, m_) in zip(axes[row], sanity_maps.items()):
        fl.plot.overlay(fl.preprocess_for(model).denormalize(x_sanity[i]).cpu(), m_[i], ax=ax,
                        title=step if step == "trained" else f"random {step}")
plt.tight_layout(); plt.show()

# %% [markdown]
# Every randomisation step earns the verdict *further than the blob*: on these eight pictures the
# randomised models' maps carry less of the trained map than a fixed centre blob does, so
# Grad-CAM at `head` passes the check. Randomising the classifier alone is already enough,
# because the channel weights $\alpha$ are gradients of the classifier's score. With eight
# pictures the intervals are wide; the verdicts, not the means, are what to read.

# %% [markdown]
# ## Measure (c): localisation — a pointing game with known boxes
#
# Does the map's peak land on the object? We need pictures where we *know* where the object is,
# so we make them: the cat's head or the espresso cup is pasted, at a random size and position, on
# a crop of a brick, grass or gravel texture — 36 scenes. The pointing game (Zhang et al., 2016)
# counts a hit when the map's maximum lies inside the pasted box. The target is the class the
# network gives the object on its own. Boxes are $(x_0, y_0, x_1, y_1)$: $x$ the column, $y$ the
# row, $x_1$ and $y_1$ exclusive, as in `torchvision.ops`. Two baselines that could win: always
# point at the image centre, and a random point (its expected hit rate is the box's share of the
# image). Each hit rate gets a bootstrap interval over the scenes, and each comparison a verdict
# from the interval of the paired difference (same scenes, resampled together).
#
# The pictures are already 224×224, so we normalise them directly instead of using
# `fl.preprocess` (whose resize and crop would move the boxes).

# %%
# NBVAL_CHECK_OUTPUT
prep = fl.preprocess_for(model)
mean, std = torch.tensor(prep.mean).view(1, 3, 1, 1), torch.tensor(prep.std).view(1, 3, 1, 1)

def to_input(arrays: list[np.ndarray]) -> torch.Tensor:
    """(H, W, 3) uint8 pictures -> normalised (N, 3, H, W), no resize or crop."""
    t = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    return ((t - mean) / std).to(fl.device())

objects = {"cat": fl.load_image("chelsea").crop((0, 0, 300, 300)),
           "cup": fl.load_image("coffee").crop((60, 0, 460, 400))}
object_class = {k: fl.predict(model, im, topk=1)[0][0][0] for k, im in objects.items()}
print("class of each object alone:", object_class)
textures = {n: np.asarray(fl.load_image(n)) for n in ["brick", "grass", "gravel"]}

scenes, boxes, targets, others = [], [], [], []
for tex in textures.values():
    for name, obj in objects.items():
        for _ in range(6):
            r0, c0 = rng.integers(0, tex.shape[0] - 224), rng.integers(0, tex.shape[1] - 224)
            canvas = tex[r0:r0 + 224, c0:c0 + 224].copy()
            s = int(rng.integers(56, 97))                              # object size in pixels
            x0, y0 = int(rng.integers(0, 224 - s + 1)), int(rng.integers(0, 224 - s + 1))
            canvas[y0:y0 + s, x0:x0 + s] = np.asarray(obj.resize((s, s), Image.BICUBIC))
            scenes.append(canvas); boxes.append((x0, y0, x0 + s, y0 + s))
            targets.append(labels.index(object_class[name]))
            others.append(labels.index(object_class["cup" if name == "cat" else "cat"]))
x_scenes = to_input(scenes)

def hits(maps: torch.Tensor) -> np.ndarray:
    """(N, H, W) maps -> (N,) 1.0 where the map's maximum lies inside the object's box."""
    out = []
    for m_, (x0, y0, x1, y1) in zip(maps, boxes):
        row, col = divmod(int(m_.flatten().argmax()), m_.shape[1])
        out.append(float(x0 <= col < x1 and y0 <= row < y1))
    return np.array(out)

hit = {"random point": np.array([(x1 - x0) * (y1 - y0) / 224**2 for x0, y0, x1, y1 in boxes]),
       "image centre": np.array([float(x0 <= 112 < x1 and y0 <= 112 < y1) for x0, y0, x1, y1 in boxes])}
layers = ["block4", "block5", "block6", "head"]
scene_maps = {L: fl.grad_cam(model, x_scenes, L, target=targets).cpu() for L in layers}
hit.update({f"Grad-CAM {L}": hits(scene_maps[L]) for L in layers})
print(f"{len(scenes)} scenes; hit rate of the map's maximum [95 % bootstrap interval]:")
for name, h in hit.items():
    lo, hi = bootstrap(h)
    print(f"  {name:16s} {h.mean():.2f} [{lo:.2f}, {hi:.2f}]")
print("paired difference of hit rates [95 % interval], verdict:")
for a_, b_ in [("Grad-CAM head", "image centre"), ("Grad-CAM head", "random point"),
               ("Grad-CAM block6", "image centre"), ("Grad-CAM block6", "Grad-CAM head"),
               ("Grad-CAM block5", "Grad-CAM head"), ("Grad-CAM block4", "image centre")]:
    print(f"  {a_:16s} - {b_:16s} {verdict(hit[a_] - hit[b_])}")

# %%
show = list(range(0, len(scenes), 6))
fig, axes = plt.subplots(2, len(show), figsize=(10, 3.6))
for row, L in enumerate(["block6", "head"]):
    for ax, i in zip(axes[row], show):
        m_ = scene_maps[L][i]
        fl.plot.overlay(torch.from_numpy(scenes[i]).permute(2, 0, 1) / 255, m_, ax=ax, title=L if i == 0 else None)
        x0, y0, x1, y1 = boxes[i]
        ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="white", lw=1.5))
        r, c = divmod(int(m_.argmax()), 224)
        ax.plot(c, r, "w+", ms=10, mew=2)
plt.suptitle("pasted objects (white box) and the Grad-CAM maximum (+); top: block6, bottom: head", fontsize=9)
plt.tight_layout(); plt.show()

# %% [markdown]
# Grad-CAM at `head` is *better* than both baselines, the image centre and a random point. The
# layer matters: `block6` is *better* than `head` at pointing (its interval of the difference
# excludes zero), `block5` shows *no clear difference* from `head`, and `block4` shows *no clear
# difference* from always pointing at the centre.
#
# ## Measure (d): which layer?
#
# Grad-CAM works at any convolutional layer, but the map is only as fine as the layer's grid
# (printed below). A common rule of thumb says shallower layers are sharper but "less about the
# class". Both halves can be measured on the scenes of (c): localisation is the pointing game, and
# **class specificity** is how *different* the map for the object's class is from the map for the
# other object's class (an espresso map on a cat scene, and the reverse). If a layer's map is about
# the class, the two maps differ (low correlation) and the wrong class's maximum rarely lands on
# the object.

# %%
# NBVAL_CHECK_OUTPUT
compared = ["block5", "block6", "head"]
wrong_maps = {L: fl.grad_cam(model, x_scenes, L, target=others).cpu() for L in compared}
same = {L: np.array([corr(a, b) for a, b in zip(scene_maps[L], wrong_maps[L])]) for L in compared}
wrong_hit = {L: hits(wrong_maps[L]) for L in compared}
print("layer  | corr(right-class map, wrong-class map) | wrong class's maximum on the object")
for L in compared:
    (lo, hi), (lo2, hi2) = bootstrap(same[L]), bootstrap(wrong_hit[L])
    print(f"{L:6s} |   {same[L].mean():5.2f} [{lo:5.2f}, {hi:5.2f}]                 |"
          f"   {wrong_hit[L].mean():.2f} [{lo2:.2f}, {hi2:.2f}]")
print("paired differences [95 % interval], verdict (higher correlation = less about the class):")
for a_, b_ in [("block5", "head"), ("block6", "head")]:
    print(f"  corr {a_} - corr {b_}: {verdict(same[a_] - same[b_], ('less class-specific', 'more class-specific'))}")

layer_maps = {L: fl.grad_cam(model, x, L, target=TABBY)[0].cpu() for L in ["block3", *layers]}
shapes = fl.layer_names(model)                                   # module path -> (C, h, w)
grid = {L: shapes[fl.resolve_layer(model, L)][1:] for L in layer_maps}
for L in layer_maps:
    print(f"chelsea, {L:6s} grid {grid[L]}  corr. with the head map {corr(layer_maps[L], layer_maps['head']):5.2f}")

# %%
fig, axes = plt.subplots(1, len(layer_maps), figsize=(9.5, 2.2))
for ax, (L, m_) in zip(axes, layer_maps.items()):
    fl.plot.overlay(picture, m_, ax=ax, title=f"{L} {grid[L][0]}×{grid[L][1]}")
plt.tight_layout(); plt.show()

# %% [markdown]
# What the numbers show about the rule of thumb:
# - **"Less about the class" holds.** For `head`, the map for the wrong class is *anti*-correlated
#   with the map for the right class, and the wrong class's maximum almost never lands on the
#   object. For `block5` and `block6` the two maps are about uncorrelated and the wrong class
#   lands on the object more often: the verdicts say *less class-specific* than `head`.
# - **"Sharper, so better at finding the object" does not follow.** `block6` has the same 7×7
#   grid as `head`, yet points at the object *better* than `head` in (c); `block4`, the finest
#   grid here, does no better than the image centre.
#
# So there is no single right layer: a deeper map says more about *which class*, a slightly
# shallower one (`block6` here) finds *where the object is* better. This notebook keeps `head`
# because there Grad-CAM is CAM and the map is the most class-specific, not because it localises
# best; pick the layer by a measurement such as (c) and (d) for your question, not by how pretty
# the map looks. On a single picture (`chelsea`, below the table) the maps of different layers
# can even be anti-correlated with each other.

# %% [markdown]
# ## Explore: class × layer
#
# Pick one of the top-10 classes and a layer. (In a static copy of the notebook only the first
# view is shown; run it to use the menus.)

# %%
fl.widgets.grad_cam_explorer(model, "chelsea", ["block3", "block4", "block5", "block6", "head"])

# %% [markdown]
# ## Pitfalls
#
# - **Module backward hooks and in-place ops.** `module.register_full_backward_hook` fails or
#   reports wrong gradients when an in-place op (`ReLU(inplace=True)`, `out += identity` in a
#   ResNet block) follows the module (PyTorch issue 61519). Hook the output *tensor*, and copy the
#   activation in the forward hook, as above.
# - **Gradients left behind.** `backward()` fills `.grad` of every weight; call
#   `model.zero_grad(set_to_none=True)` afterwards, or they add up in the next call.
#   `fl.grad_cam` switches weight gradients off while it runs and restores the flags.
# - **Score, not probability.** Use the logit $y^c$. Through the softmax the gradient also pushes
#   the *other* classes down, which mixes their evidence into the map.
# - **Normalising hides strength.** Every map is scaled to $[0, 1]$, so a class the model gives
#   almost no probability still gets a bright map (see "goldfish" above). Look at the raw map
#   (`normalize=False`) or the probability before reading much into it.
# - **Resolution and layer.** At `head` the map is 7×7 upsampled: it cannot be sharper than a
#   32-pixel block. "Shallower layers are sharper but less about the class" is a rule of thumb,
#   not a law: measure it, as in (d), on pictures where you know the answer.
# - **Randomness of "explanations".** Pass the sanity check (b) before trusting a saliency method.
#
# **Exercise:** `exercises/06_grad_cam.ipynb` — write the channel weights $\alpha$, the
# Grad-CAM combination, and a pointing-game hit test yourself.

# %%
print(f"notebook run time: {time.time() - t0:.0f} s")
