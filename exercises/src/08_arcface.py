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
# # Exercise 08 — ArcFace
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/08_arcface.ipynb`. Fill in each `TODO`, run the cell, then run the
# check below it: it prints ✓ when your function is right, and says what is wrong when it is not.
#
# Shapes: `embeddings` (N, D), one vector per picture; `weight` (C, D), one class centre per
# row (as in `nn.Linear` and `fl.ArcFace`); `labels` (N,) integers in 0 … C−1.
# Use torch operations only, so that the last section can train with your functions.

# %%
import math

import numpy as np
import torch
import torch.nn.functional as F

import featlab as fl

_ = torch.manual_seed(0)


# %% [markdown]
# ## 1. Cosine logits
#
# `cosine_logits(embeddings, weight, s)` returns the (N, C) matrix $s\cos\theta_{ij}$, where
# $\theta_{ij}$ is the angle between embedding $i$ and class centre $j$. Neither the embeddings
# nor the weight rows have unit length when they come in.

# %%
def cosine_logits(embeddings, weight, s):
    ### BEGIN SOLUTION
    e = embeddings / embeddings.norm(dim=1, keepdim=True)          # unit rows
    w = weight / weight.norm(dim=1, keepdim=True)
    return s * e @ w.T
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_cosine_logits(cosine_logits)


# %% [markdown]
# ## 2. The ArcFace logits: margin on the target, with the fallback
#
# `arcface_logits(cos, labels, s, m)` takes the cosines (N, C) (no scale yet) and returns the
# training logits (N, C):
# - for the target class $y_i$ of each row: $s\cos(\theta_y + m)$ while $\theta_y + m \le \pi$,
#   and $s(\cos\theta_y - m\sin m)$ beyond (the fallback that keeps the logit falling);
# - for every other class: $s\cos\theta_j$.
#
# $m$ is in radians. Mind cosines of exactly ±1.

# %%
def arcface_logits(cos, labels, s, m):
    ### BEGIN SOLUTION
    theta = torch.arccos(cos.clamp(-1, 1))                          # angles in [0, π]
    target = torch.where(theta + m <= math.pi, torch.cos(theta + m), cos - m * math.sin(m))
    is_target = F.one_hot(labels, cos.shape[1]).bool()
    return s * torch.where(is_target, target, cos)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_arcface_logits(arcface_logits)


# %% [markdown]
# ## 3. Verification accuracy at the best threshold
#
# Face verification decides "same identity" when the similarity of two embeddings is at least
# a threshold $t$. `verification_accuracy(sims, same)` takes the similarities of P pairs (P,)
# and whether each pair really is the same identity (P,) booleans, and returns the best
# accuracy (share of pairs decided right) over all thresholds, as one number in [0, 1].
# Every similarity value is a candidate threshold; so is one above them all ("all different").

# %%
def verification_accuracy(sims, same):
    ### BEGIN SOLUTION
    best = float((~same).double().mean())                          # t above all: every pair "different"
    for t in sims.unique():
        best = max(best, float(((sims >= t) == same).double().mean()))
    return best
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_verification_accuracy(verification_accuracy)

# %% [markdown]
# ## 4. Use them on the real network
#
# 40 face photos from `skimage.data.lfw_subset()`, 6 random views each (as in the notebook),
# frozen EfficientNet-Lite0 `avgpool` features at 96 px. Train a head (1280 → 16) and 30
# class centres with **your** `cosine_logits` and `arcface_logits`, then measure
# verification on the 10 photos the head never saw, with **your** `verification_accuracy`.
# Does the trained head beat the frozen features? Try `m = 0` or a smaller `s`.

# %%
from PIL import Image, ImageEnhance, ImageFilter
from skimage.data import lfw_subset

ready = all(f(*args) is not None for f, args in [
    (cosine_logits, (torch.randn(2, 3), torch.randn(4, 3), 1.0)),
    (arcface_logits, (torch.rand(2, 4) - 0.5, torch.tensor([0, 3]), 1.0, 0.5)),
    (verification_accuracy, (torch.rand(6), torch.arange(6) % 2 == 0))])
if not ready:
    print("fill in the three functions above first")
else:
    rng = np.random.default_rng(0)
    model = fl.load_model("efficientnet_lite0")
    prep = fl.preprocess_for(model)
    faces = (lfw_subset()[:40] * 255).round().astype(np.uint8)

    def view(face):
        img = Image.fromarray(face).resize((96, 96), Image.BICUBIC)
        side = rng.uniform(0.6, 1.0) * 96
        left, top = rng.uniform(0, 96 - side, 2)
        img = img.rotate(rng.uniform(-15, 15), Image.BICUBIC, center=(left + side / 2, top + side / 2))
        img = img.crop((left, top, left + side, top + side)).resize((96, 96), Image.BICUBIC)
        img = img.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else img
        img = ImageEnhance.Contrast(ImageEnhance.Brightness(img).enhance(rng.uniform(0.7, 1.3))).enhance(rng.uniform(0.7, 1.3))
        return np.asarray(img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.9))))

    x = torch.from_numpy(np.stack([view(f) for f in faces for _ in range(6)])).float().div(255)
    x = (x[:, None].expand(-1, 3, -1, -1) - torch.tensor(prep.mean).view(1, 3, 1, 1)) / torch.tensor(prep.std).view(1, 3, 1, 1)
    feats = fl.embed(model, x, "avgpool", normalize=False)["avgpool"].cpu()   # (240, 1280)
    who = torch.arange(40).repeat_interleave(6)
    train, test = who < 30, who >= 30

    torch.set_num_threads(1)                                       # small matrices: one thread is faster
    torch.manual_seed(0)
    head = torch.nn.Linear(1280, 16)
    centres = torch.nn.Parameter(torch.randn(30, 16))
    opt = torch.optim.Adam([*head.parameters(), centres], lr=1e-2)
    for step in range(200):
        logits = arcface_logits(cosine_logits(head(feats[train]), centres, 1.0), who[train], 16.0, 0.5)
        loss = F.cross_entropy(logits, who[train])
        opt.zero_grad(); loss.backward(); opt.step()
        if step in (0, 199):
            print(f"step {step:3d}: loss {loss.item():.3f}")

    i, j = torch.triu_indices(60, 60, 1)                           # pairs of the 60 unseen views
    same = who[test][i] == who[test][j]
    different = (~same).nonzero()[:, 0][torch.randperm(int((~same).sum()))[:int(same.sum())]]
    keep = torch.cat([same.nonzero()[:, 0], different])             # as many "different" as "same" pairs
    i, j, same = i[keep], j[keep], same[keep]
    for name, e in [("frozen features", feats[test]), ("your ArcFace head", head(feats[test]).detach())]:
        e = F.normalize(e, dim=1)
        print(f"{name:18s}: verification accuracy {verification_accuracy((e[i] * e[j]).sum(1), same):.3f}"
              f" on {len(same)} pairs of unseen faces, half of them 'same'")
