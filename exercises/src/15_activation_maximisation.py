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
# # Exercise 15 — What does a channel want?
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/15_activation_maximisation.ipynb`. Fill in each `TODO`, run the cell, then
# run the check below it: it prints ✓ when your function is right, and says what is wrong when it
# is not.
#
# Shapes: `acts` is a layer's output (N, C, H, W); a picture `x` is (1, 3, H, W).

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

import featlab as fl

_ = torch.manual_seed(0)


# %% [markdown]
# ## 1. The objective: one channel's mean activation
#
# `channel_objective(acts, channel)` returns the mean of channel `channel` over the batch and
# both spatial dimensions — **one number, as a tensor** that still carries the graph (so that
# `.backward()` works: no `.item()`).

# %%
def channel_objective(acts, channel):
    ### BEGIN SOLUTION
    return acts[:, channel].mean()
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_channel_objective(channel_objective)


# %% [markdown]
# ## 2. The Fourier parameterisation's frequency scaling
#
# `fourier_scale(h, w)` returns the (h, w // 2 + 1) tensor $1 / \max(f, 1/\max(h, w))$ where
# $f = \sqrt{f_y^2 + f_x^2}$ is the frequency (cycles per pixel) of each entry of
# `torch.fft.rfft2` of an h×w picture: rows `torch.fft.fftfreq(h)`, columns
# `torch.fft.rfftfreq(w)`. Multiplying a spectrum by it makes low frequencies move faster.

# %%
def fourier_scale(h, w):
    ### BEGIN SOLUTION
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    f = torch.sqrt(fy ** 2 + fx ** 2)
    return 1.0 / f.clamp_min(1.0 / max(h, w))
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_fourier_scale(fourier_scale)


# %% [markdown]
# ## 3. One gradient-ascent step on the input
#
# `ascent_step(model, x, channel, lr)`: `model(x)` gives a layer's activations (N, C, H, W) and
# `x` is a leaf tensor with `requires_grad=True`. Compute `channel_objective`, backpropagate,
# then **in place** under `torch.no_grad()` move `x` by `lr` times its gradient — uphill —,
# zero `x.grad`, and return `x`. Do not touch the model's weights.

# %%
def ascent_step(model, x, channel, lr):
    ### BEGIN SOLUTION
    objective = channel_objective(model(x), channel)
    objective.backward()
    with torch.no_grad():
        x += lr * x.grad
    x.grad.zero_()
    return x
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_ascent_step(ascent_step)

# %% [markdown]
# ## 4. Your functions on the pretrained network
#
# The first four blocks of EfficientNet-Lite0 (up to `block4`, 80 channels) as one model,
# frozen, in eval mode. Twenty ascent steps on a 64×64 picture for channel 20, compared with the
# best of the 12 sample pictures. Plain pixels, no tricks: expect noise.

# %%
net = fl.load_model("efficientnet_lite0").eval()
for p in net.parameters():
    p.requires_grad_(False)
upto_block4 = nn.Sequential(net.conv_stem, net.bn1, *net.blocks[:4])
x = (torch.randn(1, 3, 64, 64) * 0.1).to(fl.device()).requires_grad_(True)
start = channel_objective(upto_block4(x), 20)
if start is not None:
    for _ in range(20):
        ascent_step(upto_block4, x, 20, 0.05)
    with torch.no_grad():
        end = channel_objective(upto_block4(x), 20).item()
        pics = fl.preprocess(list(fl.sample_images()), net)
        real = fl.extract(net, pics, "block4")["block4"][:, 20].mean(dim=(1, 2))
    print(f"channel 20 of block4: {start.item():.2f} -> {end:.2f}; best sample picture (224 px) {real.max().item():.2f}")
    plt.figure(figsize=(2.5, 2.5))
    plt.imshow((x[0].detach().cpu() * 0.5 + 0.5).clamp(0, 1).permute(1, 2, 0).numpy())
    plt.axis("off")
