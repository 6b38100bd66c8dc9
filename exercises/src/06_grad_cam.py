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
# # Exercise 06 — Grad-CAM
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/06_grad_cam.ipynb`. Fill in each `TODO`, run the cell, then run the
# check below it: it prints ✓ when your function is right, and says what is wrong when it is not.
#
# Shapes: activations `acts` and gradients `grads` of one layer are (N, K, h, w): N images,
# K channels, an h × w grid.

# %%
import torch
import featlab as fl

_ = torch.manual_seed(0)


# %% [markdown]
# ## 1. One weight per channel
#
# `channel_weights(grads)` returns the Grad-CAM weights
# $\alpha_k = \frac{1}{hw}\sum_{i,j} \partial y^c / \partial A_k[i,j]$ for every image and
# channel: a tensor of shape (N, K).

# %%
def channel_weights(grads):
    ### BEGIN SOLUTION
    return grads.mean(dim=(2, 3))
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_channel_weights(channel_weights)


# %% [markdown]
# ## 2. The Grad-CAM map
#
# `grad_cam_map(acts, grads)` returns the raw map $\mathrm{ReLU}(\sum_k \alpha_k A_k)$ of shape
# (N, h, w), at the layer's resolution (no upsampling, no normalisation). Use `channel_weights`.

# %%
def grad_cam_map(acts, grads):
    ### BEGIN SOLUTION
    alpha = channel_weights(grads)                       # (N, K)
    return (alpha[:, :, None, None] * acts).sum(dim=1).relu()
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_grad_cam_map(grad_cam_map)


# %% [markdown]
# ## 3. One round of the pointing game
#
# `pointing_hit(heatmap, box)` takes one map (H, W) and a box `(x0, y0, x1, y1)` in pixels,
# the course's box format (as `torchvision.ops`): $x$ is the column, $y$ the row, and the ends
# `x1`, `y1` are excluded. It returns `True` when the map's maximum lies inside the box: columns
# `x0` to `x1 - 1` and rows `y0` to `y1 - 1`.

# %%
def pointing_hit(heatmap, box):
    ### BEGIN SOLUTION
    x0, y0, x1, y1 = box
    row, col = divmod(int(heatmap.argmax()), heatmap.shape[1])
    return x0 <= col < x1 and y0 <= row < y1
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_pointing_hit(pointing_hit)

# %% [markdown]
# ## 4. Use them on the real network
#
# `fl.layer_gradients` gives the activations and gradients of a layer; your functions turn them
# into the map. Where is the maximum for "tabby" on `chelsea`, and is it in the centre of the grid?

# %%
model = fl.load_model("efficientnet_lite0")
x = fl.preprocess("chelsea", model)
tabby = fl.imagenet_labels().index("tabby")
acts, grads, _ = fl.layer_gradients(model, x, "head", target=tabby)
heat = grad_cam_map(acts.cpu(), grads.cpu())
if heat is not None:
    print("map", tuple(heat.shape), "max at (row, col)", divmod(int(heat[0].argmax()), heat.shape[2]))
    centre = (2, 2, 5, 5)                                # (x0, y0, x1, y1): columns and rows 2, 3, 4
    print(f"on the centre 3×3 cells of the 7×7 grid, box {centre}:", pointing_hit(heat[0], centre))
