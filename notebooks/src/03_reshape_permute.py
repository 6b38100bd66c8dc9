# ---
# jupyter:
#   jupytext:
#     formats: ipynb,src//py:percent
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
# # 03 — Reshape, permute, flatten: safe and dangerous moves
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - tell a *view* (same numbers, new strides) from a *copy*, and predict which one `view`,
#   `reshape`, `permute`, `contiguous` and `flatten` give;
# - turn feature maps into tokens (N, H·W, C) in raster order — and recognise the reshape that runs
#   without error and scrambles everything;
# - measure what flattening, layout mix-ups (NCHW vs NHWC), a BatchNorm over the wrong axis and a
#   1-D convolution over a flattened image cost;
# - move information between channels and space with `pixel_shuffle` / `pixel_unshuffle`, and prove
#   the round trip is exact;
# - build ViT's patchify two ways (unfold → linear, `Conv2d` with kernel = stride = P), prove they agree,
#   and measure that a transformer without position embeddings cannot tell shuffled patches apart;
# - measure how BatchNorm's output depends on the batch (2 vs 64) while GroupNorm / LayerNorm do
#   not, and what normalising over the wrong axis after a reshape does.
#
# **Prerequisites:** `01_convolution_math` (tensor shapes of conv layers). **Run time:** about 30 s on
# a 2-core CPU.
#
# ## The idea
#
# A tensor is one flat block of numbers plus a shape and *strides*: element $(n, c, h, w)$ of an
# (N, C, H, W) tensor lives at
#
# $$\text{offset}(n, c, h, w) = n\,s_N + c\,s_C + h\,s_H + w\,s_W, \qquad
#   \text{contiguous NCHW: } (s_N, s_C, s_H, s_W) = (CHW,\ HW,\ W,\ 1).$$
#
# `permute` / `transpose` only swap strides (no copy). `view` reinterprets the block under a new
# shape and needs compatible strides. `reshape` is `view` when possible and a copy otherwise. A
# reshape never checks *meaning*: any new shape with the same number of elements is accepted, so
# most layout bugs are silent. The table below lists the cases this notebook runs.
#
# | # | move | silent failure | measured damage | fix |
# |---|------|----------------|-----------------|-----|
# | 1 | (N,C,H,W) → tokens (N,HW,C) | `x.reshape(N, H*W, C)` | cosine of tokens with the true pixel vectors | `x.flatten(2).transpose(1, 2)` |
# | 2 | flatten to (N, C·H·W) | a shifted picture gives a different vector | cosine vs shift, flat vs GAP | global average pooling |
# | 3 | NHWC data fed to an NCHW model | `reshape` instead of `permute` ("height as channels") | top-1 agreement | `permute(0, 3, 1, 2)`; featlab rejects NHWC shapes |
# | 4 | `permute` then `view` | error, then `reshape` silently copies | bytes copied, aliasing | `.contiguous()` / `reshape`, knowingly |
# | 5 | BatchNorm on tokens | `BatchNorm1d(L)` normalises positions, not channels | per-channel mean / std | `bn(t.transpose(1, 2)).transpose(1, 2)` |
# | 6 | flatten + `Conv1d` | the kernel sees a row, wraps across row ends | least-squares fit of a 2-D filter | keep `Conv2d` |
# | 7 | channels ↔ space | `reshape` instead of `pixel_unshuffle` | fraction of values in the right place | `F.pixel_shuffle` / `F.pixel_unshuffle` |
# | 8 | image → patch tokens (ViT) | `reshape` without `permute`; no position embedding | values in place; output change under token shuffle | `F.unfold` / `Conv2d(k = s = P)`; add position embeddings |
# | 9 | normalisation | BatchNorm on tiny batches; LayerNorm after a bad reshape | drift vs batch size; per-token mean / std | GroupNorm / LayerNorm on the C axis |

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import featlab as fl
from featlab.images import check_batch

torch.manual_seed(0)
np.random.seed(0)
plt.rcParams["figure.dpi"] = 72
model = fl.load_model("efficientnet_lite0")
pictures = ["chelsea", "coffee", "astronaut", "rocket", "china", "flower"]
x = fl.preprocess(pictures, model)                      # (6, 3, 224, 224), NCHW
N = x.shape[0]

# %% [markdown]
# ## From scratch: strides are the whole story
#
# We compute an element's offset with the formula and read it from the flat storage; then look at
# what `permute` does to strides.

# %%
# NBVAL_CHECK_OUTPUT
t = torch.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)            # (N, C, H, W)
print("shape", tuple(t.shape), "strides", t.stride())
n, c, h, w = 1, 2, 3, 4
offset = sum(i * s for i, s in zip((n, c, h, w), t.stride()))
assert t.flatten()[offset] == t[n, c, h, w]
print(f"offset of {(n, c, h, w)} = {offset}; value there = {t[n, c, h, w].item()}")

p = t.permute(0, 2, 3, 1)                                     # (N, H, W, C): no copy, new strides
print("permuted shape", tuple(p.shape), "strides", p.stride(), "contiguous:", p.is_contiguous())
print("shares memory with t:", p.data_ptr() == t.data_ptr())

# %% [markdown]
# ## Case 1 — feature maps to tokens, in raster order
#
# Transformer-style heads, attention pooling and "one descriptor per location" retrieval want a map
# (N, C, H, W) as a sequence of H·W tokens, each the C-vector of one pixel, in raster order: token
# $k = hW + w$. The right move keeps C together: `flatten(2)` gives (N, C, HW), `transpose(1, 2)`
# gives (N, HW, C). The tempting `reshape(N, H*W, C)` has the same shape and runs.

# %%
# NBVAL_CHECK_OUTPUT
f = fl.extract(model, x, "block7")["block7"].float().cpu().clone()  # (6, 320, 7, 7); clone: a normal tensor, not an inference tensor
Nf, C, H, W = f.shape
right = f.flatten(2).transpose(1, 2)                          # (N, HW, C)
wrong = f.reshape(Nf, H * W, C)                               # same shape, silently wrong
print("shapes:", tuple(right.shape), tuple(wrong.shape))
h, w = 3, 5
assert torch.equal(right[:, h * W + w], f[:, :, h, w])        # token k = h*W + w is pixel (h, w)
cos_right = F.cosine_similarity(right, right, dim=2).mean().item()
cos_wrong = F.cosine_similarity(wrong, right, dim=2).mean().item()
print(f"mean cosine of tokens with the true pixel vectors: right {cos_right:.3f}, wrong {cos_wrong:.3f}")
# a round trip does NOT catch the bug: the wrong reshape undoes itself perfectly
print("wrong round trip equals f:", torch.equal(wrong.reshape(Nf, C, H, W), f))
print("right round trip equals f:", torch.equal(right.transpose(1, 2).reshape(Nf, C, H, W), f))

# %% [markdown]
# At a high-resolution layer the damage is visible: plot channel 0 read back from the tokens both
# ways. The wrong tokens' "channel 0" takes every C-th number of the flat block: a mixture of many
# channels and positions.

# %%
stem = fl.extract(model, x[:1], "stem")["stem"].float().cpu()   # (1, 32, 112, 112)
_, Cs, Hs, Ws = stem.shape
tok_right = stem.flatten(2).transpose(1, 2)
tok_wrong = stem.reshape(1, Hs * Ws, Cs)
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
axes[0].imshow(tok_right[0, :, 0].reshape(Hs, Ws), cmap="viridis")
axes[1].imshow(tok_wrong[0, :, 0].reshape(Hs, Ws), cmap="viridis")
for ax, title in zip(axes, ["channel 0, flatten(2).transpose", "'channel 0', reshape(N, HW, C)"]):
    ax.set_title(title, fontsize=8)
    ax.axis("off")
plt.tight_layout()
plt.show()


# %% [markdown]
# ## Case 2 — flattening a map throws away its topology
#
# `f.flatten(1)` gives one (C·H·W) vector per image, and position becomes part of the feature: the
# same object one cell to the right lands on *other* coordinates of that vector. Global average
# pooling (GAP) sums over positions instead. We shift each picture horizontally by 0…32 pixels
# (padding by reflection, so no black border appears) and compare features of shifted and original.
# A cosine needs a reference in the same space: the line after the table prints the mean cosine
# between *different* pictures, flattened and pooled — what "nothing in common" looks like in each
# space. Cosines of two spaces are compared through it: the **fraction of the way to a different
# picture** that a 32 px shift travels, $(1 - \cos_{shift}) / (1 - \cos_{different})$, per picture,
# with a 95 % bootstrap interval over the six pictures for the difference.

# %%
# NBVAL_CHECK_OUTPUT
def shifted(batch: torch.Tensor, k: int, margin: int = 32) -> torch.Tensor:
    """Move the content of (N, 3, H, W) pictures k pixels to the right (reflect-padded)."""
    big = F.pad(batch, (margin, margin, 0, 0), mode="reflect")
    return big[..., margin - k: margin - k + batch.shape[-1]]

shifts = [0, 4, 8, 16, 32]
feats = {k: fl.extract(model, shifted(x, k), "head")["head"].float().cpu() for k in shifts}
cos_flat, cos_gap = [], []
print("shift  cos(flattened)  cos(GAP)   (mean over 6 pictures, layer 'head' (1280, 7, 7), stride 32)")
for k in shifts:
    cf = F.cosine_similarity(feats[k].flatten(1), feats[0].flatten(1), dim=1).mean().item()
    cg = F.cosine_similarity(feats[k].mean((2, 3)), feats[0].mean((2, 3)), dim=1).mean().item()
    cos_flat.append(cf)
    cos_gap.append(cg)
    print(f"{k:5d}  {cf:14.3f}  {cg:8.3f}")
pairs = [(i, j) for i in range(len(x)) for j in range(i + 1, len(x))]
ref_flat = np.mean([F.cosine_similarity(feats[0][i].flatten(), feats[0][j].flatten(), dim=0).item() for i, j in pairs])
ref_gap = np.mean([F.cosine_similarity(feats[0][i].mean((1, 2)), feats[0][j].mean((1, 2)), dim=0).item() for i, j in pairs])
print(f"different pictures (mean of {len(pairs)} pairs): {ref_flat:8.3f}  {ref_gap:8.3f}")
way = {  # per picture: (1 - cos at 32 px) / (1 - cos between different pictures), in each space
    "flattened": (1 - F.cosine_similarity(feats[32].flatten(1), feats[0].flatten(1), dim=1).numpy()) / (1 - ref_flat),
    "GAP": (1 - F.cosine_similarity(feats[32].mean((2, 3)), feats[0].mean((2, 3)), dim=1).numpy()) / (1 - ref_gap),
}
d_way = way["flattened"] - way["GAP"]
rng_way = np.random.default_rng(0)
lo, hi = np.percentile([rng_way.choice(d_way, len(d_way)).mean() for _ in range(2000)], [2.5, 97.5])
print("32 px shift, fraction of the way to a different picture (mean ± sd over 6 pictures): "
      + ", ".join(f"{k} {v.mean():.2f} ± {v.std():.2f}" for k, v in way.items()))
print(f"flattened - GAP: {d_way.mean():+.2f} (95 % interval {lo:+.2f} to {hi:+.2f}) -> shift invariance of GAP: "
      + ("better" if lo > 0 else "worse" if hi < 0 else "no clear difference"))

# %%
plt.figure(figsize=(4.5, 3))
plt.plot(shifts, cos_flat, "o-", label="flattened (C·H·W)")
plt.plot(shifts, cos_gap, "s-", label="GAP (C)")
plt.axhline(ref_flat, color="C0", ls=":", lw=1, label="different pictures, flattened")
plt.axhline(ref_gap, color="C1", ls=":", lw=1, label="different pictures, GAP")
plt.xlabel("shift (pixels)")
plt.ylabel("cosine with unshifted")
plt.legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# The GAP vector barely moves while the flattened one drops with the shift. A shift by one head
# cell (32 pixels) does *not* make the flattened vector look like another picture — its cosine
# stays far above the different-picture line — but it moves it a good part of the way there, and
# GAP only a small part: the interval of the difference lies above zero, so the verdict on GAP's
# shift invariance is **better** (the last printed line). Flattening is right when position
# matters and the inputs are aligned (faces cropped the same way); for "what is in the picture",
# pool first.
#
# ## Case 3 — NHWC pictures fed to an NCHW model
#
# NumPy, PIL, TensorFlow and OpenCV hold pictures as (H, W, C). PyTorch models want (N, C, H, W).
# Passing NHWC directly is a *loud* error: the first convolution finds 224 channels instead of 3.
# featlab checks inputs at its boundary and says what to do:

# %%
# NBVAL_CHECK_OUTPUT
nhwc = x.permute(0, 2, 3, 1).contiguous()                      # what a NumPy pipeline hands you
try:
    fl.extract(model, nhwc, "head")
except ValueError as e:
    print("fl.extract:", e)
try:
    fl.conv2d(nhwc, model.conv_stem.weight)
except ValueError as e:
    print("fl.conv2d: ", e)

# %% [markdown]
# The *silent* version is the "fix" that makes the error go away: `reshape(N, 3, 224, 224)` instead
# of `permute(0, 3, 1, 2)`. The shape is now right, so no check can object — but "channel 0" is now
# the first third of the rows of the picture, with R, G, B interleaved along the width. The model
# still answers confidently; we measure how often it agrees with the correct input.

# %%
# NBVAL_CHECK_OUTPUT
x_fixed = nhwc.permute(0, 3, 1, 2)
x_silent = nhwc.reshape(N, 3, 224, 224)                        # "height as channels"
check_batch(x_silent, 3)                                       # passes: the shape is valid
print("permute gives back x exactly:", torch.equal(x_fixed, x))
with torch.inference_mode():
    p_right = model(x_fixed).softmax(1)
    p_silent = model(x_silent).softmax(1)
labels = fl.imagenet_labels()
agree = (p_right.argmax(1) == p_silent.argmax(1)).float().mean().item()
print(f"top-1 agreement, reshape vs permute: {agree:.0%}")
for name, a, b in zip(pictures, p_right.argmax(1).tolist(), p_silent.argmax(1).tolist()):
    print(f"  {name:10s} right: {labels[a]:22s} reshape: {labels[b]}")

# %%
show = fl.preprocess_for(model).denormalize(torch.stack([x_fixed[0], x_silent[0]]).cpu())
fig = fl.plot.show_images([s.permute(1, 2, 0).numpy() for s in show],
                          ["permute(0, 3, 1, 2)", "reshape(N, 3, 224, 224)"], ncols=2, size=2.5)
plt.show()

# %% [markdown]
# ## Case 4 — `permute` then `view`
#
# After a `permute` the numbers are not in row-major order for the new shape, so `view` refuses
# anything that would have to merge dimensions whose strides do not line up. `.contiguous()` (or
# `reshape`, which calls it when needed) copies the data into the new order. Two consequences worth
# measuring: the copy costs memory and time, and whether a result *shares memory* with its source
# depends on the input's strides — so writing into it sometimes changes the original and sometimes
# not.

# %%
# NBVAL_CHECK_OUTPUT
v = x.permute(0, 2, 3, 1)                                      # (N, H, W, C) view
print("contiguous:", v.is_contiguous())
try:
    v.view(N, -1)
except RuntimeError as e:
    print("view(N, -1) ->", type(e).__name__ + ":", str(e).split(".")[0])
flat_copy = v.reshape(N, -1)                                   # works: silently copies
flat_view = x.reshape(N, -1)                                   # contiguous input: a view
print("reshape of permuted shares memory:", flat_copy.data_ptr() == v.data_ptr(),
      f"({flat_copy.numel() * flat_copy.element_size() / 2**20:.2f} MiB copied)")
print("reshape of contiguous shares memory:", flat_view.data_ptr() == x.data_ptr())
a = torch.zeros(2, 3)
a.reshape(-1)[0] = 1.0                                          # writes through to a
b = torch.zeros(2, 3)
b.t().reshape(-1)[0] = 1.0                                      # writes into a copy: b unchanged
print("write through reshape changed the original:", a[0, 0].item() == 1.0, "(contiguous),",
      b[0, 0].item() == 1.0, "(transposed)")


# %% [markdown]
# What the copy costs in time: 20 alternating repeats of each, the median of each, and the ratio
# with a 95 % bootstrap interval over the repeats; a verdict needs the whole interval outside a
# ±5 % tie band (timings depend on your computer, so this output is not compared by the tests):

# %%
def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


pairs_t = np.array([(timed(lambda: x.reshape(N, -1)), timed(lambda: v.reshape(N, -1))) for _ in range(20)])
ratio = pairs_t[:, 1] / pairs_t[:, 0]
rng_t = np.random.default_rng(0)
lo, hi = np.exp(np.percentile([np.log(rng_t.choice(ratio, 20)).mean() for _ in range(2000)], [2.5, 97.5]))
verdict = "worse" if lo > 1.05 else "better" if hi < 0.95 else "no clear difference"   # tie band ±5 %
print(f"reshape as view: {np.median(pairs_t[:, 0]) * 1e6:.1f} µs, reshape with copy: {np.median(pairs_t[:, 1]) * 1e6:.1f} µs; "
      f"copy/view ratio {np.exp(np.log(ratio).mean()):.0f} (95 % interval {lo:.0f} to {hi:.0f}) -> the copy: {verdict}")

# %% [markdown]
# ## Case 5 — BatchNorm over the wrong dimension
#
# `nn.BatchNorm1d(C)` normalises dimension 1 of an (N, C, L) input: one mean and variance per
# channel, over the batch and the L positions. Tokens are (N, L, C). Feeding them directly is an
# error (49 ≠ 320) — and the one-word "fix" `BatchNorm1d(L)` runs, normalising each *position* over
# channels instead. We use block 7's output (6 pictures × 49 positions × 320 channels, training-mode
# statistics) and measure per-channel mean and standard deviation after each version.

# %%
# NBVAL_CHECK_OUTPUT
tokens = f.flatten(2).transpose(1, 2)                          # (6, 49, 320) from case 1
L = tokens.shape[1]
try:
    nn.BatchNorm1d(C)(tokens)
except RuntimeError as e:
    print("BatchNorm1d(C) on (N, L, C):", str(e).split("\n")[0])
bn_wrong = nn.BatchNorm1d(L)(tokens)                           # runs: normalises positions
bn_right = nn.BatchNorm1d(C)(tokens.transpose(1, 2)).transpose(1, 2)
bn_2d = nn.BatchNorm2d(C)(f).flatten(2).transpose(1, 2)        # reference: BatchNorm2d on the map
assert torch.allclose(bn_right, bn_2d, atol=1e-5)
for name, t_ in [("right", bn_right), ("wrong", bn_wrong)]:
    mean_c = t_.mean(dim=(0, 1))                               # per channel
    std_c = t_.std(dim=(0, 1), unbiased=False)
    print(f"{name}: per-channel |mean| max {mean_c.abs().max().item():.3f}, "
          f"std range [{std_c.min().item():.3f}, {std_c.max().item():.3f}]")
print(f"cosine between wrong and right outputs: {F.cosine_similarity(bn_wrong.flatten(), bn_right.flatten(), dim=0).item():.3f}")


# %% [markdown]
# ## Case 6 — flattening the picture and using a 1-D convolution
#
# Flatten an H×W image row by row into a sequence of length H·W and run a `Conv1d` with kernel 3:
# each output sees its left and right neighbour in the *row* — nothing above or below — and at the
# end of a row its "right neighbour" is the first pixel of the next row. The gradient of one output
# with respect to the input shows exactly which pixels it depends on.

# %%
# NBVAL_CHECK_OUTPUT
def support(op, h: int, w: int, size: int = 6) -> list[tuple[int, int]]:
    """Input pixels (row, col) that output (h, w) of op depends on, via the gradient."""
    img = torch.randn(1, 1, size, size, requires_grad=True)
    op(img)[0, 0, h, w].backward()
    return [tuple(p) for p in img.grad[0, 0].nonzero().tolist()]

torch.manual_seed(0)
k2d = torch.rand(1, 1, 3, 3) + 0.1
k1d = torch.rand(1, 1, 3) + 0.1
conv2d_op = lambda img: F.conv2d(img, k2d, padding=1)
conv1d_op = lambda img: F.conv1d(img.flatten(2), k1d, padding=1).view(img.shape)
print("Conv2d, output (2, 2):", support(conv2d_op, 2, 2))
print("Conv1d, output (2, 2):", support(conv1d_op, 2, 2))
print("Conv1d, output (2, 5):", support(conv1d_op, 2, 5), "<- wraps into the next row")

# %% [markdown]
# How much is lost? A 2-D filter like Sobel-y (vertical change) needs the rows above and below. We
# fit the *best possible* 3-tap 1-D filter on the flattened camera picture to the 2-D responses by
# least squares, and report the relative error that remains (0 = perfect, 1 = no better than
# outputting zeros).

# %%
# NBVAL_CHECK_OUTPUT
cam = torch.tensor(np.asarray(fl.load_image("camera").convert("L").resize((64, 64))), dtype=torch.float64) / 255
cam = cam[None, None]                                          # (1, 1, 64, 64)
sobel = {"Sobel x (horizontal change)": torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64),
         "Sobel y (vertical change)": torch.tensor([[-1.0, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=torch.float64)}
seq = F.pad(cam.flatten(2), (1, 1))[0, 0]                      # flattened, zero-padded sequence
cols = seq.unfold(0, 3, 1)                                     # (H*W, 3): 3-tap windows of the sequence
for name, k in sobel.items():
    target = F.conv2d(cam, k[None, None], padding=1).flatten()
    taps = torch.linalg.lstsq(cols, target[:, None]).solution
    rel = ((cols @ taps)[:, 0] - target).norm() / target.norm()
    print(f"{name:28s} best 1-D fit: relative error {rel.item():.3f}")


# %% [markdown]
# Sobel x is only partly expressible (its horizontal difference is, its vertical smoothing is not);
# Sobel y, a pure vertical change, not at all: its best 1-D fit is barely better than zero output.
# The fix is simply to keep the image 2-D (`Conv2d`). Sequence models that do flatten (vision
# transformers) must add position information to compensate: ViT adds a *learned* embedding per
# patch index — a 1-D position code, from which training recovers the 2-D layout (case 8).
#
# ## Case 7 — moving information between channels and space
#
# `F.pixel_unshuffle(x, r)` turns (N, C, H, W) into (N, C·r², H/r, W/r): every r×r block of pixels
# becomes r² channels of one pixel ("space to depth"); `F.pixel_shuffle` is its exact inverse (used
# by super-resolution networks to upsample). From scratch it is a `view` that splits H and W, a
# `permute` that brings the two block axes next to C, and a `reshape`:

# %%
# NBVAL_CHECK_OUTPUT
def space_to_depth(t: torch.Tensor, r: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, C*r*r, H/r, W/r), channel c*r*r + i*r + j holds pixel (h*r+i, w*r+j)."""
    n, c, h, w = t.shape
    return t.view(n, c, h // r, r, w // r, r).permute(0, 1, 3, 5, 2, 4).reshape(n, c * r * r, h // r, w // r)

pic = fl.preprocess_for(model).denormalize(x[:1]).cpu()        # (1, 3, 224, 224) in [0, 1]
ours = space_to_depth(pic, 2)
torch_s2d = F.pixel_unshuffle(pic, 2)
assert torch.equal(ours, torch_s2d)
assert torch.equal(F.pixel_shuffle(torch_s2d, 2), pic)         # exact round trip: nothing lost
print("pixel_unshuffle:", tuple(pic.shape), "->", tuple(torch_s2d.shape), "same number of values:",
      pic.numel() == torch_s2d.numel())
silent = pic.reshape(1, 12, 112, 112)                           # same shape, different arrangement
print(f"reshape puts {(silent == torch_s2d).float().mean().item():.1%} of values where pixel_unshuffle does")

# %%
fig, axes = plt.subplots(1, 4, figsize=(9, 2.5))
panels = [(torch_s2d[0, 0], "unshuffle ch 0: pixels (2h, 2w)"), (torch_s2d[0, 3], "unshuffle ch 3: (2h+1, 2w+1)"),
          (silent[0, 0], "reshape 'ch 0'"), (silent[0, 3], "reshape 'ch 3'")]
for ax, (im, title) in zip(axes, panels):
    ax.imshow(im, cmap="gray")
    ax.set_title(title, fontsize=7)
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# pixel_unshuffle's channels are four half-resolution copies of the red plane, each offset by one
# pixel; reshape's "channels" are stacks of half-rows, mixing positions into channels.

# %% [markdown]
# ## Case 8 — a designed reshape: ViT's patchify
#
# A vision transformer cuts the picture into P×P patches, flattens each into a vector of
# P·P·C numbers, and maps it linearly to a D-dimensional token. Two implementations are common:
# `F.unfold` (every P×P patch as a column, vector order (c, i, j)) followed by a linear layer, and a
# `Conv2d(C, D, kernel_size=P, stride=P)` whose output map (N, D, H/P, W/P) is flattened into tokens
# as in case 1. They are the same computation if the linear layer's weight is the conv weight
# (D, C, P, P) reshaped to (D, C·P·P) — which works only because unfold orders each patch vector as
# (c, i, j), the same order as the weight. We check it on the cat picture (224 px, P = 16: a 14×14
# grid of 196 patches of 768 numbers each), then check the raster order of tokens: token $k = rW_p +
# c$ is the patch in grid row $r$, column $c$.

# %%
# NBVAL_CHECK_OUTPUT
P, D = 16, 64
img = x[:1].cpu()                                              # chelsea, (1, 3, 224, 224)
Hp, Wp = img.shape[2] // P, img.shape[3] // P                  # 14 x 14 grid of patches
torch.manual_seed(0)
patch_embed = nn.Conv2d(3, D, kernel_size=P, stride=P)        # the usual ViT "patch embedding"
with torch.no_grad():
    tok_conv = patch_embed(img).flatten(2).transpose(1, 2)     # (1, 196, D)
    patches = F.unfold(img, kernel_size=P, stride=P).transpose(1, 2)    # (1, 196, 3*16*16)
    tok_linear = patches @ patch_embed.weight.reshape(D, -1).T + patch_embed.bias
print("patches", tuple(patches.shape), "tokens", tuple(tok_conv.shape))
assert torch.allclose(tok_conv, tok_linear, atol=1e-4)         # conv(kernel = stride = P) == unfold -> linear
r, c = 2, 5
k = r * Wp + c                                                 # raster order over the patch grid
assert torch.equal(patches[0, k], img[0, :, r * P:(r + 1) * P, c * P:(c + 1) * P].flatten())
print(f"token {k} is the patch in grid row {r}, column {c}; its vector is that patch flattened as (c, i, j)")

# two patchifies that run and are wrong
view_only = img.reshape(1, Hp * Wp, 3 * P * P)                 # view without the permute
hwc = img.view(1, 3, Hp, P, Wp, P).permute(0, 2, 4, 3, 5, 1).reshape(1, Hp * Wp, -1)  # right patches, (i, j, c) order
with torch.no_grad():
    tok_hwc = hwc @ patch_embed.weight.reshape(D, -1).T + patch_embed.bias
print(f"reshape without permute: {(view_only == patches).float().mean().item():.1%} of values where unfold puts them")
print(f"(i, j, c) patch vectors with the conv's weight: mean cosine with the conv tokens "
      f"{F.cosine_similarity(tok_hwc, tok_conv, dim=2).mean().item():.3f}")


# %% [markdown]
# A transformer does not see the grid: self-attention and the MLP treat the tokens as a *set*. If
# we shuffle the 196 patch tokens, each output token moves with its input, so the mean-pooled
# output does not change at all — the picture on the right below is, to the model, the cat. We
# measure it on a small (untrained, 2-layer, D = 64) transformer encoder, with the difference
# between the cat and the coffee picture as the scale. Then we add a fixed 1-D sinusoidal position
# embedding to each slot (as the original transformer does; ViT learns its own) and measure again.

# %%
# NBVAL_CHECK_OUTPUT
def sincos_positions(n: int, d: int) -> torch.Tensor:
    """(n, d) sinusoidal position embedding: sin/cos of position k at d/2 frequencies."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(-np.log(10000.0) * torch.arange(0, d, 2, dtype=torch.float32) / d)
    pe = torch.zeros(n, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe

torch.manual_seed(0)
layer = nn.TransformerEncoderLayer(d_model=D, nhead=4, dim_feedforward=128, dropout=0.0, batch_first=True)
encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()
shuffle = torch.randperm(Hp * Wp, generator=torch.Generator().manual_seed(1))
pos = sincos_positions(Hp * Wp, D)
with torch.no_grad():
    tok_other = patch_embed(x[1:2].cpu()).flatten(2).transpose(1, 2)   # coffee: the scale
    for name, pe in [("no position embedding", 0.0), ("sinusoidal position embedding", pos)]:
        out = encoder(tok_conv + pe).mean(1)                   # mean-pooled output, (1, D)
        out_shuffled = encoder(tok_conv[:, shuffle] + pe).mean(1)
        out_other = encoder(tok_other + pe).mean(1)
        d_shuffle = (out_shuffled - out).abs().max().item()
        d_other = (out_other - out).abs().max().item()
        print(f"{name:30s} max |Δ| shuffled cat vs cat {d_shuffle:.3f}  (coffee vs cat {d_other:.3f}; "
              f"shuffle changes output: {d_shuffle > 1e-4})")

# %%
shuffled_img = F.fold(patches[:, shuffle].transpose(1, 2), output_size=img.shape[2:], kernel_size=P, stride=P)
assert torch.equal(F.fold(patches.transpose(1, 2), output_size=img.shape[2:], kernel_size=P, stride=P), img)
show = fl.preprocess_for(model).denormalize(torch.cat([img, shuffled_img])).clamp(0, 1)
fig = fl.plot.show_images([s.permute(1, 2, 0).numpy() for s in show],
                          ["the cat", "its 196 patches shuffled"], ncols=2, size=2.5)
plt.show()

# %% [markdown]
# Without position embeddings, shuffling changes the pooled output by nothing (0.000 at 3 decimals,
# float rounding only) although the picture is destroyed. With the sinusoidal embedding the
# output does change — but on this untrained toy model the change is small next to the difference
# between two different pictures (the printed numbers): the embedding makes order *visible*, and
# training decides how much it matters. Learned position embeddings behave the same way; we cannot
# train a ViT offline here, so the size of the effect in a trained ViT is not measured.
#
# ## Case 9 — normalisation and the batch
#
# `BatchNorm2d` in training mode normalises each channel with the mean and variance of the
# *current batch* (over N, H, W). So the same picture's normalised features depend on which other
# pictures share its batch, and the smaller the batch, the more. `GroupNorm` and `LayerNorm`
# compute their statistics inside one sample, so batch size cannot matter; `BatchNorm` in eval
# mode uses stored running statistics and is batch-independent too. We take 128 crops of 80×80
# pixels from the six pictures (crop 0 from the cat), block 3's features (40 channels, 10×10),
# and normalise crop 0 inside random batches of 2 … 64 crops (10 draws each). The reference is
# normalisation with the statistics of all 128 crops (what running statistics approximate).

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
S = 80
corners = torch.randint(0, 224 - S + 1, (128, 2), generator=g)
owner = torch.randint(0, N, (128,), generator=g)
owner[0] = 0                                                   # crop 0 is from the cat
crops = torch.stack([x[i, :, t:t + S, l:l + S] for i, (t, l) in zip(owner.tolist(), corners.tolist())])
feat = fl.extract(model, crops, "block3")["block3"].float().cpu()    # (128, 40, 10, 10)
print("features of the crops:", tuple(feat.shape))
C3 = feat.shape[1]
bn = nn.BatchNorm2d(C3, affine=False).train()
gn = nn.GroupNorm(8, C3, affine=False)
ln = nn.LayerNorm(feat.shape[1:], elementwise_affine=False)
reference = F.batch_norm(feat, None, None, training=True)[0]   # crop 0 with the statistics of all 128
alone_gn, alone_ln = gn(feat[:1])[0], ln(feat[:1])[0]
print("batch  BatchNorm (train): crop 0's relative change vs all-128 statistics, mean / max of 10 batches")
for B in [2, 8, 32, 64]:
    rel = []
    for _ in range(10):
        batch = torch.cat([feat[:1], feat[1 + torch.randperm(127, generator=g)[:B - 1]]])
        rel.append(((bn(batch)[0] - reference).norm() / reference.norm()).item())
        assert torch.allclose(gn(batch)[0], alone_gn, atol=1e-5)      # GroupNorm: batch-mates do not matter
        assert torch.allclose(ln(batch)[0], alone_ln, atol=1e-5)      # LayerNorm: neither
    print(f"{B:5d}  {np.mean(rel):.3f} / {max(rel):.3f}")
bn.eval()                                                      # running statistics: batch-independent as well
assert torch.allclose(bn(feat[:2])[0], bn(feat[:64])[0], atol=1e-5)
print("GroupNorm, LayerNorm and eval-mode BatchNorm: crop 0's output identical in every batch")

# %% [markdown]
# In training mode, crop 0's normalised features move by about a third of their size on average
# (up to a half) when it shares a batch with one other crop, and still by about 4 % with 64 (the
# printed table); from 2 to 8 to 32 the drift halves each time the batch grows four-fold. The network
# trains on features that depend on the batch-mates, and at test time (eval mode, running
# statistics) it sees yet another normalisation. This is one reason why detection and segmentation
# models, trained with a few large images per GPU, often use GroupNorm or frozen BatchNorm, and
# why transformers use LayerNorm.
#
# **Normalising after a bad reshape.** LayerNorm over tokens (N, L, C) should normalise each
# token's C channels. Two mistakes run silently: LayerNorm(C) on tokens made by
# `reshape(N, H*W, C)` (case 1's bug: each "token" is C consecutive numbers of one channel's map),
# and LayerNorm over the spatial axis of (N, C, H·W) (each channel normalised over positions).
# Read back as true tokens, the right version has per-token mean 0 and standard deviation 1:

# %%
# NBVAL_CHECK_OUTPUT
right_ln = F.layer_norm(f.flatten(2).transpose(1, 2), (C,))            # (6, 49, 320), per token
wrong_reshape = F.layer_norm(f.reshape(Nf, H * W, C), (C,)).reshape(Nf, C, H, W).flatten(2).transpose(1, 2)
wrong_axis = F.layer_norm(f.flatten(2), (H * W,)).transpose(1, 2)      # normalised over space
assert torch.allclose(right_ln, nn.LayerNorm(C, elementwise_affine=False)(f.permute(0, 2, 3, 1)).flatten(1, 2), atol=1e-5)
for name, t_ in [("right (tokens, over C)", right_ln), ("reshape(N, HW, C), over C", wrong_reshape),
                 ("(N, C, HW), over HW", wrong_axis)]:
    m, s = t_.mean(2), t_.std(2, unbiased=False)               # per true token
    cos = F.cosine_similarity(t_, right_ln, dim=2).mean().item()
    print(f"{name:27s} per-token |mean| max {m.abs().max().item():.3f}, std range "
          f"[{s.min().item():.3f}, {s.max().item():.3f}], cosine with right {cos:.3f}")

# %% [markdown]
# Both wrong versions leave tokens with non-zero means and standard deviations far from 1 (the
# ranges above), and their outputs are only partly aligned with the right ones. No error is ever
# raised: the shapes were fine.
#

# %% [markdown]
# ## Pitfalls (summary)
#
# - `reshape` and `view` check only the number of elements, never meaning: after any layout change,
#   assert one element (`right[:, h*W + w] == f[:, :, h, w]`), because round trips cannot catch it.
# - Use `permute` / `transpose` to reorder axes and `reshape` / `flatten` only to merge or split
#   *adjacent* axes in their current order.
# - `permute` + `view` errors; `reshape` then copies silently — fine, but writes into the result no
#   longer reach the original.
# - Normalisation layers (`BatchNorm1d`, `LayerNorm`) act on a fixed axis: check it matches C.
# - Patchify with `F.unfold` (or a `Conv2d` with kernel = stride = P); a bare `reshape` of the image
#   is not patches. A transformer without position embeddings sees a set, not a picture.
# - Training-mode BatchNorm makes a sample's features depend on its batch-mates, strongly for small
#   batches; GroupNorm / LayerNorm do not.
# - Flattening keeps position; pool when position should not matter. A 1-D convolution over a
#   flattened image is not a 2-D neighbourhood.
# - featlab rejects NHWC-shaped batches with the fix in the message; it cannot detect a wrong
#   `reshape` whose shape is valid.
#
# ## Exercise
#
# Open `exercises/03_reshape_permute.ipynb`: write maps→tokens, tokens→maps, space-to-depth, ViT's
# patchify and a per-token LayerNorm; the check cells compare them with PyTorch on fresh random tensors.
