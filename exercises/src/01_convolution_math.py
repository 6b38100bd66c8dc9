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
# # Exercise 01 · Convolution math
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Companion to `notebooks/01_convolution_math.ipynb`. Three small functions; after each, run the
# check cell: it compares your function with PyTorch on fresh inputs and prints ✓, or raises
# `ExerciseError` saying what is off.
#
# Shapes: input `x` (N, C_in, H, W), weight (C_out, C_in, kH, kW), bias (C_out,).

# %%
import torch
import torch.nn.functional as F

import featlab as fl

torch.manual_seed(0)


# %% [markdown]
# ## Task 1 — the output-size formula
#
# A window of extent $d(k-1)+1$ slides over $n + 2p$ padded values in steps of $s$. Return the number
# of output positions along one axis (an `int`). Check your formula by hand first: a 7×7, stride-2,
# padding-3 convolution on 224 pixels gives 112.

# %%
def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one axis."""
    ### BEGIN SOLUTION
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_conv_output_size(conv_output_size)


# %% [markdown]
# ## Task 2 — convolution as im2col + one matrix product
#
# `F.unfold(x, (kH, kW), padding=p, stride=s)` returns the patches as columns, shape
# (N, C_in·kH·kW, L) with L = H'·W'. Flatten the weight to (C_out, C_in·kH·kW), multiply, add the
# bias, and reshape to (N, C_out, H', W') (your `conv_output_size` gives H' and W'). Kernels may be
# non-square.

# %%
def conv2d_unfold(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                  stride: int = 1, padding: int = 0) -> torch.Tensor:
    """(N, C_in, H, W), (C_out, C_in, kH, kW), (C_out,) -> (N, C_out, H', W')."""
    ### BEGIN SOLUTION
    n, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    oh = conv_output_size(h, kh, stride, padding)
    ow = conv_output_size(w, kw, stride, padding)
    cols = F.unfold(x, (kh, kw), padding=padding, stride=stride)      # (N, C_in*kH*kW, L)
    y = weight.reshape(c_out, -1) @ cols                                # (N, C_out, L)
    return y.view(n, c_out, oh, ow) + bias.view(1, -1, 1, 1)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_conv2d_unfold(conv2d_unfold)


# %% [markdown]
# ## Task 3 — a 1×1 convolution is a matrix product per pixel
#
# Move channels last, treat every pixel as a row of a (N·H·W, C_in) matrix, multiply by the
# transposed weight (C_in, C_out), add the bias, and bring the result back to (N, C_out, H, W).

# %%
def conv1x1_matmul(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """(N, C_in, H, W), (C_out, C_in), (C_out,) -> (N, C_out, H, W)."""
    ### BEGIN SOLUTION
    n, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(-1, c)                       # (N*H*W, C_in)
    y = pixels @ weight.T + bias                                        # (N*H*W, C_out)
    return y.view(n, h, w, -1).permute(0, 3, 1, 2)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_conv1x1_matmul(conv1x1_matmul)

# %% [markdown]
# **Going further:** compare your `conv2d_unfold` with `fl.conv2d_unfold`, which also handles dilation
# and groups (read it: `featlab/conv.py`).
