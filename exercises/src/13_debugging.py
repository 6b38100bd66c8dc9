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
# # Exercise 13 — Debugging feature pipelines
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/13_debugging.ipynb`. Fill in each `TODO`, run the cell, then run the check
# below it: it prints ✓ when your function is right, and says what is wrong when it is not.
#
# Shapes: a batch of pictures is (N, C, H, W); a convolution's weight is
# (out_channels, in_channels, kh, kw).

# %%
import copy

import torch
import torchvision
from torch import nn

import featlab as fl

_ = torch.manual_seed(0)


# %% [markdown]
# ## 1. A first convolution for one-channel pictures
#
# `gray_first_conv(conv)` takes the RGB first layer of a network and returns a **new** layer that
# takes one channel: its weight is the sum of the three colour kernels, shape
# (out_channels, 1, kh, kw), so that `new(g) == conv(g.repeat(1, 3, 1, 1))` for a gray batch `g`
# (N, 1, H, W). Keep everything else — bias, stride, padding, dilation, padding mode, even the
# class of the layer (EfficientNet-Lite0's stem is timm's `Conv2dSame`, which pads itself):
# `copy.deepcopy(conv)` and change the copy. Set its `in_channels` to 1 and leave `conv` as it was.

# %%
def gray_first_conv(conv):
    ### BEGIN SOLUTION
    gray = copy.deepcopy(conv)
    gray.weight = nn.Parameter(conv.weight.detach().sum(dim=1, keepdim=True))
    gray.in_channels = 1
    return gray
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_gray_first_conv(gray_first_conv)


# %% [markdown]
# ## 2. Output shape by arithmetic
#
# `output_shape(layers, input_size)` takes a list of layers — `nn.Conv2d`, `nn.MaxPool2d`,
# `nn.AvgPool2d`, `nn.BatchNorm2d`, `nn.ReLU` — and one picture's `(C, H, W)`, and returns the
# `(C, H, W)` of the output **without running anything**: each conv/pool layer maps a side of n
# pixels to
#
# $$n_\text{out} = \left\lfloor \frac{n + 2p - d(k-1) - 1}{s} \right\rfloor + 1$$
#
# (height and width separately), and a convolution sets C to its `out_channels`. BatchNorm and
# ReLU change nothing. Conv layers store `kernel_size`, `stride`, `padding`, `dilation` as (h, w)
# pairs; pooling layers may store plain ints (`(v, v) if isinstance(v, int) else v`), and
# `nn.AvgPool2d` has no dilation (use 1). All pooling here has `ceil_mode=False`.

# %%
def output_shape(layers, input_size):
    ### BEGIN SOLUTION
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)

    c, h, w = input_size
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            c = layer.out_channels
        elif not isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            continue
        k, s, p = pair(layer.kernel_size), pair(layer.stride), pair(layer.padding)
        d = pair(getattr(layer, "dilation", 1))
        h = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
        w = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    return c, h, w
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_output_shape(output_shape)


# %% [markdown]
# ## 3. Counting parameters
#
# `count_params(module)` returns the number of parameters of a model as an int: every parameter
# once — also frozen ones (`requires_grad=False`) and a layer used twice only once — and no
# buffers (BatchNorm's running statistics are buffers, not parameters).

# %%
def count_params(module):
    ### BEGIN SOLUTION
    return sum(p.numel() for p in module.parameters())
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_count_params(count_params)

# %% [markdown]
# ## 4. Your functions on real networks
#
# EfficientNet-Lite0 (pretrained) with your one-channel stem, on the grayscale `camera` picture:
# the predictions must equal those of the original network on the picture repeated three times.
# Then your shapes and counts against `fl.describe` on ResNet-18 (random weights, no download).

# %%
lite0 = fl.load_model("efficientnet_lite0")
x3 = fl.preprocess("camera", lite0)                  # (1, 3, 224, 224), three equal channels
stem = gray_first_conv(lite0.conv_stem)
if stem is not None:
    gray_model = copy.deepcopy(lite0)
    gray_model.conv_stem = stem
    print("3 channels:", fl.predict(lite0, x3, topk=3)[0])
    print("1 channel: ", fl.predict(gray_model, x3[:, :1], topk=3)[0])

resnet = torchvision.models.resnet18(weights=None).eval()
rows = {r.path: r for r in fl.describe(resnet, (3, 224, 224), depth=1, verbose=False)}
stem_layers = [resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool]
print("output_shape of ResNet-18's stem:", output_shape(stem_layers, (3, 224, 224)),
      "| fl.describe:", rows["maxpool"].output_shape[1:])
print("count_params(resnet18):", count_params(resnet), "| fl.describe:", sum(r.params for r in rows.values()))
print("count_params(efficientnet_lite0):", count_params(lite0))

# %% [markdown]
# **Think about it:** `output_shape([lite0.conv_stem], (3, 224, 224))` gives 111 × 111, but
# `fl.describe(lite0, depth=1)` shows 112 × 112. Why? (Hint: `lite0.conv_stem.padding` is 0, and
# the layer is a `Conv2dSame`.) Which of the two would you trust, and when is arithmetic enough?

# %%
print(output_shape([lite0.conv_stem], (3, 224, 224)), "vs",
      fl.describe(lite0, (3, 224, 224), depth=1, verbose=False)[0].output_shape[1:])
