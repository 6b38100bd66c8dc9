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
# # Exercise 14 — Dense features: heatmaps, per-pixel logits, mean IoU
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/14_dense_features.ipynb`. Fill in each `TODO`, run the cell, then run the
# check below it: it prints ✓ when your function is right, and says what is wrong when it is not.
#
# Shapes: heatmaps are (N, K, H, W) — N images, K keypoints (or classes), an H × W grid;
# features are (N, C, H, W); label maps are integer tensors (N, H, W).

# %%
import numpy as np
import torch
from PIL import Image

import featlab as fl

_ = torch.manual_seed(0)


# %% [markdown]
# ## 1. Soft-argmax
#
# `soft_argmax(heatmaps, temperature)` turns each heatmap into coordinates without an argmax:
# take $p = \mathrm{softmax}(h / T)$ over the $H \cdot W$ positions of one heatmap, then the
# expected position $x = \sum_{i,j} p_{ij}\, j$ (the column) and $y = \sum_{i,j} p_{ij}\, i$
# (the row). Return a tensor (N, K, 2) holding (x, y) in grid cells (0 = first column / row).

# %%
def soft_argmax(heatmaps, temperature):
    ### BEGIN SOLUTION
    n, k, h, w = heatmaps.shape
    p = (heatmaps.reshape(n, k, h * w) / temperature).softmax(dim=-1).reshape(n, k, h, w)
    xs = torch.arange(w, dtype=heatmaps.dtype, device=heatmaps.device)
    ys = torch.arange(h, dtype=heatmaps.dtype, device=heatmaps.device)
    return torch.stack([(p * xs).sum(dim=(2, 3)), (p * ys[:, None]).sum(dim=(2, 3))], dim=-1)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_soft_argmax(soft_argmax)


# %% [markdown]
# ## 2. A 1×1 head: one linear classifier per pixel
#
# `pixel_logits(features, weight, bias)` applies a linear layer with `weight` (K, C) and `bias`
# (K,) to every pixel's C-dimensional feature vector: logit $k$ at $(i, j)$ is
# $\sum_c W_{kc} F_{c,ij} + b_k$. Return (N, K, H, W). Write it with `torch.einsum` (it equals
# `F.conv2d` with a 1×1 kernel — the check compares with that).

# %%
def pixel_logits(features, weight, bias):
    ### BEGIN SOLUTION
    return torch.einsum("nchw,kc->nkhw", features, weight) + bias[None, :, None, None]
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_pixel_logits(pixel_logits)


# %% [markdown]
# ## 3. Mean intersection over union
#
# `mean_iou(pred, target, num_classes)` takes two integer label maps (N, H, W) and returns one
# float: for each class $c$, $\mathrm{IoU}_c = |P_c \cap T_c| \,/\, |P_c \cup T_c|$ counted over
# all pixels of the batch, then the mean over the classes — skipping a class that is in neither
# map (its union is empty, 0/0).

# %%
def mean_iou(pred, target, num_classes):
    ### BEGIN SOLUTION
    ious = []
    for c in range(num_classes):
        inter = ((pred == c) & (target == c)).sum()
        union = ((pred == c) | (target == c)).sum()
        if union > 0:
            ious.append(float(inter) / float(union))
    return sum(ious) / len(ious)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_mean_iou(mean_iou)

# %% [markdown]
# ## 4. Use them on the real network
#
# The classifier of EfficientNet-Lite0 is global average pooling, then one linear layer on the
# 1280 channels of `head` (a 7×7 grid). Apply that linear layer to **every cell** with your
# `pixel_logits`: you get 1000 class scores per cell (this is CAM, notebook 04), and their mean
# over the cells is the network's own logits. On a picture with the cat on the left and a cup on
# the right: where does soft-argmax put "tabby" and "espresso", and how well does "which of the
# two wins per cell" agree with the true halves (mean IoU over the 3 middle rows of cells, where the
# two pictures are)?

# %%
model = fl.load_model("efficientnet_lite0")
labels = fl.imagenet_labels()
fc = dict(model.named_modules())[fl.resolve_layer(model, "fc")]
cat_part = fl.load_image("chelsea").crop((0, 0, 300, 300)).resize((112, 112), Image.BICUBIC)
cup_part = fl.load_image("coffee").crop((60, 0, 460, 400)).resize((112, 112), Image.BICUBIC)
both = np.full((224, 224, 3), 128, np.uint8)
both[56:168, :112], both[56:168, 112:] = np.asarray(cat_part), np.asarray(cup_part)
x = fl.preprocess(both, model)
feats = fl.extract(model, x, ["head"])["head"].cpu()                                # (1, 1280, 7, 7)
logits = pixel_logits(feats, fc.weight.detach().cpu(), fc.bias.detach().cpu())
if logits is not None:
    with torch.inference_mode():
        print("mean over cells == the network's logits:",
              torch.allclose(logits.mean(dim=(2, 3)), model(x).cpu(), atol=1e-3))
    ids = [labels.index("tabby"), labels.index("espresso")]
    xy = soft_argmax(logits[:, ids], 1.0)
    if xy is not None:
        for name, (cx, cy) in zip(["tabby", "espresso"], xy[0].tolist()):
            print(f"{name:9s} at cell (x, y) = ({cx:.2f}, {cy:.2f}) -> pixel ~({32 * cx + 15.5:.0f}, {32 * cy + 15.5:.0f})")
    pred = logits[:, ids].argmax(dim=1)[:, 2:5]                              # (1, 3, 7): 0 = cat, 1 = cup
    truth = torch.zeros_like(pred)
    truth[..., 4:] = 1                                                       # column 3 straddles the halves: call it cat
    print("mean IoU, cat vs cup halves:", mean_iou(pred, truth, 2))
