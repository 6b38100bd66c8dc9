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
# # Exercise 03 · Reshape, permute, flatten
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Companion to `notebooks/03_reshape_permute.ipynb`. Five small functions (maps ↔ tokens, space to depth,
# ViT's patchify, LayerNorm on tokens); after each, run the
# check cell: it compares your function with PyTorch on fresh random tensors and prints ✓, or raises
# `ExerciseError` saying what is off.

# %%
import torch
import torch.nn.functional as F

import featlab as fl

torch.manual_seed(0)


# %% [markdown]
# ## Task 1 — feature maps to tokens
#
# Turn a map (N, C, H, W) into tokens (N, H·W, C) in raster order: token $hW + w$ must be the
# C-vector of pixel $(h, w)$. (`f.reshape(N, H*W, C)` has the right shape and the wrong values.)

# %%
def to_tokens(f: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H*W, C)."""
    ### BEGIN SOLUTION
    return f.flatten(2).transpose(1, 2)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_to_tokens(to_tokens)


# %% [markdown]
# ## Task 2 — tokens back to a map
#
# The inverse: (N, H·W, C) and the map size (H, W) -> (N, C, H, W).

# %%
def from_tokens(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(N, H*W, C) -> (N, C, H, W)."""
    ### BEGIN SOLUTION
    n, _, c = tokens.shape
    return tokens.transpose(1, 2).reshape(n, c, h, w)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_from_tokens(from_tokens)


# %% [markdown]
# ## Task 3 — space to depth
#
# Write `F.pixel_unshuffle` yourself: (N, C, H, W) -> (N, C·r², H/r, W/r), where channel
# $c r^2 + i r + j$ at $(h, w)$ holds input pixel $(h r + i,\ w r + j)$ of channel $c$.
# Hint: `view` to (N, C, H/r, r, W/r, r), `permute` the two `r` axes next to C, `reshape`.

# %%
def space_to_depth(x: torch.Tensor, r: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C*r*r, H/r, W/r)."""
    ### BEGIN SOLUTION
    n, c, h, w = x.shape
    t = x.view(n, c, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4)
    return t.reshape(n, c * r * r, h // r, w // r)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_space_to_depth(space_to_depth)


# %% [markdown]
# ## Task 4 — ViT's patchify
#
# Cut (N, C, H, W) into P×P patches and return tokens (N, (H/P)·(W/P), C·P·P): token $k$ is the
# patch in grid row $k \,//\, (W/P)$, column $k \,\%\, (W/P)$ (raster order), and each patch vector is
# ordered (c, i, j) — channel, row in the patch, column in the patch — like a `Conv2d` weight
# (D, C, P, P) flattened, so that `patchify(x, P) @ conv.weight.reshape(D, -1).T + conv.bias` equals
# the conv with kernel = stride = P. Use `view`/`permute`/`reshape` (the check also accepts
# `F.unfold`). `x.reshape(N, L, C*P*P)` has the right shape and cuts rows, not patches.

# %%
def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, (H/P)*(W/P), C*P*P), raster order, (c, i, j) patch vectors."""
    ### BEGIN SOLUTION
    n, c, h, w = x.shape
    t = x.view(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)   # (N, H/P, W/P, C, P, P)
    return t.reshape(n, (h // p) * (w // p), c * p * p)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_patchify(patchify)


# %% [markdown]
# ## Task 5 — LayerNorm on tokens
#
# Normalise tokens (N, L, C) the way a transformer's `LayerNorm(C)` does (without its learned scale
# and shift): each token over its own C channels, $y = (t - \mu)/\sqrt{\sigma^2 + \varepsilon}$
# with the mean and the *biased* variance of that token's C values. Not over the token axis L, not
# over the batch: the result for one sample must not depend on the others.

# %%
def layer_norm_tokens(t: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """(N, L, C) -> (N, L, C), every token with mean 0 and variance 1 over its C channels."""
    ### BEGIN SOLUTION
    mean = t.mean(dim=-1, keepdim=True)
    var = t.var(dim=-1, keepdim=True, unbiased=False)
    return (t - mean) / torch.sqrt(var + eps)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_layer_norm_tokens(layer_norm_tokens)

# %% [markdown]
# ## Use them: the cat as 196 tokens
#
# A ViT's first steps with your functions on a real picture: patchify the cat (224 px, P = 16), embed
# the patches linearly, compare with the `Conv2d` patch embedding read out as tokens (task 1), and
# normalise the tokens (task 5).

# %%
torch.manual_seed(0)
cat = fl.preprocess(["chelsea"], "efficientnet_lite0").cpu()      # (1, 3, 224, 224)
patches = patchify(cat, 16)                                       # (1, 196, 768)
embed = torch.nn.Conv2d(3, 64, kernel_size=16, stride=16)
with torch.no_grad():
    by_conv = to_tokens(embed(cat))                               # (1, 196, 64)
    by_linear = patches @ embed.weight.reshape(64, -1).T + embed.bias
    normed = layer_norm_tokens(by_linear)
print("patches", tuple(patches.shape), "tokens", tuple(by_linear.shape),
      "| conv == patchify -> linear:", torch.allclose(by_conv, by_linear, atol=1e-4))
std = normed.std(dim=-1, unbiased=False)
print(f"after layer_norm_tokens: |token mean| <= {normed.mean(dim=-1).abs().max().item():.3f}, "
      f"token std in [{std.min().item():.3f}, {std.max().item():.3f}]")
