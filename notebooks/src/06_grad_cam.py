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
# - *measure* what a saliency map is worth: class contrast, a sanity check with randomised
#   weights, a pointing game with known object positions, and the effect of the layer you pick.
#
# **Prerequisites:** `04_gap_classification` (GAP and CAM), `05_feature_maps` (forward hooks).
# **Run time:** about 30 s on a 2-core CPU.
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
# goldfish row is the warning: a class the network gives almost no probability still gets a
# full-range map, and it sits on the cat, the only "fishy" evidence there is.
#
# ## Measure (b): a sanity check — randomise the top layers
#
# Adebayo et al. (2018, *Sanity Checks for Saliency Maps*) showed that some saliency methods
# give nearly the same picture when the trained weights are replaced by random ones: then the map
# shows the input's edges, not what the model learned. We randomise EfficientNet **from the top
# down**, one more stage at a time (classifier, then `head`, then `block7`, then `block6`), and
# compare each Grad-CAM map (layer `head`, class tabby) with the trained model's by **Spearman
# rank correlation** over the pixels. A method that passes the test gives low correlations.

# %%
# NBVAL_CHECK_OUTPUT
def randomise(module: torch.nn.Module) -> None:
    for m_ in module.modules():
        if hasattr(m_, "reset_parameters"):
            m_.reset_parameters()           # fresh random weights; BatchNorm back to identity

trained_map = fl.grad_cam(model, x, "head", target=TABBY)[0].cpu()
scrambled = copy.deepcopy(model)
modules = dict(scrambled.named_modules())
torch.manual_seed(0)
cascade = {"classifier": ["classifier"], "+ head": ["conv_head", "bn2"], "+ block7": ["blocks.6"],
           "+ block6": ["blocks.5"]}
sanity_maps, rho = {"trained": trained_map}, {}
for step, paths in cascade.items():
    for p in paths:
        randomise(modules[p])
    sanity_maps[step] = fl.grad_cam(scrambled, x, "head", target=TABBY)[0].cpu()
    rho[step] = spearmanr(trained_map.flatten().numpy(), sanity_maps[step].flatten().numpy())[0]
    print(f"randomised {step:11s}: Spearman rho with the trained map = {rho[step]:5.2f}")

# %%
fig, axes = plt.subplots(1, len(sanity_maps), figsize=(9.5, 2.2))
for ax, (step, m_) in zip(axes, sanity_maps.items()):
    fl.plot.overlay(picture, m_, ax=ax, title=step if step == "trained" else f"random {step}")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Measure (c): localisation — a pointing game with known boxes
#
# Does the map's peak land on the object? We need pictures where we *know* where the object is,
# so we make them: the cat's head or the espresso cup is pasted, at a random size and position, on
# a crop of a brick, grass or gravel texture. The pointing game (Zhang et al., 2016) counts a hit
# when the map's maximum lies inside the pasted box. The target is the class the network gives the
# object on its own. Two baselines: always point at the image centre, and a random point (its hit
# rate is the box's share of the image).
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

scenes, boxes, targets = [], [], []
for tex in textures.values():
    for name, obj in objects.items():
        for _ in range(4):
            r0, c0 = rng.integers(0, tex.shape[0] - 224), rng.integers(0, tex.shape[1] - 224)
            canvas = tex[r0:r0 + 224, c0:c0 + 224].copy()
            s = int(rng.integers(56, 97))                              # object size in pixels
            top, left = int(rng.integers(0, 224 - s + 1)), int(rng.integers(0, 224 - s + 1))
            canvas[top:top + s, left:left + s] = np.asarray(obj.resize((s, s), Image.BICUBIC))
            scenes.append(canvas); boxes.append((top, left, s)); targets.append(labels.index(object_class[name]))
x_scenes = to_input(scenes)

def pointing_game(maps: torch.Tensor) -> float:
    """Share of (N, H, W) maps whose maximum lies inside the object's box."""
    hits = []
    for m_, (top, left, s) in zip(maps, boxes):
        r, c = divmod(int(m_.flatten().argmax()), m_.shape[1])
        hits.append(top <= r < top + s and left <= c < left + s)
    return float(np.mean(hits))

centre_hits = float(np.mean([top <= 112 < top + s and left <= 112 < left + s for top, left, s in boxes]))
random_hits = float(np.mean([s * s / 224**2 for _, _, s in boxes]))
layers = ["block4", "block5", "block6", "head"]
pointing = {L: pointing_game(fl.grad_cam(model, x_scenes, L, target=targets).cpu()) for L in layers}
print(f"{len(scenes)} scenes; hit rate of the map's maximum:")
print(f"  random point (box area share) {random_hits:.2f}")
print(f"  image centre                  {centre_hits:.2f}")
for L, acc in pointing.items():
    print(f"  Grad-CAM at {L:6s}            {acc:.2f}")

# %%
show = list(range(0, len(scenes), 4))[:6]
scene_maps = fl.grad_cam(model, x_scenes[show], "head", target=[targets[i] for i in show]).cpu()
fig, axes = plt.subplots(1, len(show), figsize=(10, 2.0))
for ax, i, m_ in zip(axes, show, scene_maps):
    fl.plot.overlay(torch.from_numpy(scenes[i]).permute(2, 0, 1) / 255, m_, ax=ax)
    top, left, s = boxes[i]
    ax.add_patch(plt.Rectangle((left, top), s, s, fill=False, color="white", lw=1.5))
    r, c = divmod(int(m_.argmax()), 224)
    ax.plot(c, r, "w+", ms=10, mew=2)
plt.suptitle("pasted objects (white box) and the Grad-CAM maximum (+), layer head", fontsize=9)
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Measure (d): which layer?
#
# Grad-CAM works at any convolutional layer, but the map is only as fine as the layer's grid
# (printed below). Which layer is "right" is an empirical question: the pointing scores in (c)
# measure how well each layer localises the object, and below we measure how much each layer's
# map agrees with the one at `head`, then look at them side by side. If the layers do not tell one
# story, choose the layer by a measurement such as (c), not by how pretty the map looks.

# %%
# NBVAL_CHECK_OUTPUT
layer_maps = {L: fl.grad_cam(model, x, L, target=TABBY)[0].cpu() for L in ["block3", *layers]}
shapes = fl.layer_names(model)                                   # module path -> (C, h, w)
grid = {L: shapes[fl.resolve_layer(model, L)][1:] for L in layer_maps}
for L in layer_maps:
    print(f"{L:6s} grid {grid[L]}  corr. with head map {corr(layer_maps[L], layer_maps['head']):5.2f}")

# %%
fig, axes = plt.subplots(1, len(layer_maps), figsize=(9.5, 2.2))
for ax, (L, m_) in zip(axes, layer_maps.items()):
    fl.plot.overlay(picture, m_, ax=ax, title=f"{L} {grid[L][0]}×{grid[L][1]}")
plt.tight_layout(); plt.show()

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
# - **Resolution.** At `head` the map is 7×7 upsampled: it cannot be sharper than a 32-pixel
#   block. Shallower layers are sharper but less about the class.
# - **Randomness of "explanations".** Pass the sanity check (b) before trusting a saliency method.
#
# **Exercise:** `exercises/06_grad_cam.ipynb` — write the channel weights $\alpha$, the
# Grad-CAM combination, and a pointing-game hit test yourself.

# %%
print(f"notebook run time: {time.time() - t0:.0f} s")
