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
# # 02 — Receptive fields, equivariance and invariance
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - compute the receptive field (size, stride, effective padding) of any layer with a three-line
#   recursion, and locate the exact input pixels one unit of a feature map can see;
# - handle networks with branches (ResNet) and runtime "same" padding (EfficientNet), and check
#   the analytic answer against gradients, pixel for pixel;
# - measure the *effective* receptive field of a trained network — Gaussian-like and much smaller
#   than the theoretical one;
# - measure translation **equivariance** of convolutional maps (exact only for shifts that are
#   multiples of the stride) and the approximate **invariance** that global average pooling buys.
#
# **Prerequisites:** `01_convolution_math` (stride, padding, dilation, output sizes).
# **Run time:** about 25 s on a 2-core CPU.
#
# ## The idea
#
# A unit of a feature map depends on a rectangle of input pixels: its *receptive field* (RF).
# Follow one axis from the input (layer 0) to layer $l$, whose kernel is $k_l$, stride $s_l$,
# padding $p_l$ and dilation $d_l$. Three numbers describe the units of every layer: the size
# $R_l$ of their field, the distance $S_l$ in input pixels between neighbouring units (the
# cumulative stride, or *jump*), and an effective padding $P_l$:
#
# $$R_l = R_{l-1} + d_l\,(k_l-1)\,S_{l-1},\qquad S_l = S_{l-1}\,s_l,\qquad
#   P_l = P_{l-1} + p_l\,S_{l-1},\qquad R_0 = S_0 = 1,\; P_0 = 0.$$
#
# Unit $i$ then sees the input pixels $-P_l + i\,S_l$ to $-P_l + i\,S_l + R_l - 1$, centred on
# $-P_l + i\,S_l + (R_l-1)/2$. Each new layer adds $(k_l - 1)$ *of its input units*, and each of those
# is $S_{l-1}$ pixels apart: that is why fields grow fast after every down-sampling.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from torch import nn

import featlab as fl

torch.manual_seed(0)
np.random.seed(0)
plt.rcParams["figure.dpi"] = 72
dev = fl.device()


# %% [markdown]
# ## From scratch: the recursion on VGG-16
#
# VGG-16 is a plain stack, so we can read its layers in order and apply the recursion. The
# architecture alone decides the field, so random weights do (`pretrained=False` works offline).

# %%
# NBVAL_CHECK_OUTPUT
def rf_by_hand(layers):
    """[(kernel, stride, padding, dilation), ...] -> [(R, S, P) after each layer]."""
    r, s, p, out = 1, 1, 0, []
    for k, st, pad, d in layers:
        r, p, s = r + d * (k - 1) * s, p + pad * s, s * st
        out.append((r, s, p))
    return out


def first(v):
    return v[0] if isinstance(v, tuple) else v


vgg = fl.load_model("vgg16", pretrained=False)
names, layers = [], []
for alias, path in fl.aliases(vgg).items():
    m = vgg.get_submodule(path)
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
        names.append(alias)
        layers.append((first(m.kernel_size), first(m.stride), first(m.padding), first(m.dilation)))

table = fl.receptive_field_table(vgg, input_size=224)
print(f"{'layer':8} {'R':>4} {'S':>3} {'P':>3}")
for alias, (r, s, p) in zip(names, rf_by_hand(layers)):
    rf = table[fl.resolve_layer(vgg, alias)]
    assert (rf.size, rf.stride, rf.padding) == ((r, r), (s, s), (p, p)), alias   # featlab agrees
    print(f"{alias:8} {r:4d} {s:3d} {p:3d}")

# %% [markdown]
# `fl.receptive_field(model, layer)` returns the same numbers as `(h, w)` pairs (fields need not
# be square), plus the position of any unit's field.

#
# `rf.box(i, j)` is the field of the unit in row `i`, column `j` of the map, written as every box
# in the course: `(x0, y0, x1, y1)` — x = column, y = row, x1 and y1 excluded — as
# `torchvision.ops` does; the pixels are `img[y0:y1, x0:x1]`.

# %%
# NBVAL_CHECK_OUTPUT
rf = fl.receptive_field(vgg, "conv5_3")
print(rf)
print("centre unit", (7, 7), "sees (x0, y0, x1, y1) =", rf.box(7, 7), "centred on (row, col)", rf.center(7, 7))
print("corner unit (0, 0) sees", rf.box(0, 0), "-> inside the image", rf.box(0, 0, clip=True))
rows, cols = rf.fully_inside()
print(f"units whose field lies entirely in the image: rows {rows.start}..{rows.stop - 1}, "
      f"{len(rows) * len(cols)} of {rf.output_size[0] * rf.output_size[1]}")

# %% [markdown]
# ## Branches: follow the forward pass, not a list of layers
#
# A ResNet block adds a shortcut to a stack of convolutions; the output unit sees the **union** of
# both fields. EfficientNet's TensorFlow-style "same" padding is computed at run time from the input
# size (and puts the extra pixel on the right/bottom). `fl.receptive_field` therefore runs the model
# once on a blank image and follows every operation — convolutions, pooling, `F.pad`, additions,
# concatenations — carrying $(R, S, P)$ along. Below, the recursion along ResNet-18's longest path
# (stem, then two 3×3 convolutions per block, the first of layers 2–4 with stride 2) agrees with it.

# %%
# NBVAL_CHECK_OUTPUT
resnet18 = fl.load_model("resnet18", pretrained=False)
main_path = [(7, 2, 3, 1), (3, 2, 1, 1)]               # conv1, maxpool
for stage in range(4):
    for conv in range(4):                                # 2 blocks × 2 convolutions
        main_path.append((3, 2 if stage > 0 and conv == 0 else 1, 1, 1))
r, s, p = rf_by_hand(main_path)[-1]
rf18 = fl.receptive_field(resnet18, "layer4")
assert (rf18.size, rf18.stride, rf18.padding) == ((r, r), (s, s), (p, p))
print("resnet18 layer4:", rf18)

# %% [markdown]
# ## Check it with gradients
#
# Which pixels can change a unit? Exactly those with a non-zero gradient — if nothing cancels.
# `fl.empirical_receptive_field` runs the model as an all-positive linear surrogate (weights =
# averages, no nonlinearities, neutral batch norm, average- instead of max-pooling), takes the
# gradient of one unit with respect to the input and returns the bounding box of its support.
# The model itself is not changed.

# %%
# NBVAL_CHECK_OUTPUT
checks = [(vgg, "vgg16", "conv4_3"), (resnet18, "resnet18", "layer3")]
measured = []
for model, name, layer in checks:
    rf = fl.receptive_field(model, layer)
    h, w = rf.output_size
    for unit in [(h // 2, w // 2), (1, w - 2)]:
        emp = fl.empirical_receptive_field(model, layer, unit=unit)
        assert emp.box == rf.box(*unit, clip=True)
        print(f"{name} {layer} unit {unit}: gradient support {emp.box} == analytic {rf.box(*unit, clip=True)}")
        measured.append((name, layer, unit, rf, emp))

# %%
fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
for ax, (name, layer, unit, rf, emp) in zip(axes, measured):
    ax.imshow(emp.gradient.log10().clamp(min=-30).numpy(), cmap="magma")
    x0, y0, x1, y1 = rf.box(*unit)
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="cyan", lw=1.5))
    ax.set_title(f"{name} {layer} {unit}", fontsize=8)
    ax.set_xlim(-0.5, 223.5), ax.set_ylim(223.5, -0.5), ax.axis("off")
fig.suptitle("log10 |gradient| of one unit; cyan: analytic field", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## How fields grow with depth
#
# The four networks `featlab` knows, at their named stages (random weights; only the architecture
# matters). For the last stage we also count the units whose field lies entirely inside the image.

# %%
# NBVAL_CHECK_OUTPUT
nets = {"vgg16": vgg, "resnet18": resnet18,
        "resnet50": fl.load_model("resnet50", pretrained=False),
        "efficientnet_lite0": fl.load_model("efficientnet_lite0")}
growth = {}
for name, model in nets.items():
    table = fl.receptive_field_table(model, 224)
    stages = [a for a in fl.aliases(model) if a.startswith(("pool", "stem", "layer", "block", "head"))]
    growth[name] = [(a, table[fl.resolve_layer(model, a)]) for a in stages]
    last_alias, last = growth[name][-1]
    inside_r, inside_c = last.fully_inside()
    print(f"{name:18} {last_alias:6} RF {last.size[0]:4d} px  stride {last.stride[0]:2d}  "
          f"= {last.size[0] / 224:.2f} × the 224 px image; units fully inside: "
          f"{len(inside_r) * len(inside_c)} of {last.output_size[0] * last.output_size[1]}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.2))
for name, rows in growth.items():
    ax.plot([rf.size[0] for _, rf in rows], "o-", label=name)
ax.axhline(224, color="gray", ls="--", lw=1)
ax.text(0, 235, "image size", fontsize=8, color="gray")
ax.set_xlabel("stage (pool1…5 / stem, layer1…4 / stem, block1…7, head)")
ax.set_ylabel("RF size (px)")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Where the ratio printed above exceeds 1 (the last stage of both ResNets and of EfficientNet-Lite0),
# a unit's field is larger than the whole 224 px image: it reaches into the zero padding, so no unit
# of that layer is free of border effects. VGG-16's `pool5` field is a little smaller than the
# image, but that does not make its units border-free: each field is centred on its unit, so only
# units near the middle have their whole field inside the image — the last column of the table
# counts them (one unit of 49 for `pool5`). Smaller than the image is not the same as padding-free.

# %% [markdown]
# ## Fields on a real picture
#
# The pretrained EfficientNet-Lite0 (offline weights) on `chelsea`. Each box is the field of one
# unit, clipped to the 224×224 input the network sees; the dot is its centre. In `head` every
# unit's field covers the whole picture.

# %%
# NBVAL_CHECK_OUTPUT
model = nets["efficientnet_lite0"]
prep = fl.preprocess_for(model)
x = fl.preprocess("chelsea", model)
print(fl.predict(model, x, topk=2))
layers_on_cat = ["block2", "block4", "head"]
for layer in layers_on_cat:
    rf = fl.receptive_field(model, layer)
    h, w = rf.output_size
    rows, cols = rf.fully_inside()
    print(f"{layer:6} map {h}×{w}  RF {rf.size[0]:3d} px  units fully inside the image: "
          f"{len(rows) * len(cols)} of {h * w}")

# %%
img = prep.denormalize(x[0]).permute(1, 2, 0).cpu().numpy()
fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
for ax, layer in zip(axes, layers_on_cat):
    rf = fl.receptive_field(model, layer)
    h, w = rf.output_size
    ax.imshow(img)
    for unit, color in [((h // 2, w // 2), "yellow"), ((h // 4, w // 4), "cyan"), ((h - 2, 3 * w // 4), "magenta")]:
        x0, y0, x1, y1 = rf.box(*unit, clip=True)
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=color, lw=1.5))
        ax.plot(*rf.center(*unit)[::-1], "o", color=color, ms=3)
    ax.set_xlim(-0.5, 223.5), ax.set_ylim(223.5, -0.5), ax.axis("off")
    ax.set_title(f"{layer}: RF {rf.size[0]} px, stride {rf.stride[0]}", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The effective receptive field
#
# The theoretical field says which pixels *can* matter. How much they matter is the gradient
# magnitude $|\partial y_{\text{unit}} / \partial x|$ of the real, trained network, averaged over
# pictures (Luo et al., 2016). The centre of the field is reached by many more paths than its edge,
# so the effective field is concentrated, roughly Gaussian. We measure it for the centre unit of
# `block4`, whose theoretical field fits inside the image, over the sample pictures.

# %%
layer = "block4"
pics = fl.preprocess([n for n in fl.sample_images()], model)
erf = fl.empirical_receptive_field(model, layer, images=pics, linearize=False)
rf = fl.receptive_field(model, layer)
g = erf.gradient.double()
cy, cx = (round(c) for c in rf.center(*erf.unit))


def half_side(mass: float) -> int:
    """Smallest half-side r of a square centred on the unit holding ``mass`` of |gradient|."""
    total = g.sum()
    for r in range(1, 224):
        if g[max(cy - r, 0):cy + r + 1, max(cx - r, 0):cx + r + 1].sum() >= mass * total:
            return r
    return 224


r95 = half_side(0.95)
profile = g.sum(0) / g.sum()                              # marginal over rows: (W,)
pos = torch.arange(224, dtype=torch.float64)
mu = (profile * pos).sum()
sigma = ((profile * (pos - mu) ** 2).sum()).sqrt()
gauss = torch.exp(-0.5 * ((pos - mu) / sigma) ** 2)
gauss = gauss / gauss.sum()
r2 = 1 - ((profile - gauss) ** 2).sum() / ((profile - profile.mean()) ** 2).sum()

# %%
# NBVAL_CHECK_OUTPUT
print(f"{layer}: theoretical RF {rf.size[0]} px; 95 % of the gradient within a "
      f"{2 * r95 + 1} px square -> ratio {(2 * r95 + 1) / rf.size[0]:.2f}")
print(f"Gaussian fit of the column profile: sigma = {sigma:.0f} px, R² = {r2:.2f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
axes[0].imshow(g.numpy(), cmap="magma")
x0, y0, x1, y1 = rf.box(*erf.unit)
axes[0].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="cyan", lw=1.5, label="theoretical"))
axes[0].add_patch(Rectangle((cx - r95 - 0.5, cy - r95 - 0.5), 2 * r95 + 1, 2 * r95 + 1, fill=False,
                            ec="white", ls="--", lw=1.2, label="95 % of gradient"))
axes[0].legend(fontsize=7, loc="lower right")
axes[0].set_title(f"|gradient| of the centre unit of {layer}", fontsize=9)
axes[0].axis("off")
axes[1].plot(profile.numpy(), label="column profile")
axes[1].plot(gauss.numpy(), "--", label=f"Gaussian, σ = {sigma:.0f} px")
axes[1].axvspan(x0, x1 - 1, color="cyan", alpha=0.15, label="theoretical field")
axes[1].legend(fontsize=7)
axes[1].set_xlabel("column (px)")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Equivariance and invariance
#
# A convolution does the same thing everywhere, so **shifting the input shifts the map**:
# $f(T_k x) = T_{k/S} f(x)$ — but only when the shift $k$ is a multiple of the layer's cumulative
# stride $S$; otherwise the new sampling grid falls between the old units. Global average pooling
# throws positions away, so the pooled vector should barely change with a shift (approximate
# **invariance**), while the flattened map, which keeps positions, should change a lot.
#
# We cut 224×224 windows out of a wider picture, moved right by $k = 0 \dots 32$ px (a real
# translation, no wrap-around), and compare the features with those of the window at $k = 0$.

# %%
from torchvision.transforms import functional as TF

pic = TF.resize(fl.load_image("chelsea"), 224, interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
strip = TF.normalize(TF.pil_to_tensor(pic).float() / 255, prep.mean, prep.std)     # (3, 224, W > 256)
c0 = (strip.shape[-1] - 256) // 2
shifts = list(range(33))
crops = torch.stack([strip[:, :, c0 + k:c0 + k + 224] for k in shifts])             # (33, 3, 224, 224)
feats = {k: v.float().cpu() for k, v in
         fl.extract(model, crops, ["stem", "block2", "block3", "block4", "head", "avgpool"]).items()}
print({k: tuple(v.shape) for k, v in feats.items()})

# %% [markdown]
# **Equivariance.** Window $k$ starts $k$ px further right, so its unit $u$ should equal unit
# $u + k/S$ of window 0. We compare them over the columns whose fields lie entirely inside both
# windows (`rf.fully_inside()`), so the zero padding at the borders plays no part, and shift by the
# nearest whole number of units when $k/S$ is not an integer.

# %%
eq_layers = ["stem", "block2", "block3", "block4"]
rfs = {layer: fl.receptive_field(model, layer) for layer in eq_layers}


def shift_error(layer: str, k: int) -> float:
    """Relative difference between window k's map and window 0's map moved by round(k / S) units."""
    rf = rfs[layer]
    q = round(k / rf.stride[1])
    inside = set(rf.fully_inside()[1])
    cols = [u for u in inside if u + q in inside]
    a, b = feats[layer][k][..., cols], feats[layer][0][..., [u + q for u in cols]]
    return float((a - b).norm() / b.norm())


errors = {layer: [shift_error(layer, k) for k in shifts] for layer in eq_layers}
for layer in eq_layers:
    S = rfs[layer].stride[1]
    on = max(e for k, e in zip(shifts, errors[layer]) if k % S == 0)
    off = min(e for k, e in zip(shifts, errors[layer]) if k % S != 0)
    print(f"{layer:6} stride {S:2d}: largest error at multiples of {S:2d}: {on:.1e};  "
          f"smallest error at other shifts: {off:.2f}")
    assert on < 1e-4 < 0.01 < off


# %% [markdown]
# **Invariance.** Cosine similarity to window 0 of the pooled 1280-d vector (`avgpool`) and of the
# flattened maps, which keep positions. One picture is one anecdote, and a cosine means little
# without a reference in the same space; so we repeat the shifts on four pictures and also compute,
# in each space, the mean cosine between windows of *different* pictures. The number to compare
# across spaces is the **fraction of the way to a different picture** that a 32 px shift travels,
# $(1 - \cos_{shift}) / (1 - \cos_{different})$: 0 means the shift changes nothing, 1 means a
# shifted picture looks as different as another picture.

# %%
def cos_to_first(f: torch.Tensor) -> torch.Tensor:
    v = f.flatten(1).double()
    return F.cosine_similarity(v, v[:1])


def windows(name: str, ks: list[int]) -> torch.Tensor:
    """224×224 windows of picture ``name`` (resized to height 224), moved right by each k px."""
    p = TF.resize(fl.load_image(name), 224, interpolation=TF.InterpolationMode.BICUBIC, antialias=True)
    st = TF.normalize(TF.pil_to_tensor(p).float() / 255, prep.mean, prep.std)
    c = (st.shape[-1] - 256) // 2
    return torch.stack([st[:, :, c + k:c + k + 224] for k in ks])


cos = {"GAP vector (avgpool)": cos_to_first(feats["avgpool"]),
       "flattened head map": cos_to_first(feats["head"]),
       "flattened block3 map": cos_to_first(feats["block3"])}
spaces = {"GAP vector (avgpool)": "avgpool", "flattened head map": "head", "flattened block3 map": "block3"}
others = ["coffee", "rocket", "china"]                                  # chelsea's windows are above
few = [0, 8, 16, 32]
more = fl.extract(model, torch.cat([windows(n, few) for n in others]), list(set(spaces.values())))
per_pic = {name: [feats[layer][few]] + [more[layer][4 * i:4 * i + 4].float().cpu() for i in range(3)]
           for name, layer in spaces.items()}                          # name -> 4 pictures × (4 shifts, ...)

# %%
# NBVAL_CHECK_OUTPUT
boot = np.random.default_rng(0)
travelled = {}
print(f"{'':22s} cosine at shift 8 / 16 / 32 px      different    fraction of the way")
print(f"{'':22s} (mean ± sd over 4 pictures)         pictures     at 32 px")
for name, fs in per_pic.items():
    c = np.array([cos_to_first(f).numpy() for f in fs])                # (4 pictures, 4 shifts)
    zero = torch.stack([f[0].flatten().double() for f in fs])
    cd = np.mean([F.cosine_similarity(zero[i], zero[j], dim=0).item() for i in range(4) for j in range(i + 1, 4)])
    travelled[name] = (1 - c[:, 3]) / (1 - cd)
    print(f"{name:22} " + " / ".join(f"{c[:, j].mean():.2f}±{c[:, j].std():.2f}" for j in (1, 2, 3))
          + f"   {cd:8.2f}    {travelled[name].mean():.2f} ± {travelled[name].std():.2f}")
d = travelled["flattened head map"] - travelled["GAP vector (avgpool)"]
lo, hi = np.percentile([boot.choice(d, 4).mean() for _ in range(2000)], [2.5, 97.5])
verdict = "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"
print(f"\nGAP vs flattened head map, fraction of the way (flattened - GAP): {d.mean():+.2f} "
      f"(95 % interval {lo:+.2f} to {hi:+.2f}) -> invariance of GAP: {verdict}")

# %% [markdown]
# The table answers the question in each space's own units. A 32 px shift moves the GAP vector only
# a small fraction of the way to another picture; the flattened maps travel much further — for
# `block3`, whose units are only 8 px apart, most of the way. The verdict line compares GAP with
# the flattened head map over the four pictures: the interval of the difference lies above zero,
# so GAP's invariance is **better**. The interval is narrow because the four pictures agree closely
# (the spreads in the last column), but four pictures are few: a bootstrap over four values is a
# rough interval.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for layer in eq_layers:
    axes[0].plot(shifts, errors[layer], ".-", label=f"{layer} (S = {rfs[layer].stride[1]})")
axes[0].set_xlabel("shift k (px)"), axes[0].set_ylabel("relative error after moving by round(k/S)")
axes[0].set_title("equivariance: exact only at multiples of the stride", fontsize=9)
axes[0].legend(fontsize=7)
for name, c in cos.items():
    axes[1].plot(shifts, c.numpy(), ".-", label=name)
axes[1].set_xlabel("shift k (px)"), axes[1].set_ylabel("cosine to shift 0")
axes[1].set_title("invariance: pooled vs flattened features", fontsize=9)
axes[1].legend(fontsize=7)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Pitfalls
#
# - **The theoretical field is an upper bound.** What a unit actually uses is the effective field,
#   a fraction of it (ratio measured above). Don't read "RF ≥ image" as "this unit looks at the
#   whole image evenly".
# - **Deep fields overflow the image**, so every deep unit also sees zero padding: border units and
#   centre units are not computed alike (see `fully_inside()` above).
# - **Strides break exact equivariance.** Only shifts by multiples of the cumulative stride move
#   the map exactly; global pooling makes features only *approximately* invariant.
# - **Dilation leaves holes.** The field is the bounding box; the pixels that really count can be
#   sparse:

# %%
# NBVAL_CHECK_OUTPUT
dilated = nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, 3, dilation=2)).eval()
rf = fl.receptive_field(dilated, "1", 21)
emp = fl.empirical_receptive_field(dilated, "1", 21)
x0, y0, x1, y1 = emp.box
print(rf, "| pixels of the box that reach the unit:",
      f"{(emp.gradient[y0:y1, x0:x1] > 0).double().mean():.2f}")

# %% [markdown]
# - **A list of layers is not a network.** The recursion along one path misses branches (ResNet,
#   Inception); featlab follows the real forward pass instead.
# - **"Same" padding differs between frameworks.** PyTorch layers pad both sides equally
#   (`padding=k // 2`, e.g. ResNet's 7×7 stem); TensorFlow-style "same" with stride 2 — used by
#   EfficientNet-Lite0's stem — computes the padding from the input size and, for an even input,
#   pads only right and bottom, so the effective padding and the field of unit (0, 0) change with
#   the input size:

# %%
# NBVAL_CHECK_OUTPUT
print("resnet18 conv1:", fl.receptive_field(resnet18, "conv1"))
print("lite0 stem    :", fl.receptive_field(model, "stem"), "box (x0, y0, x1, y1) of unit (0, 0):",
      fl.receptive_field(model, "stem").box(0, 0))
print("lite0 stem at 225 px:", fl.receptive_field(model, "stem", input_size=225))

# %% [markdown]
# - **The input size matters** whenever padding is computed at run time (above) or pooling is
#   adaptive: at 160 px VGG's `AdaptiveAvgPool2d((7, 7))` turns a 5×5 map into 7×7 with
#   overlapping windows, which has no single field (`None` in the table, an error from
#   `fl.receptive_field`).

# %%
# NBVAL_CHECK_OUTPUT
print("vgg16 avgpool at 160 px:", fl.receptive_field_table(vgg, 160)["avgpool"])

# %% [markdown]
# ## Exercise
#
# Implement the recursion and the box of a unit yourself in
# [`exercises/02_receptive_fields.ipynb`](../exercises/02_receptive_fields.ipynb); the check cells
# compare your functions with `fl.receptive_field` on random layer stacks.
