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
# # 05 — Feature maps from shallow to deep
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - pull the feature maps of several layers out of a pretrained CNN in one forward pass;
# - read a feature map: channels × height × width, and what one channel's map shows;
# - *measure* how maps change with depth: resolution, number of channels, sparsity, spatial spread,
#   and how much they still look like image edges;
# - avoid the classic hook pitfall (in-place ReLU rewriting what you recorded).
#
# **Prerequisites:** `00_setup_and_tour`. **Run time:** about 25 s on a 2-core CPU.
#
# A convolutional layer turns its input into a stack of maps $y \in \mathbb{R}^{C \times H \times W}$:
# channel $c$ answers "how much of pattern $c$ is at position $(h, w)$?". A common description of
# these maps (usually shown on VGG16's layers 0, 5, 10, 17 and 28) goes: *early maps look like edge
# images of the picture; deep maps are coarse, numerous and sparse, firing on a few object parts.*
# Here we turn each of those words into a number, follow it through the whole depth, and give each
# claim a verdict.

# %%
import time
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from skimage.filters import sobel
import featlab as fl

t0 = time.time()
torch.manual_seed(0)
plt.rcParams["figure.dpi"] = 72
model = fl.load_model("efficientnet_lite0")
pictures = ["chelsea", "coffee", "astronaut", "rocket", "china", "flower"]

# %% [markdown]
# ## From scratch: a forward hook
#
# A *forward hook* is a function PyTorch calls with `(module, input, output)` each time a module
# runs. Record the output, run the model, remove the hook. That is all `fl.extract` does — plus
# removing hooks even after errors, cloning outputs (see the pitfall below), stopping the forward pass
# once the deepest requested layer ran, and accepting friendly layer names (aliases).

# %%
# NBVAL_CHECK_OUTPUT
recorded = {}
stem = dict(model.named_modules())["bn1"]
handle = stem.register_forward_hook(lambda module, inp, out: recorded.update(stem=out.clone()))
x = fl.preprocess("chelsea", model)
with torch.inference_mode():
    model(x)
handle.remove()

ours = fl.extract(model, x, "stem")["stem"]
assert torch.equal(recorded["stem"], ours)
print("hand-made hook == fl.extract:", tuple(ours.shape))

# %% [markdown]
# ## The layers we follow
#
# EfficientNet-Lite0 is built from *inverted residual* blocks. A block's own output is a linear
# "bottleneck" (no activation), so its sign means nothing; the maps worth reading are the ones right
# after a ReLU6. We take, in each of the seven stages, the last block's depth-wise convolution
# output (after its ReLU6), plus the stem and the head.

# %%
# NBVAL_CHECK_OUTPUT
depth_layers = ["stem", "blocks.0.0.bn1", "blocks.1.1.bn2", "blocks.2.1.bn2", "blocks.3.2.bn2",
                "blocks.4.2.bn2", "blocks.5.3.bn2", "blocks.6.0.bn2", "head"]
shapes = fl.layer_names(model)
for layer in depth_layers:
    print(f"{layer:16s} -> {fl.resolve_layer(model, layer):16s} {shapes[fl.resolve_layer(model, layer)]}")

# %%
feats = {k: v.float().cpu() for k, v in fl.extract(model, pictures, depth_layers).items()}
for layer in ["stem", "blocks.2.1.bn2", "head"]:
    fig = fl.plot.feature_grid(feats[layer][0], k=16, title=f"chelsea, {layer}")
    plt.show()


# %% [markdown]
# ## Measuring the claims
#
# For a post-ReLU map $y \in \mathbb{R}^{C\times H\times W}_{\ge 0}$ we compute, per picture:
#
# - **fraction active** $= \frac{1}{CHW}\,\#\{y_{chw} > 0\}$ — low means sparse;
# - **spatial spread** of channel $c$: the participation ratio
#   $\rho_c = \frac{(\sum_{hw} y_{chw})^2}{HW \sum_{hw} y_{chw}^2} \in (0, 1]$, 1 when the channel fires
#   evenly everywhere, $1/HW$ when it fires at a single position; averaged over channels that fire;
# - **edge likeness**: the best absolute Pearson correlation $|r|$, over channels, between a channel's
#   map (upsampled to 112×112) and the Sobel edge magnitude of *its own* picture, minus the same
#   number against *another* picture's edges. The subtraction matters: with 1280 channels of 7×7, some
#   channel correlates with almost any blob by chance — the measured chance level is the baseline.

# %%
def fraction_active(f):            # (N, C, H, W) -> (N,)
    return (f > 0).float().mean(dim=(1, 2, 3))

def spatial_spread(f):             # (N, C, H, W) -> (N,)
    s1, s2 = f.sum(dim=(2, 3)), (f ** 2).sum(dim=(2, 3))
    hw = f.shape[2] * f.shape[3]
    fires = s2 > 0
    rho = torch.where(fires, s1 ** 2 / (hw * s2.clamp_min(1e-12)), torch.zeros_like(s1))
    return rho.sum(1) / fires.sum(1).clamp_min(1)

def _best_abs_corr(fmap, edges):  # (C, h, w), (H*W,) -> best |Pearson r| over channels
    m = F.interpolate(fmap[None], size=112, mode="bilinear", align_corners=False)[0].flatten(1)
    mc, ec = m - m.mean(1, keepdim=True), edges - edges.mean()
    return ((mc @ ec) / (mc.norm(dim=1) * ec.norm() + 1e-12)).abs().max()

prep = fl.preprocess_for(model)
edge_maps = torch.stack([
    F.adaptive_avg_pool2d(torch.from_numpy(sobel(prep.denormalize(prep(n))[0].mean(0).numpy())).float()[None, None],
                          112).flatten() for n in pictures])

def edge_likeness(f):              # (N, C, H, W) of `pictures` -> (N,) own edges minus chance
    n = len(f)
    own = torch.stack([_best_abs_corr(f[i], edge_maps[i]) for i in range(n)])
    chance = torch.stack([_best_abs_corr(f[i], edge_maps[(i + 1) % n]) for i in range(n)])
    return own - chance


# %%
# NBVAL_CHECK_OUTPUT
rows = []
print(f"{'layer':16s} {'C':>5s} {'H×W':>8s} {'active':>7s} {'spread':>7s} {'edge r':>7s}")
for layer in depth_layers:
    f = feats[layer]
    act, spr, edg = fraction_active(f), spatial_spread(f), edge_likeness(f)
    rows.append((layer, f.shape[1], f.shape[2], act.mean().item(), spr.mean().item(), edg.mean().item(),
                 act.std().item(), spr.std().item(), edg.std().item()))
    print(f"{layer:16s} {f.shape[1]:5d} {f.shape[2]:>3d}×{f.shape[3]:<3d} "
          f"{act.mean():7.2f} {spr.mean():7.2f} {edg.mean():7.2f}")

# %%
depth = np.arange(len(rows))
fig, axes = plt.subplots(1, 3, figsize=(12, 3))
for ax, col, name in [(axes[0], 3, "fraction active (>0)"), (axes[1], 4, "spatial spread ρ"),
                      (axes[2], 5, "edge likeness (|r| − chance)")]:
    ax.errorbar(depth, [r[col] for r in rows], yerr=[r[col + 3] for r in rows], marker="o", capsize=3)
    ax.set_title(name, fontsize=10); ax.set_xticks(depth, [r[0].replace("blocks.", "b") for r in rows],
                                                    rotation=60, fontsize=7)
    ax.set_ylim(0, 1)
fig.suptitle("mean ± std over 6 pictures, shallow → deep", fontsize=10); fig.tight_layout(); plt.show()

fig, ax = plt.subplots(figsize=(5, 3))
ax.semilogy(depth, [r[1] for r in rows], "o-", label="channels C")
ax.semilogy(depth, [r[2] for r in rows], "s-", label="resolution H (= W)")
ax.set_xticks(depth, [r[0].replace("blocks.", "b") for r in rows], rotation=60, fontsize=7)
ax.legend(fontsize=8); ax.set_title("channels grow as resolution shrinks", fontsize=10); plt.show()

# %% [markdown]
# **What the numbers say.** The curves are not monotone — the fraction active, for instance, falls
# to 0.22 at `blocks.5.3.bn2`, jumps back to 0.49 at `blocks.6.0.bn2` and drops to 0.08 at the
# head — and the nine layers are not all of one type: the stem and the head follow a
# dense convolution, the seven in between are depth-wise convolution outputs. Comparing only the two
# ends would let one layer decide. So each claim gets a trend over the *whole* curve: per picture,
# the Spearman rank correlation $\rho$ between depth and the measure (−1: falls at every step, +1:
# rises at every step), then the mean over the 6 pictures with a 95 % bootstrap interval over
# pictures. Verdict: "falls with depth" if the interval lies below 0, "rises with depth" if above,
# "no clear difference" otherwise. The same test on the seven depth-wise layers alone checks that
# the trend is not made by the change of layer type.

# %%
# NBVAL_CHECK_OUTPUT
from scipy.stats import spearmanr

per_picture = {  # measure -> (pictures, layers) array
    "fraction active": np.stack([fraction_active(feats[l]).numpy() for l in depth_layers], 1),
    "spatial spread": np.stack([spatial_spread(feats[l]).numpy() for l in depth_layers], 1),
    "edge likeness": np.stack([edge_likeness(feats[l]).numpy() for l in depth_layers], 1),
}
claims = {"fraction active": "deeper maps are sparser", "spatial spread": "deeper maps are less spread out",
          "edge likeness": "deeper maps are less edge-like"}
dw = [i for i, l in enumerate(depth_layers) if l.startswith("blocks.")]   # the 7 depth-wise outputs
boot = np.random.default_rng(0)
first, last = rows[0], rows[-1]
print(f"resolution {first[2]}→{last[2]} px per side ({first[2] // last[2]}× coarser), "
      f"channels {first[1]}→{last[1]} ({last[1] // first[1]}× more)\n")
for measure, v in per_picture.items():
    print(f"claim: {claims[measure]} ({measure})")
    for which, cols in [("all 9 layers", list(range(len(depth_layers)))), (f"{len(dw)} depth-wise layers", dw)]:
        rho = np.array([spearmanr(np.arange(len(cols)), v[p, cols])[0] for p in range(len(v))])
        lo, hi = np.percentile([boot.choice(rho, len(rho)).mean() for _ in range(2000)], [2.5, 97.5])
        verdict = "falls with depth" if hi < 0 else "rises with depth" if lo > 0 else "no clear difference"
        print(f"  {which:18s} Spearman rho {rho.mean():+.2f} ± {rho.std():.2f} "
              f"(95 % interval {lo:+.2f} to {hi:+.2f}) -> {verdict}")

# %% [markdown]
# Read the verdicts above rather than the two ends of the curves. **Sparser** and **less
# edge-like** fall with depth over all nine layers *and* over the depth-wise layers alone: those
# claims hold. **Less spread out** is weaker than it looked: over the depth-wise layers alone its
# rank correlation is close to zero — the curve falls, then rises again in the last stages — and
# the verdict "falls with depth" there comes only from every picture sharing that same U shape.
# Most of the fall over all nine layers comes from ending on the head, a different layer type.
# Spread is not monotone in depth.
#
# ## Edge likeness, seen
#
# A number like "|r| − chance" hides what is being compared. Below, for two pictures: the Sobel
# edge magnitude, then at four depths the channel whose map correlates best with it (upsampled,
# as in the measure), titled with its $|r|$.

# %%
show_layers = ["stem", "blocks.1.1.bn2", "blocks.3.2.bn2", "head"]
fig, axes = plt.subplots(2, 1 + len(show_layers), figsize=(11, 4.4))
for r, pi in enumerate([0, 1]):
    axes[r, 0].imshow(edge_maps[pi].view(112, 112), cmap="gray")
    axes[r, 0].set_title(f"{pictures[pi]}: Sobel edges", fontsize=8)
    e = edge_maps[pi]
    for c, layer in enumerate(show_layers, start=1):
        m = F.interpolate(feats[layer][pi][None], size=112, mode="bilinear", align_corners=False)[0].flatten(1)
        mc, ec = m - m.mean(1, keepdim=True), e - e.mean()
        corr = ((mc @ ec) / (mc.norm(dim=1) * ec.norm() + 1e-12)).abs()
        k = corr.argmax().item()
        axes[r, c].imshow(m[k].view(112, 112), cmap="magma")
        axes[r, c].set_title(f"{layer} ch {k}: |r| {corr[k]:.2f}", fontsize=8)
for ax in axes.flat:
    ax.axis("off")
fig.tight_layout(); plt.show()

# %% [markdown]
# ## Optional: VGG16's layers 0 / 5 / 10 / 17 / 28
#
# The measurements above are the course's version of the classic VGG16 picture. If you have
# VGG16's ImageNet weights (`fl.load_model('vgg16')` says how to get them), this cell runs the same
# measurements on `conv1_1, conv2_1, conv3_1, conv4_1, conv5_3` (before their ReLU, so "active"
# means "positive"), where every layer is the same type (3×3 convolution); without the weights it
# prints one line and moves on, and nothing later depends on it.

# %%
if "vgg16" in fl.available_models():
    vgg = fl.load_model("vgg16")
    vgg_layers = ["features.0", "features.5", "features.10", "features.17", "features.28"]
    vf = {k: v.float().cpu() for k, v in fl.extract(vgg, pictures, vgg_layers).items()}
    for layer in vgg_layers:
        f = vf[layer].clamp_min(0)
        print(f"{layer:12s} {tuple(f.shape[1:])}  active {fraction_active(f).mean():.2f}  "
              f"spread {spatial_spread(f).mean():.2f}  edge r {edge_likeness(f).mean():.2f}")
    fig = fl.plot.feature_grid(vf["features.28"][0].clamp_min(0), k=16, title="VGG16 features.28")
else:
    print("VGG16 weights not found (optional cell): fl.load_model('vgg16') explains how to get them.")

# %% [markdown]
# ## Explore interactively
#
# Pick a layer and a channel. (In a headless run — `make test`, `make handouts` — the widget is
# only created; open the notebook in JupyterLab to use it.)

# %%
fl.widgets.feature_explorer(model, "chelsea", depth_layers)

# %% [markdown]
# ## Pitfall: in-place operations rewrite what a hook recorded
#
# Many models apply `ReLU(inplace=True)` right after a convolution. A hook that stores the
# convolution's `output` without copying it keeps a reference to a tensor that the ReLU then
# overwrites — your "pre-activation" map silently loses all its negative values. Measure it on VGG16's
# first convolution (random weights are enough to show the effect):

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
vgg_random = fl.load_model("vgg16", pretrained=False, device="cpu")
x = torch.randn(1, 3, 64, 64)
kept = {}
h = vgg_random.features[0].register_forward_hook(lambda m, i, out: kept.update(naive=out))  # no clone
with torch.inference_mode():
    vgg_random.features[:2](x)
h.remove()
conv = vgg_random.features[0]
truth = F.conv2d(x, conv.weight, conv.bias, padding=1)
safe = fl.extract(vgg_random, x, "conv1_1")["conv1_1"]
print(f"negative values: truth {(truth < 0).float().mean():.2f}, naive hook {(kept['naive'] < 0).float().mean():.2f}, "
      f"fl.extract {(safe < 0).float().mean():.2f}")
print("naive hook == truth:", torch.allclose(kept["naive"], truth), "| fl.extract == truth:", torch.allclose(safe, truth))

# %% [markdown]
# ## Pitfalls, in short
# - A block's output is not always after an activation (linear bottlenecks): check before reading signs.
# - Hook outputs can be rewritten by in-place ops: clone them (as `fl.extract` does).
# - A map's colour scale is per panel in the grids above: compare magnitudes with numbers, not colours.
# - "This channel looks like edges" needs a chance baseline: with hundreds of channels, one always
#   correlates with something. Compare with a mismatched picture, as above.
# - "Deeper is sparser" from the first and last layer alone lets two layers of different types decide;
#   test the trend over the whole depth, per picture, as above.
#
# **Exercise:** `exercises/05_feature_maps.ipynb` — write the hook, the sparsity measure and the
# top-channel choice yourself; `fl.checks` tells you when they are right.

# %%
print(f"notebook ran in {time.time() - t0:.1f} s")
