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
# # 13 — Debugging feature pipelines
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - read "mat1 and mat2 shapes cannot be multiplied" and find its cause with `fl.describe`,
#   which lists every layer's output shape (N, C, H, W) and parameter count;
# - run a six-point checklist — input size, pooling/flatten, channel count, normalisation, eval
#   mode, device/dtype — each item shown failing and fixed;
# - feed single-channel (grayscale, medical) pictures to an RGB network *exactly*, by summing the
#   first convolution's weights over R, G, B, and measure what the shortcuts cost;
# - find three bugs that raise no error, by measuring them: a hook left registered, features kept
#   in a list with their graph, `model.train()` left on during extraction.
#
# **Prerequisites:** `01_convolution_math` (output sizes), `05_feature_maps` (hooks, `fl.Capture`),
# `03_reshape_permute` (silent layout bugs). **Run time:** about 30 s on a 2-core CPU.
#
# Most bugs in a feature pipeline are shape bugs that PyTorch reports far from their cause, or
# no-error bugs that only show as worse numbers. Two formulas explain most shape errors. A
# convolution or pooling layer with kernel $k$, stride $s$, padding $p$, dilation $d$ maps a side
# of $n$ pixels to
#
# $$n_\text{out} = \left\lfloor \frac{n + 2p - d(k-1) - 1}{s} \right\rfloor + 1,$$
#
# and `nn.Linear(D, K)` after `flatten` needs $D = C \cdot H \cdot W$ of the map it receives —
# so a head built for one input size breaks at every other one, unless the map is pooled to
# $C \cdot 1 \cdot 1$ first. `fl.describe(model, input_size=(3, 224, 224))` prints those shapes.

# %%
# %matplotlib inline
import copy
import time
import weakref

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import rgb2gray
from torch import nn

import featlab as fl
from featlab.models import in_channels, model_device

t0 = time.time()
torch.manual_seed(0)
plt.rcParams["figure.dpi"] = 72
model = fl.load_model("efficientnet_lite0")           # eval mode, on fl.device()
prep = fl.preprocess_for(model)
dev = model_device(model)
names = list(fl.sample_images())                       # 12 pictures from skimage / scikit-learn
x12 = prep(names).to(dev)                              # (12, 3, 224, 224), normalised
labels = fl.imagenet_labels()


@torch.inference_mode()
def features_and_logits(m, x):
    """Pooled head features (N, 1280) and logits (N, 1000) of one forward pass."""
    with fl.Capture(m, ["avgpool"]) as cap:
        logits = m(x)
    return cap.outputs["avgpool"], logits


feats_ref, logits_ref = features_and_logits(model, x12)
top1_ref = logits_ref.argmax(1)
print("pictures:", ", ".join(names))
print("reference: pooled features", tuple(feats_ref.shape), "| logits", tuple(logits_ref.shape))

# %% [markdown]
# ## 1. `fl.describe`: every layer's output shape and parameter count
#
# From scratch it is one forward hook per layer on a dummy batch: record the output's shape and
# `sum(p.numel() for p in layer.parameters())`, and remove the hooks afterwards. `fl.describe`
# does the same for modules at any depth (in call order, in eval mode, without gradients, hooks
# removed even when the pass fails), prints a table and returns the rows.

# %%
def describe_by_hand(m, input_size):
    rows, handles = [], []
    for name, layer in m.named_children():
        def hook(mod, inputs, output, name=name):
            rows.append((name, tuple(output.shape), sum(p.numel() for p in mod.parameters())))
        handles.append(layer.register_forward_hook(hook))
    try:
        with torch.no_grad():
            m(torch.zeros(1, *input_size, device=dev))
    finally:
        for h in handles:
            h.remove()
    return rows


mine = describe_by_hand(model, (3, 224, 224))
rows = fl.describe(model, input_size=(3, 224, 224), depth=1, verbose=False)
assert mine == [(r.path, r.output_shape, r.params) for r in rows]
assert not any(m._forward_hooks for m in model.modules())      # no hook left behind

# %%
# NBVAL_CHECK_OUTPUT
rows = fl.describe(model, input_size=(3, 224, 224), depth=2)
total = sum(p.numel() for p in model.parameters())
print(f"the classifier holds {rows[-1].params / total:.0%} of the parameters")

# %% [markdown]
# The stem halves the picture (112), the seven stages bring it to 7×7 with 320 channels, the
# 1×1 `conv_head` widens to 1280, `global_pool` averages the 7×7 positions away, and the
# classifier's 1280 · 1000 + 1000 = 1,281,000 parameters are more than a quarter of the model.

# %% [markdown]
# ## 2. "mat1 and mat2 shapes cannot be multiplied"
#
# A typical way to get it: a 5-class head on the last stage's map, built at 224 px as
# `Flatten → Linear(320·7·7, 5)`, then fed pictures cropped at 256 px (someone changed the crop).

# %%
backbone = nn.Sequential(model.conv_stem, model.bn1, model.blocks)   # shares the pretrained layers
torch.manual_seed(0)
clf = nn.Sequential(backbone, nn.Flatten(), nn.Linear(320 * 7 * 7, 5)).to(dev).eval()
prep256 = fl.Preprocess(resize=256, crop=256, mean=prep.mean, std=prep.std, interpolation=prep.interpolation)
x256 = prep256(names[:2]).to(dev)
try:
    clf(x256)
except RuntimeError as err:
    print("RuntimeError:", err)

# %% [markdown]
# `mat1` is the input as the Linear layer sees it, (N × features) = 2 × 20480; `mat2` is its weight,
# transposed: (in_features × out_features) = 15680 × 5. The inner numbers must agree. Which layer
# made 20480? `fl.describe` at the size that fails names the layer, its input and the last shapes:

# %%
# NBVAL_CHECK_OUTPUT
try:
    fl.describe(clf, input_size=(3, 256, 256), depth=1)
except RuntimeError as err:
    print("\n".join(str(err).splitlines()[:2]))

# %%
# NBVAL_CHECK_OUTPUT
ok = fl.describe(clf, input_size=(3, 224, 224), depth=1)
C, H, W = ok[0].output_shape[1:]
C2, H2, W2 = fl.describe(backbone, input_size=(3, 256, 256), depth=1, verbose=False)[-1].output_shape[1:]
print(f"in_features = C·H·W: at 224 px {C}·{H}·{W} = {C * H * W}; at 256 px {C2}·{H2}·{W2} = {C2 * H2 * W2}")

# %% [markdown]
# ## 3. The checklist, each item failing and fixed
#
# **(1) Input size.** Fix: preprocess with the pipeline the head was built for (`fl.preprocess`
# gives 224×224), or make the head size-independent (item 2).

# %%
# NBVAL_CHECK_OUTPUT
print("fixed:", tuple(clf(prep(names[:2]).to(dev)).shape))

# %% [markdown]
# **(2) Pooling / flatten.** `nn.Linear` acts on the *last* dimension only; on an unpooled map it
# multiplies along W (7), and after `Flatten` without pooling it wants C·H·W. Fix: global average
# pooling first, then `Linear(C, K)` — which then works at any input size.

# %%
torch.manual_seed(0)
for head in [nn.Linear(320, 5), nn.Sequential(nn.Flatten(), nn.Linear(320, 5))]:
    try:
        nn.Sequential(backbone, head).to(dev)(x12[:2])
    except RuntimeError as err:
        print("RuntimeError:", err)
gap_clf = nn.Sequential(backbone, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(320, 5)).to(dev).eval()

# %%
# NBVAL_CHECK_OUTPUT
for size in (224, 256, 320):
    x = fl.Preprocess(resize=size, crop=size, mean=prep.mean, std=prep.std)(names[:2]).to(dev)
    print(f"fixed, {size} px: logits {tuple(gap_clf(x).shape)}")

# %% [markdown]
# **(3) Channel count.** A grayscale picture as a 1-channel tensor, or an RGBA one with 4.
# Fix: `fl.load_image` (used by `fl.preprocess`) converts every picture to RGB; for real
# single-channel data, section 4 changes the first layer instead.

# %%
gray1 = x12[6:7, :1]                                    # 'camera': (1, 1, 224, 224)
for bad in [gray1, torch.cat([x12[:1], torch.ones_like(gray1)], 1)]:
    try:
        model(bad)
    except RuntimeError as err:
        print(f"{tuple(bad.shape)}: RuntimeError:", str(err).split(", but got")[0])
try:
    fl.describe(model, input_size=(1, 224, 224))
except ValueError as err:
    print("fl.describe:", err)

# %%
# NBVAL_CHECK_OUTPUT
print("fixed: camera as RGB", tuple(x12[6:7].shape), "-> top-1:", labels[model(x12[6:7]).argmax().item()])

# %% [markdown]
# **(4) Normalisation.** No error at all — just other features. Lite0 expects $(x - 0.5)/0.5$;
# we feed pixels in [0, 1] (no `Normalize`), ImageNet's mean/std (the torchvision habit), and
# 0–255 values. Measured on the 12 pictures against the right preprocessing: cosine of the
# pooled features (mean over the pictures, with a 95 % bootstrap interval over the pictures) and
# top-1 agreement. A quick symptom check is the batch's mean and std, and the share of values
# outside [−1, 1], the range the right preprocessing gives.

# %%
# NBVAL_CHECK_OUTPUT
boot = np.random.default_rng(0)


def interval(v, n=2000):
    """95 % bootstrap interval of the mean of v (resampling its entries, e.g. the 12 pictures)."""
    v = np.asarray(v)
    return np.percentile(v[boot.integers(0, len(v), (n, len(v)))].mean(1), [2.5, 97.5])


def verdict(diffs):
    lo, hi = interval(diffs)
    return f"{np.mean(diffs):+.3f} [{lo:+.3f}, {hi:+.3f}] -> " + ("better" if lo > 0 else "worse" if hi < 0 else "no clear difference")


pixels = prep.denormalize(x12)                                        # back to [0, 1]
imagenet = (pixels - torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)) \
    / torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)
fed = {"right: (x - 0.5) / 0.5": x12, "[0, 1], no Normalize": pixels,
       "ImageNet mean/std": imagenet, "0-255, no Normalize": pixels * 255}
norm_cos, norm_agree = {}, {}
for what, x in fed.items():
    f, lg = (feats_ref, logits_ref) if x is x12 else features_and_logits(model, x)
    norm_cos[what] = F.cosine_similarity(f, feats_ref).cpu().numpy()
    norm_agree[what] = (lg.argmax(1) == top1_ref).sum().item()
    lo, hi = interval(norm_cos[what])
    print(f"{what:24s} batch mean {x.mean().item():7.2f} std {x.std().item():6.2f} outside [-1, 1] "
          f"{(x.abs() > 1).float().mean().item():4.0%} | feature cosine {norm_cos[what].mean():.3f} "
          f"[{lo:.3f}, {hi:.3f}] | top-1 agreement {norm_agree[what]}/12")
print("ImageNet mean/std - [0, 1] no Normalize, cosine:",
      verdict(norm_cos["ImageNet mean/std"] - norm_cos["[0, 1], no Normalize"]))

# %% [markdown]
# What does the network see? Each bug feeds a tensor that the network reads as if it had been
# made by $(x - 0.5)/0.5$; undoing *that* ($t \cdot 0.5 + 0.5$, clipped to [0, 1]) shows the
# picture it effectively receives. Pixels in [0, 1] land in the upper half of its range: a
# washed-out, too-bright picture. ImageNet's mean/std is close in brightness but stretches the
# contrast about twofold and shifts the colours a little (its three means and stds differ). 0–255
# is almost all clipped white, with what is left far outside anything seen in training. Every
# bug lowers the feature cosine (the intervals above exclude 1). The ImageNet habit is no safer
# than forgetting `Normalize` altogether: the paired verdict on the last line is **worse**.

# %%
fig, axes = plt.subplots(1, 5, figsize=(13, 2.8), gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.6]})
for ax, (what, x) in zip(axes, fed.items()):
    ax.imshow(prep.denormalize(x[:1]).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy())
    ax.set_title(f"{what}\ncosine {norm_cos[what][0]:.2f}", fontsize=9); ax.set_xticks([]); ax.set_yticks([])
for k, (what, c) in enumerate(norm_cos.items()):
    lo, hi = interval(c)
    axes[4].errorbar([c.mean()], [k], xerr=[[c.mean() - lo], [hi - c.mean()]], fmt="o", capsize=3)
    axes[4].plot(c, np.full(len(c), k) + 0.15, "|", color="0.5")
axes[4].set_yticks(range(len(fed))); axes[4].set_yticklabels(list(fed), fontsize=8); axes[4].invert_yaxis()
axes[4].set(xlabel="feature cosine to the right input (12 pictures)", xlim=(0, 1.02))
fig.suptitle("what the network sees under each normalisation (chelsea), and what it costs", fontsize=10)
plt.tight_layout();

# %% [markdown]
# **(5) Eval mode.** In train mode BatchNorm normalises with the statistics of the *current
# batch*, so a picture's features depend on which other pictures share its batch (and every
# pass moves the running statistics — section 5 measures that). Measured on a copy of the model:
# picture 0 (`chelsea`) in two different batches of three.

# %%
# NBVAL_CHECK_OUTPUT
trained = copy.deepcopy(model).train()
with torch.no_grad():
    a = trained.forward_features(x12[[0, 1, 2]]).mean((2, 3))[0]
    b = trained.forward_features(x12[[0, 7, 8]]).mean((2, 3))[0]
print(f"train mode: chelsea's feature in two batches, cosine {F.cosine_similarity(a, b, 0).item():.3f}; "
      f"vs eval mode {F.cosine_similarity(a, feats_ref[0], 0).item():.3f}")
trained.load_state_dict(model.state_dict())                          # undo the drifted statistics
trained.eval()
fa, _ = features_and_logits(trained, x12[[0, 1, 2]])
fb, _ = features_and_logits(trained, x12[[0, 7, 8]])
print(f"fixed (eval): cosine {F.cosine_similarity(fa[0], fb[0], 0).item():.3f}, "
      f"equal to the reference: {torch.allclose(fa[0], feats_ref[0], atol=1e-4)}")
del trained

# %% [markdown]
# **(6) Device and dtype.** A NumPy float64 array, raw uint8 pixels, or a CPU tensor into a GPU
# model. Fix: `.to(device, torch.float32)` on the model's device — or `fl.preprocess`, which does it.

# %%
raw = np.array(fl.load_image("chelsea").resize((224, 224)))            # (224, 224, 3) uint8
as64 = torch.from_numpy(raw / 127.5 - 1.0).permute(2, 0, 1)[None]      # float64!
for what, x in [("float64", as64), ("uint8", torch.from_numpy(raw).permute(2, 0, 1)[None])]:
    try:
        model(x.to(dev))
    except RuntimeError as err:
        print(f"{what}: RuntimeError:", err)
if dev.type != "cpu":
    try:
        model(as64.float())
    except RuntimeError as err:
        print("CPU tensor, GPU model: RuntimeError:", err)
else:
    print("(the model is on the CPU, so this case cannot be shown: a CPU tensor fed to a GPU model raises "
          "a RuntimeError that the input and the weights are on different devices)")

# %%
# NBVAL_CHECK_OUTPUT
p = next(model.parameters())
fixed = as64.to(p.device, p.dtype)
print("fixed:", fixed.dtype, "| top-1:", labels[model(fixed).argmax().item()])

# %% [markdown]
# The whole checklist fits in one line to print before extracting:

# %%
def preflight(m, x):
    p = next(m.parameters())
    print(f"shape {tuple(x.shape)} (first conv takes C={in_channels(m)}) | dtype {x.dtype} "
          f"(model {p.dtype}) | same device {x.device == p.device} | mean {x.float().mean():.2f} "
          f"std {x.float().std():.2f} | model.training {m.training}")


preflight(model, as64)
preflight(model, x12)

# %% [markdown]
# ## 4. Grayscale and other single-channel input
#
# X-rays, CT slices, microscopy and old photographs have one channel; the pretrained network
# wants three. Repeating the channel three times works but triples the first layer's input.
# The same result comes from the one-channel input and a first convolution whose kernel is the
# **sum** of the RGB kernels, because convolution is linear in the input:
#
# $$\sum_{c \in \{R,G,B\}} w_c * g \;=\; \Big(\sum_c w_c\Big) * g .$$
#
# (Exact only because every channel is normalised the same way — Lite0 uses 0.5/0.5; see the
# pitfalls.) Lite0's stem is timm's `Conv2dSame` (TensorFlow "same" padding, computed per input
# size), so we `deepcopy` the layer and change its weight, instead of building a new `nn.Conv2d`.

# %%
def gray_first_conv(conv):
    gray = copy.deepcopy(conv)
    gray.weight = nn.Parameter(conv.weight.detach().sum(dim=1, keepdim=True))
    gray.in_channels = 1
    return gray


g = torch.randn(2, 1, 64, 80, device=dev)
conv1 = gray_first_conv(model.conv_stem)
assert torch.allclose(conv1(g), model.conv_stem(g.repeat(1, 3, 1, 1)), atol=1e-5)
gray_model = copy.deepcopy(model)
gray_model.conv_stem = conv1
print("stem:", model.conv_stem, "->", gray_model.conv_stem)
print("describe accepts (1, 224, 224) now:", fl.describe(gray_model, (1, 224, 224), verbose=False)[0])

# %% [markdown]
# Now the 12 pictures as grayscale (`skimage.color.rgb2gray`; camera, brick, grass, gravel, coins
# and horse are grayscale already). The reference is the original model fed the gray channel
# three times. We compare four ways to build the one-channel model — summed weights, **averaged**
# weights (a common recipe), the red kernel only, and a freshly initialised first layer (what
# `nn.Conv2d(1, 32, 3, stride=2)` gives; three random draws) — by the cosine of the pooled
# features (mean over the 12 pictures, 95 % bootstrap interval over the pictures) and top-1
# agreement, and compare neighbours by their paired differences. For scale: how far the gray
# picture is from the colour one, in the same features.

# %%
gray_pics = [(rgb2gray(np.asarray(fl.load_image(n))) * 255).round().astype(np.uint8) for n in names]
x3 = prep(gray_pics).to(dev)                                    # (12, 3, 224, 224), equal channels
assert torch.equal(x3[:, 0], x3[:, 1]) and torch.equal(x3[:, 0], x3[:, 2])
x1 = x3[:, :1]                                                  # (12, 1, 224, 224)
f3, l3 = features_and_logits(model, x3)


def with_stem(weight):
    m = copy.deepcopy(model)
    m.conv_stem = copy.deepcopy(model.conv_stem)
    m.conv_stem.weight = nn.Parameter(weight)
    m.conv_stem.in_channels = weight.shape[1]
    return m


w = model.conv_stem.weight.detach()
SEEDS = [0, 1, 2]
fresh = []
for seed in SEEDS:                                              # three draws of PyTorch's default init
    torch.manual_seed(seed)
    fresh.append(nn.Conv2d(1, 32, 3, stride=2, bias=False).weight.detach().to(dev))
variants = {"summed over RGB": [w.sum(1, keepdim=True)], "averaged over RGB": [w.mean(1, keepdim=True)],
            "red kernel only": [w[:, :1]], "re-initialised": fresh}
gray_cos, gray_agree, gray_top1 = {}, {}, {}
for what, weights in variants.items():
    cos, agree = [], []
    for weight in weights:
        f1, l1 = features_and_logits(with_stem(weight), x1)
        cos.append(F.cosine_similarity(f1, f3).cpu().numpy())
        agree.append((l1.argmax(1) == l3.argmax(1)).sum().item())
        if len(cos) == 1:
            gray_top1[what] = [labels[i] for i in l1.argmax(1).tolist()]
    gray_cos[what], gray_agree[what] = np.stack(cos), agree            # (draws, 12), per draw
colour = [n for n in names if n not in ("camera", "brick", "grass", "gravel", "coins", "horse")]
idx = [names.index(n) for n in colour]
gray_vs_colour = F.cosine_similarity(f3[idx], feats_ref[idx]).cpu().numpy()
gray_top1_kept = (l3[idx].argmax(1) == top1_ref[idx]).sum().item()

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'one-channel first layer':20s}  mean cos [95 % interval]  min cos  top-1 agreement with 3x repeated input")
for what, c in gray_cos.items():
    lo, hi = interval(c.mean(0))
    draws = f"   (3 draws: {', '.join(f'{v:.3f}' for v in c.mean(1))})" if len(c) > 1 else ""
    print(f"{what:20s}  {c.mean():8.3f} [{lo:.3f}, {hi:.3f}]  {c.min():7.3f}  "
          f"{', '.join(f'{a}/12' for a in gray_agree[what])}{draws}")
lo, hi = interval(gray_vs_colour)
print(f"baseline: gray vs colour picture, {len(colour)} colour pictures: cosine {gray_vs_colour.mean():.3f} "
      f"[{lo:.3f}, {hi:.3f}], top-1 kept {gray_top1_kept}/{len(colour)}")
for what in ("summed over RGB", "re-initialised"):
    print(f"{what}, top-1 of {', '.join(names[:4])}: {', '.join(gray_top1[what][:4])}")
print("paired over the 12 pictures, cosine difference [95 % interval] -> verdict:")
for a, b in [("averaged over RGB", "summed over RGB"), ("red kernel only", "averaged over RGB"),
             ("re-initialised", "red kernel only")]:
    print(f"  {a} - {b}: {verdict(gray_cos[a].mean(0) - gray_cos[b].mean(0))}")
print(f"  re-initialised - baseline (gray vs colour), same {len(colour)} pictures: "
      f"{verdict(gray_cos['re-initialised'].mean(0)[idx] - gray_vs_colour)}")

# %%
fig, ax = plt.subplots(figsize=(6.5, 2.6))
for k, (what, c) in enumerate(gray_cos.items()):
    lo, hi = interval(c.mean(0))
    ax.errorbar([c.mean()], [k], xerr=[[c.mean() - lo], [hi - c.mean()]], fmt="o", capsize=3, color="C0")
    for d in c:
        ax.plot(d, np.full(len(d), k) + 0.18, "|", color="0.5")
ax.axvspan(*interval(gray_vs_colour), color="C1", alpha=0.25, label="gray vs colour picture (95 % interval)")
ax.set_yticks(range(len(gray_cos))); ax.set_yticklabels(list(gray_cos), fontsize=8); ax.invert_yaxis()
ax.set(xlabel="feature cosine to the 3× repeated gray input", xlim=(0, 1.02))
ax.legend(fontsize=8, loc="upper left"); plt.tight_layout();

# %% [markdown]
# Summing is exact: same features, same predictions. The printed verdicts rank the shortcuts:
# averaging is **worse** than summing — it divides the stem's output by 3, and the BatchNorm
# after it uses fixed running statistics, so the shrink travels on; the red kernel alone is
# **worse** again — it ignores what the green and blue kernels add; a re-initialised first layer
# is **worse** still, on all three random draws: it throws away what the network learned about
# edges and makes every later layer see inputs it was never trained on. Its features are further
# from the reference than the *colour* picture's are (verdict **worse** against that baseline).
# Re-initialise only if you then fine-tune.
#
# ## 5. Three bugs without an error message, measured
#
# **A hook left registered.** The helper below registers a forward hook on every call and drops
# the handle. Each call adds one more hook, so a forward pass stores the output once *per call so
# far*: duplicated captures and growing memory. (On a throwaway copy of the model.)

# %%
leaky_model = copy.deepcopy(model)
store = []


def leaky_features(m, x):
    m.blocks[5].register_forward_hook(lambda mod, inp, out: store.append(out))   # handle dropped!
    with torch.inference_mode():
        m(x)
    return store[-1]


def fixed_features(m, x):
    with fl.Capture(m, ["block6"]) as cap, torch.inference_mode():             # removes its hook
        m(x)
    return cap.outputs["block6"]


def nbytes(tensors):
    return sum(t.element_size() * t.nelement() for t in tensors)


hook_growth = {"leaky": [], "fixed": []}
kept = []
for call in range(1, 7):
    leaky_features(leaky_model, x12[:1])
    kept.append(fixed_features(model, x12[:1]))
    hook_growth["leaky"].append((len(store), len(leaky_model.blocks[5]._forward_hooks), nbytes(store)))
    hook_growth["fixed"].append((len(kept), len(model.blocks[5]._forward_hooks), nbytes(kept)))

# %%
# NBVAL_CHECK_OUTPUT
for k in range(6):
    (n_l, h_l, b_l), (n_f, h_f, b_f) = hook_growth["leaky"][k], hook_growth["fixed"][k]
    print(f"call {k + 1}: leaky {n_l:2d} stored tensors, {h_l} hooks, {b_l / 1e6:5.2f} MB | "
          f"fixed {n_f} stored, {h_f} hooks, {b_f / 1e6:4.2f} MB")
store.clear()
kept.clear()
del leaky_model

# %% [markdown]
# After $k$ calls the leaky version has $k$ hooks and has stored $1 + 2 + \dots + k = k(k+1)/2$
# tensors. The fix is a context manager (`fl.Capture`, or `try/finally: handle.remove()`).
#
# **Features kept in a list, with their graph, on the device.** Extracting without
# `torch.no_grad`/`inference_mode` builds an autograd graph, and keeping the output keeps that
# graph — every intermediate activation it saved for a backward pass that never comes. On a GPU
# this is the classic out-of-memory after a few hundred batches. We measure what stays alive:
# the kept tensors' bytes plus the bytes autograd saved (tracked with
# `torch.autograd.graph.saved_tensors_hooks` and weak references), batch after batch, against the
# fix: `inference_mode`, pool, `.cpu()`.

# %%
always_alive = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), x12]}


def alive_bytes(refs):
    """Bytes of the distinct storages still alive among weak references to saved tensors,
    leaving out the weights, buffers and input batch (alive anyway)."""
    seen = set()
    for r in refs:
        t = r()
        if t is not None:
            seen.add((t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()))
    return sum(n for ptr, n in seen if ptr not in always_alive)


def run(leaky, batches=3):
    kept, saved, out = [], [], []
    gpu0 = torch.cuda.memory_allocated() if dev.type == "cuda" else 0

    def pack(t):
        saved.append(weakref.ref(t))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        for k in range(batches):
            x = x12[2 * k:2 * k + 2]
            if leaky:
                with fl.Capture(model, ["head"]) as cap:
                    model(x)
                kept.append(cap.outputs["head"])                       # (2, 1280, 7, 7), with grad_fn
            else:
                with fl.Capture(model, ["head"]) as cap, torch.inference_mode():
                    model(x)
                kept.append(cap.outputs["head"].mean((2, 3)).cpu())   # (2, 1280) on the CPU
            gpu = (torch.cuda.memory_allocated() - gpu0) / 1e6 if dev.type == "cuda" else float("nan")
            out.append((nbytes(kept) / 1e6, alive_bytes(saved) / 1e6, gpu))
    return out, kept


growth = {}
for leaky in (True, False):
    growth[leaky], kept = run(leaky)
    print(f"{'leaky' if leaky else 'fixed'}: kept {kept[0].shape}, requires_grad {kept[0].requires_grad}, "
          f"on {kept[0].device.type}")
    del kept

# %%
# NBVAL_CHECK_OUTPUT
for k in range(3):
    (kl, sl, _), (kf, sf, _) = growth[True][k], growth[False][k]
    print(f"after batch {k + 1}: leaky {kl:5.2f} MB features + {sl:6.1f} MB saved by autograd | "
          f"fixed {kf * 1e3:5.1f} kB features + {sf:.1f} MB")

# %%
if dev.type == "cuda":
    for k in range(3):
        print(f"torch.cuda.memory_allocated growth after batch {k + 1}: leaky {growth[True][k][2]:7.1f} MB, "
              f"fixed {growth[False][k][2]:5.1f} MB")

# %% [markdown]
# **`model.train()` left on during extraction.** Nothing is trained — no optimiser, and all of it
# under `torch.no_grad()` — yet every BatchNorm layer in train mode normalises with the current
# batch's statistics and updates its running statistics on every forward pass,
# $\hat\mu \leftarrow (1 - 0.1)\,\hat\mu + 0.1\,\mu_\text{batch}$ (the same for the variance).
# We run four batches of three pictures through a copy in train mode, check the update rule by
# hand, and measure: the features against eval mode, how far the 49 BatchNorm layers' running
# statistics drift (the stem's `running_mean`, and the median over all layers), and what is left
# when we switch back to eval — the damage stays in the model.

# %%
drifty = copy.deepcopy(model).train()
bns = {n: m for n, m in drifty.named_modules() if isinstance(m, nn.BatchNorm2d)}
start = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in bns.items()}


def rel_change(now, before):
    return ((now - before).norm() / before.norm()).item()


drift, train_cos = {"stem running_mean": [], "median running_mean": [], "median running_var": []}, []
with torch.no_grad():
    for k in range(4):
        x = x12[3 * k:3 * k + 3]
        f_train = drifty.forward_features(x).mean((2, 3))
        if k == 0:      # the update rule, by hand, for the stem's BatchNorm
            mu = model.conv_stem(x).mean((0, 2, 3))
            want = (1 - drifty.bn1.momentum) * start["bn1"][0] + drifty.bn1.momentum * mu
            assert torch.allclose(drifty.bn1.running_mean, want, atol=1e-5)
        train_cos.append(F.cosine_similarity(f_train, feats_ref[3 * k:3 * k + 3]))
        drift["stem running_mean"].append(rel_change(drifty.bn1.running_mean, start["bn1"][0]))
        drift["median running_mean"].append(float(np.median(
            [rel_change(m.running_mean, start[n][0]) for n, m in bns.items()])))
        drift["median running_var"].append(float(np.median(
            [rel_change(m.running_var, start[n][1]) for n, m in bns.items()])))
drifty.eval()
f_after, l_after = features_and_logits(drifty, x12)
train_cos = torch.cat(train_cos)

# %%
# NBVAL_CHECK_OUTPUT
print(f"train mode vs eval mode, pooled features of the 12 pictures: cosine mean {train_cos.mean():.3f}, "
      f"min {train_cos.min():.3f}")
print(f"relative change of the running statistics ({len(bns)} BatchNorm layers) after batches 1-4:")
for name, d in drift.items():
    print(f"  {name:20s} " + ", ".join(f"{v:.3f}" for v in d))
after = F.cosine_similarity(f_after, feats_ref)
print(f"back in eval mode afterwards: cosine to the original {after.mean():.3f} (min {after.min():.3f}), "
      f"top-1 agreement {(l_after.argmax(1) == top1_ref).sum().item()}/12")
drifty.load_state_dict(model.state_dict())
f_fixed, _ = features_and_logits(drifty, x12[:3])
print("fixed (weights and running statistics reloaded, eval mode): features equal:",
      torch.allclose(f_fixed, feats_ref[:3], atol=1e-4))
del drifty

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
calls = np.arange(1, 7)
axes[0].plot(calls, [r[0] for r in hook_growth["leaky"]], "o-", label="hook left registered")
axes[0].plot(calls, [r[0] for r in hook_growth["fixed"]], "s-", label="fl.Capture")
axes[0].set(xlabel="calls", ylabel="stored tensors", title="a hook left registered")
axes[1].plot([1, 2, 3], [a + b for a, b, _ in growth[True]], "o-", label="kept with graph")
axes[1].plot([1, 2, 3], [a + b for a, b, _ in growth[False]], "s-", label="inference_mode, pooled, .cpu()")
axes[1].set(xlabel="batches", ylabel="MB kept alive", title="features kept in a list")
for name, d in drift.items():
    axes[2].plot([1, 2, 3, 4], d, "o-", label=name)
axes[2].set(xlabel="batches in train mode", ylabel="relative change", title="running statistics drift")
for ax in axes:
    ax.legend(fontsize=8)
plt.tight_layout()

# %% [markdown]
# ## Pitfalls
#
# - **Read the two numbers of "mat1 and mat2".** The first matrix is the input as the Linear
#   layer sees it (N × D), the second its weight transposed (in_features × out_features);
#   `fl.describe` at the failing size names the layer and the shape that arrived.
# - **Linear on a 4-D map runs when W happens to equal in_features** — then it silently mixes
#   columns instead of channels. Pool, then flatten, then Linear.
# - **Shapes that work are not proof.** Wrong normalisation, train mode and a re-initialised
#   first layer raise nothing; compare features with a reference (cosine) or print `preflight`.
# - **Summing the RGB kernels is exact only with one mean/std for all channels.** With ImageNet's
#   per-channel mean/std, fold them into the layer first ($w_c / \sigma_c$, and a bias
#   $-\sum_c w_c\,\mu_c/\sigma_c$ summed over the kernel) — and even then the zero padding at the
#   border differs. Never average the kernels: BatchNorm after the layer does not rescale.
# - **`torch.no_grad()` does not stop BatchNorm from updating** its running statistics; only eval
#   mode does. Keep `model.eval()` next to `inference_mode()` in every extraction loop, and reload
#   the weights if a train-mode pass already happened.
# - **Hooks outlive the code that registered them.** Keep the handle and remove it in `finally`, or
#   use a context manager (`fl.Capture`, `fl.describe` uses one).
# - **Store what you need, where you need it:** pooled vectors, detached, on the CPU
#   (`.cpu()` also synchronises with the GPU — move a whole batch at once, not row by row).
#
# **Exercise:** `exercises/13_debugging.ipynb` — a one-channel first convolution from an RGB one,
# the output shape of a stack of conv/pool layers without running it, and a parameter count.

# %%
print(f"notebook run time: {time.time() - t0:.0f} s")
