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
# # Exercise 05 — Feature maps
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/05_feature_maps.ipynb`. Fill in each `TODO`, run the cell, then run the
# check below it: it prints ✓ when your function is right, and says what is wrong when it is not.

# %%
import torch
import featlab as fl


# %% [markdown]
# ## 1. Record a layer's output with a forward hook
#
# `capture(model, module, x)` runs `model(x)` and returns what `module` produced. Register a forward
# hook (`module.register_forward_hook(fn)`, where `fn(module, inputs, output)`), run the model under
# `torch.inference_mode()`, remove the hook even if the forward pass fails, and beware in-place
# operations that run after the module.

# %%
def capture(model, module, x):
    ### BEGIN SOLUTION
    kept = {}
    handle = module.register_forward_hook(lambda m, inputs, output: kept.update(out=output.clone()))
    try:
        with torch.inference_mode():
            model(x)
    finally:
        handle.remove()
    return kept["out"]
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_capture(capture)


# %% [markdown]
# ## 2. How sparse is a map?
#
# `fraction_active(f)` takes a batch of maps (N, C, H, W) and returns, for each image, the fraction
# of entries that are strictly positive: a tensor of shape (N,).

# %%
def fraction_active(f):
    ### BEGIN SOLUTION
    return (f > 0).float().mean(dim=(1, 2, 3))
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_fraction_active(fraction_active)


# %% [markdown]
# ## 3. Which channels to show?
#
# `top_channels(fmap, k)` takes one map (C, H, W) and returns the indices of the `k` channels with
# the largest mean activation (a list of ints).

# %%
def top_channels(fmap, k):
    ### BEGIN SOLUTION
    return fmap.mean(dim=(1, 2)).topk(k).indices.tolist()
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_top_channels(top_channels)

# %% [markdown]
# ## 4. Use them on the real network

# %%
model = fl.load_model("efficientnet_lite0")
x = fl.preprocess("chelsea", model)
head = capture(model, dict(model.named_modules())["bn2"], x)
if head is not None:
    print("head map", tuple(head.shape), "fraction active", fraction_active(head))
    print("strongest channels:", top_channels(head[0], 5))
