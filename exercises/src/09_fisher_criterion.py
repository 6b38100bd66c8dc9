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
# # Exercise 09 — The Fisher criterion
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/09_fisher_criterion.ipynb`. Fill in each `TODO`, run the cell, then run
# the check below it: it prints ✓ when your function is right, and says what is wrong when it
# is not.
#
# Shapes: a class is a tensor (n, D) of n feature vectors with D dimensions; `features` (N, D)
# holds all classes, `labels` (N,) their integer class labels.

# %%
import itertools

import numpy as np
import torch
import featlab as fl

_ = torch.manual_seed(0)


# %% [markdown]
# ## 1. Mean and spread of one class
#
# `mean_and_spread(x)` returns the class mean $\mu$, a (D,) tensor, and the spread
# $\sigma^2 = \frac{1}{n}\sum_i \lVert x_i - \mu\rVert^2$ — the **mean squared distance** to the
# mean (one number: summed over the dimensions, averaged over the n rows).

# %%
def mean_and_spread(x):
    ### BEGIN SOLUTION
    mu = x.mean(dim=0)                                   # (D,)
    sigma2 = ((x - mu) ** 2).sum(dim=1).mean()           # squared distances, averaged over rows
    return mu, sigma2
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_mean_and_spread(mean_and_spread)


# %% [markdown]
# ## 2. J of two classes
#
# `fisher_j(a, b)` returns $J = \lVert\mu_a - \mu_b\rVert^2 / (\sigma_a^2 + \sigma_b^2)$ for two
# classes a (na, D) and b (nb, D), as one number. Use `mean_and_spread`.

# %%
def fisher_j(a, b):
    ### BEGIN SOLUTION
    mu_a, s_a = mean_and_spread(a)
    mu_b, s_b = mean_and_spread(b)
    return ((mu_a - mu_b) ** 2).sum() / (s_a + s_b)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_fisher_j(fisher_j)


# %% [markdown]
# ## 3. More than two classes
#
# `fisher_j_multi(features, labels)` returns the **mean of J over all pairs** of different
# classes. The labels can be any integers (say 2, 7 and 9), in any order. Use `fisher_j`;
# `torch.unique` and `itertools.combinations` help.

# %%
def fisher_j_multi(features, labels):
    ### BEGIN SOLUTION
    groups = [features[labels == c] for c in torch.unique(labels)]
    pairs = [fisher_j(a, b) for a, b in itertools.combinations(groups, 2)]
    return torch.stack([torch.as_tensor(j) for j in pairs]).mean()
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_fisher_j_multi(fisher_j_multi)


# %% [markdown]
# ## 4. Projection onto a direction
#
# `project(features, w)` returns the coordinate of every row of `features` (N, D) along the
# direction `w` (D,): the dot product with the **unit** vector $w / \lVert w\rVert$, an (N,)
# tensor. `w` need not have length 1.

# %%
def project(features, w):
    ### BEGIN SOLUTION
    return features @ w / w.norm()
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_projection(project)

# %% [markdown]
# ## 5. Use them on the network
#
# The 200 patches of `skimage.data.lfw_subset()` (100 faces, then 100 non-faces), enlarged to
# 64×64, go through EfficientNet-Lite0; `fl.embed` gives one average-pooled vector per picture
# and layer. For each layer, compare your $J$ with `fl.fisher_criterion`, then project onto the
# Fisher direction (`fl.fisher_direction`, fitted on the even-numbered pictures) and compute
# $J$ of the projections of the odd-numbered ones (held out). Which layer separates faces best by
# each measure? (Notebook 09 explains why the two can disagree.)

# %%
from skimage import data

model = fl.load_model("efficientnet_lite0")
lfw = torch.from_numpy(data.lfw_subset()).float()[:, None]              # (200, 1, 25, 25)
small = torch.nn.functional.interpolate(lfw, size=(64, 64), mode="bilinear", align_corners=False)
x = (small.clamp(0, 1).repeat(1, 3, 1, 1) - 0.5) / 0.5                  # Lite0 normalisation
labels = torch.tensor([1] * 100 + [0] * 100)
layers = ["stem", "block2", "block4", "block6", "head"]
emb = {k: v.cpu().double() for k, v in fl.embed(model, x, layers, normalize=False).items()}
fit, test = torch.arange(0, 200, 2), torch.arange(1, 200, 2)
if fisher_j_multi(emb["stem"], labels) is not None and project(emb["stem"], torch.ones(32, dtype=torch.float64)) is not None:
    print("layer       D  your J    fl J  held-out J along the Fisher direction")
    for name, f in emb.items():
        w = fl.fisher_direction(f[fit], labels[fit], ridge=1.0)
        p = project(f[test], w)[:, None]                                # (100, 1)
        held_out = fisher_j(p[labels[test] == 1], p[labels[test] == 0])
        print(f"{name:7s} {f.shape[1]:5d}  {float(fisher_j_multi(f, labels)):6.3f}  "
              f"{fl.fisher_criterion(f, labels):6.3f}  {float(held_out):8.3f}")
