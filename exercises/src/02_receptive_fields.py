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
# # Exercise 02 — Receptive fields
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/02_receptive_fields.ipynb`. Fill in each `TODO`, run the cell, then run the
# check below it: it prints ✓ when your function is right, and says what is wrong when it is not.
# The checks compare your answers with `fl.receptive_field` on random stacks of convolutions.

# %%
import torch
from torch import nn

import featlab as fl


# %% [markdown]
# ## 1. Size and stride
#
# `rf_recursion(layers)` takes a list of `(kernel, stride)` pairs (no padding, no dilation) and
# returns, for each layer, the pair `(R, S)`: the receptive-field size and the cumulative stride
# after that layer. Start from $R_0 = S_0 = 1$ and use
# $R_l = R_{l-1} + (k_l - 1)\,S_{l-1}$, $S_l = S_{l-1}\,s_l$.

# %%
def rf_recursion(layers):
    ### BEGIN SOLUTION
    r, s, out = 1, 1, []
    for k, st in layers:
        r, s = r + (k - 1) * s, s * st
        out.append((r, s))
    return out
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_rf_recursion(rf_recursion)


# %% [markdown]
# ## 2. Padding and dilation too
#
# `rf_full(layers)` takes `(kernel, stride, padding, dilation)` tuples and returns `(R, S, P)` after
# each layer, where $P$ is the effective padding: $P_l = P_{l-1} + p_l\,S_{l-1}$, $P_0 = 0$. A kernel
# of size $k$ with dilation $d$ spans $d\,(k-1) + 1$ input units.

# %%
def rf_full(layers):
    ### BEGIN SOLUTION
    r, s, p, out = 1, 1, 0, []
    for k, st, pad, d in layers:
        r, p, s = r + d * (k - 1) * s, p + pad * s, s * st
        out.append((r, s, p))
    return out
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_rf_full(rf_full)


# %% [markdown]
# ## 3. Where does a unit look?
#
# `unit_span(R, S, P, i, n)` returns the input pixels `(start, stop)` (stop excluded, like a Python
# slice) that unit `i` of a layer sees along one axis, **clipped** to an image of `n` pixels.
# Unit $i$ starts at $-P + i\,S$ and covers $R$ pixels.

# %%
def unit_span(R, S, P, i, n):
    ### BEGIN SOLUTION
    start = -P + i * S
    return max(start, 0), min(start + R, n)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_unit_span(unit_span)

# %% [markdown]
# ## 4. Use them on VGG-16
#
# VGG-16's convolutions and pools, read from the architecture (random weights are enough).

# %%
vgg = fl.load_model("vgg16", pretrained=False)
layers = [(m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0],
           m.stride if isinstance(m.stride, int) else m.stride[0],
           m.padding if isinstance(m.padding, int) else m.padding[0],
           m.dilation if isinstance(m.dilation, int) else m.dilation[0])
          for m in vgg.features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
rows = rf_full(layers)
if rows is not None:
    R, S, P = rows[-1]
    print("pool5: R, S, P =", (R, S, P), "| featlab:", fl.receptive_field(vgg, "pool5"))
    print("unit 0 of pool5 sees columns", unit_span(R, S, P, 0, 224))
