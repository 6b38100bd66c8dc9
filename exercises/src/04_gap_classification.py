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
# # Exercise 04 · GAP classification and CAM
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Companion to `notebooks/04_gap_classification.ipynb`. Three small functions; after each,
# run the check cell: it compares your function with the model / `fl.cam` on fresh inputs
# and prints ✓, or raises `ExerciseError` saying what is off.
#
# Shapes: feature map `fmap` (N, C, H, W), classifier `weight` (K, C), `bias` (K,).

# %%
import torch
import torch.nn.functional as F

import featlab as fl

torch.manual_seed(0)


# %% [markdown]
# ## Task 1 — logits from the last feature map
#
# Global average pooling, then the linear head: $g_c = \frac{1}{HW}\sum_{h,w} y_{c,h,w}$,
# $z = g W^\top + b$. Return the (N, K) logits.

# %%
def gap_logits(fmap: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W), (K, C), (K,) -> (N, K) logits."""
    ### BEGIN SOLUTION
    return fmap.mean(dim=(2, 3)) @ weight.T + bias
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_gap_logits(gap_logits)


# %% [markdown]
# ## Task 2 — the class activation map, as one einsum
#
# $M_k(h, w) = \sum_c W_{k,c}\, y_{c,h,w}$, with $k$ = `target[n]` for image `n`.
# Return (N, H, W). Hint: `weight[target]` is (N, C); `torch.einsum("nc,nchw->nhw", ...)`.

# %%
def class_activation_map(fmap: torch.Tensor, weight: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W), (K, C), (N,) class indices -> (N, H, W) CAM (no bias, no ReLU)."""
    ### BEGIN SOLUTION
    return torch.einsum("nc,nchw->nhw", weight[target], fmap)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_class_activation_map(class_activation_map)


# %% [markdown]
# ## Task 3 — upsample and normalise for display
#
# Bring (N, h, w) maps to the input size with bilinear interpolation
# (`F.interpolate(..., mode="bilinear", align_corners=False)` wants (N, 1, h, w)), then
# scale *each* map to [0, 1]: $(M - \min M) / (\max M - \min M)$.

# %%
def upsample_normalize(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) maps -> (N, size[0], size[1]) maps, each min-max scaled to [0, 1]."""
    ### BEGIN SOLUTION
    up = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    lo = up.amin(dim=(1, 2), keepdim=True)
    hi = up.amax(dim=(1, 2), keepdim=True)
    return (up - lo) / (hi - lo)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_upsample_normalize(upsample_normalize)

# %% [markdown]
# ## Try it on a real picture
#
# Your three functions on the pretrained EfficientNet-Lite0 and chelsea the cat: the top
# class from your logits, and your CAM drawn over the picture.

# %%
import matplotlib.pyplot as plt

plt.rcParams["figure.dpi"] = 72
model = fl.load_model("efficientnet_lite0")
x = fl.preprocess("chelsea", model)
fmap = fl.extract(model, x, "head")["head"]                       # (1, 1280, 7, 7)
W, b = model.classifier.weight.detach(), model.classifier.bias.detach()
z = gap_logits(fmap, W, b)
m = None if z is None else class_activation_map(fmap, W, z.argmax(dim=1))
m = None if m is None else upsample_normalize(m, (224, 224))
if m is None:
    print("Finish tasks 1-3 first.")
else:
    k = z.argmax(dim=1).item()
    print("top-1 from your logits:", fl.imagenet_labels()[k])
    fl.plot.overlay(fl.preprocess_for(model).denormalize(x[0]).cpu(), m[0].cpu(), title=f"your CAM, class {k}")
