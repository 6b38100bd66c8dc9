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
# # 15 — What does a channel want? Activation maximisation
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - write activation maximisation from scratch: gradient **ascent** on the input picture, the
#   network frozen, the objective one channel's mean activation;
# - see why plain pixel optimisation gives noisy, adversarial-looking pictures, and what the
#   Lucid/Lucent tricks change: a Fourier parameterisation scaled by 1/frequency, colour
#   decorrelation, random jitter/scale/rotation;
# - *measure* it on channels drawn at random, over several random starts: the activation reached,
#   read against the distribution of the same channel's activations on real picture crops (the
#   "dataset view"), and the share of high-frequency energy.
#
# **Prerequisites:** `05_feature_maps` (layers, hooks, `fl.Capture`), `06_grad_cam` (gradients
# with respect to what a layer sees), `07_embeddings_retrieval` (Lite0's block outputs are signed).
# **Run time:** about 30–60 s on a 2-core CPU (pictures are 64×64 px and every optimisation
# takes 32 steps — far fewer than the 512 steps at 224 px that Lucid uses, so the pictures
# are rougher than the published ones; 72 optimisations in all).
#
# A channel of a convolutional layer is often called a detector: its feature map is large where
# its pattern is. For Lite0's block outputs that needs a caveat (notebook 07): a block ends in a
# BatchNorm'd 1×1 *projection* with no ReLU, so a channel is a signed linear read-out of the
# block's features — it can be large for a flat grey picture and negative where "nothing" is, and
# "large" only means "far along this direction". Notebook 05 asked *which pictures* make a
# channel large. Here we ask the network directly: start from a grey picture $x$ and change it,
# by gradient ascent, until channel $c$ of layer $l$ responds as much as it can,
#
# $$x^\* = \arg\max_x \; \frac{1}{HW}\sum_{i,j} A^{l}_{c,i,j}(x), \qquad
# x \leftarrow x + \eta\, \nabla_x \frac{1}{HW}\sum_{i,j} A^{l}_{c,i,j}(x).$$
#
# Only $x$ changes; the weights stay fixed. The catch: the set of pictures is huge, and the
# steepest way up is usually a pattern of high-frequency noise no camera would ever record.

# %%
# %matplotlib inline
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

import featlab as fl
from featlab.visualize import channel_activation, fourier_scale, maximize_activation

t0 = time.time()
plt.rcParams["figure.dpi"] = 72
torch.manual_seed(0)
model = fl.load_model("efficientnet_lite0")
prep = fl.preprocess_for(model)
SIZE, STEPS = 64, 32
LAYERS = ["block2", "block4", "block6"]                      # shallow, middle, deep
SEEDS = [0, 1, 2]                                            # random starts per channel
n_channels = {n: t.shape[1] for n, t in fl.extract(model, torch.zeros(1, 3, SIZE, SIZE), LAYERS).items()}
pick = np.random.default_rng(15)                             # the rule: 3 channels per layer, drawn at random
CHANNELS = {n: sorted(pick.choice(n_channels[n], 3, replace=False).tolist()) for n in LAYERS}

# %%
# NBVAL_CHECK_OUTPUT
print("input normalisation mean/std:", prep.mean, prep.std)
for n in LAYERS:
    print(f"{n}: {n_channels[n]} channels, drawn: {CHANNELS[n]}")


# %% [markdown]
# ## 1. From scratch: gradient ascent on the pixels
#
# The picture is a free tensor $p$ (1, 3, 64, 64), started near zero; the pixels are
# $x = \sigma(p)$ so they stay in [0, 1] (the start is a flat grey, $\sigma(0) = 0.5$),
# normalised as the model expects. Only the layers up to `block4` matter for a `block4` channel,
# so from scratch we run just those (the stem and the first four blocks);
# `fl.maximize_activation` instead hooks the full model with `fl.Capture` and stops the forward
# pass at the layer. The objective is the mean of one channel, and Adam minimises its negative
# (= ascent). The network is in eval mode (batch-norm uses its running statistics) and its
# weights have `requires_grad=False`, so nothing but $p$ gets a gradient.

# %%
def ascend_pixels(upto_layer, channel, size=SIZE, steps=STEPS, lr=0.05, seed=0):
    gen = torch.Generator().manual_seed(seed)
    p = (torch.randn(1, 3, size, size, generator=gen) * 0.01).to(fl.device()).requires_grad_(True)
    mean = torch.tensor(prep.mean, device=p.device).view(1, 3, 1, 1)
    std = torch.tensor(prep.std, device=p.device).view(1, 3, 1, 1)
    opt, history = torch.optim.Adam([p], lr=lr), []
    for _ in range(steps):
        objective = upto_layer((torch.sigmoid(p) - mean) / std)[:, channel].mean()
        history.append(objective.item())
        opt.zero_grad()
        (-objective).backward()
        opt.step()
    return torch.sigmoid(p)[0].detach().cpu(), history

C4 = CHANNELS["block4"][0]
model.eval()
for q in model.parameters():
    q.requires_grad_(False)
upto_block4 = torch.nn.Sequential(model.conv_stem, model.bn1, *model.blocks[:4])  # = alias "block4"
mine, hist_mine = ascend_pixels(upto_block4, C4)
for q in model.parameters():
    q.requires_grad_(True)   # as fl.load_model left them; fl.maximize_activation freezes them itself
ref, hist_ref = maximize_activation(model, "block4", C4, size=SIZE, steps=STEPS, param="pixel",
                                    decorrelate=False, transforms=False)
assert np.allclose(hist_mine, hist_ref, rtol=1e-3, atol=1e-3) and torch.allclose(mine, ref, atol=1e-3)
assert all(q.grad is None for q in model.parameters())

# %%
# NBVAL_CHECK_OUTPUT
print(f"block4 channel {C4}: mean activation {hist_ref[0]:.2f} at the start -> {hist_ref[-1]:.2f} after {STEPS} steps")
print("from scratch == fl.maximize_activation(param='pixel', decorrelate=False, transforms=False): True")

# %% [markdown]
# ## 2. The yardstick: the channel's activations on real pictures
#
# Is that a lot? A single "best real crop" is a weak yardstick: a flat grey picture — the
# starting point of every optimisation — already beats the best photograph for some channels
# (the signed read-out again). So we look at the whole distribution. We cut 128 random crops out
# of the 12 sample pictures (`fl.sample_images()`), resize them to 64×64, and measure the same
# objective on each. Every activation below is then expressed in **crop units**:
#
# $$z(a) = \frac{a - \mathrm{median}_\text{crops}}{\mathrm{std}_\text{crops}},$$
#
# how many crop standard deviations above the typical photograph a picture drives the channel;
# and the optimisation's **gain** is $z(\text{final}) - z(\text{grey start})$, which does not
# depend on where the grey picture happens to land.

# %%
rng = np.random.default_rng(0)
names = list(fl.sample_images())
crops = []
for k in range(128):
    img = np.asarray(fl.load_image(names[k % len(names)]), dtype=np.float32) / 255
    h, w = img.shape[:2]
    side = int(rng.uniform(0.3, 0.7) * min(h, w))
    y0, x0 = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    x1, y1 = x0 + side, y0 + side                               # the crop box (x0, y0, x1, y1), x = column
    crop = torch.from_numpy(img[y0:y1, x0:x1]).permute(2, 0, 1)[None]
    crops.append(F.interpolate(crop, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False)[0])
crops = torch.stack(crops).clamp(0, 1)
grey = torch.full((1, 3, SIZE, SIZE), 0.5)
UNITS = [(n, c) for n in LAYERS for c in CHANNELS[n]]
real = {u: channel_activation(model, u[0], u[1], crops) for u in UNITS}
grey_act = {u: channel_activation(model, u[0], u[1], grey).item() for u in UNITS}


def z(unit, a):
    """Activation(s) a of `unit` in crop units: (a - median of the crops) / std of the crops."""
    r = real[unit]
    return (np.asarray(a) - r.median().item()) / r.std().item()


# %%
# NBVAL_CHECK_OUTPUT
print(f"{len(crops)} crops {tuple(crops.shape[1:])}")
print(f"{'layer':6s} {'ch':>3s} | {'crops: median':>13s} {'std':>6s} {'best':>6s} | {'grey':>6s} "
      f"{'grey percentile':>15s} | {'z(best crop)':>12s} {'z(grey)':>7s}")
for u in UNITS:
    r, g = real[u], grey_act[u]
    print(f"{u[0]:6s} {u[1]:3d} | {r.median():13.2f} {r.std():6.2f} {r.max():6.2f} | {g:6.2f} "
          f"{(r < g).float().mean() * 100:14.0f}% | {z(u, r.max()):12.1f} {z(u, g):7.1f}")
n_above = sum(grey_act[u] > real[u].max() for u in UNITS)
print(f"the grey picture beats every one of the {len(crops)} crops for {n_above} of {len(UNITS)} channels")

# %% [markdown]
# The grey picture is *not* a neutral zero for these channels: its percentile among the crops
# ranges from below the median to the very top (for one channel it beats every crop, last line).
# That is why the optimised pictures below are judged by $z$ and by the gain from the
# grey start, never by a ratio to the best crop.
#
# ## 3. Plain pixels vs the readable recipe, on 9 channels × 3 random starts
#
# For each drawn channel and each seed we run `fl.maximize_activation` twice: plain pixels (as in
# section 1), and the recipe of Lucid/Lucent — `param="fourier"`: the picture's 2-D spectrum is
# the parameter, each frequency multiplied by $1/f$ (`fourier_scale`), so a step changes low
# frequencies much more than high ones; `decorrelate=True`: the three parameter channels are
# mixed through Lucid's fixed ImageNet colour-correlation matrix `COLOR_CORRELATION` (a square
# root of the RGB covariance of ImageNet pixels, copied from Lucid, not re-estimated here), so a
# step moves along natural colour directions (brightness, red–cyan, yellow–blue);
# `transforms=True`: before every step the picture is padded, jittered by a few pixels, scaled
# and rotated a little, so only patterns that survive small shifts are rewarded. The activation
# is always measured on the final picture without transforms, with `channel_activation`. The
# high-frequency share is the share of the picture's (grey-level, mean-removed) spectral energy
# above 0.25 cycles per pixel.

# %%
def high_freq_share(x, cutoff=0.25):
    """Share of the (mean-removed) spectral energy above `cutoff` cycles per pixel."""
    g = x.mean(0) - x.mean()
    power = torch.fft.rfft2(g).abs() ** 2
    f = 1 / fourier_scale(*g.shape)
    return float(power[f > cutoff].sum() / power.sum())


RECIPES = {"pixel": dict(param="pixel", decorrelate=False, transforms=False),
           "fourier": dict(param="fourier", decorrelate=False, transforms=False),
           "fourier+decor": dict(param="fourier", decorrelate=True, transforms=False),
           "recipe": dict()}                                  # fourier + decor + transforms (the defaults)
runs = {}                                                      # (layer, ch, recipe, seed) -> (picture, history, act)


def run(layer, c, recipe, seed):
    if (layer, c, recipe, seed) == ("block4", C4, "pixel", 0):
        img, hist = ref, hist_ref                              # computed in section 1 with these settings
    else:
        img, hist = maximize_activation(model, layer, c, size=SIZE, steps=STEPS, seed=seed, **RECIPES[recipe])
    runs[layer, c, recipe, seed] = (img, hist, channel_activation(model, layer, c, img[None]).item())


t = time.time()
for layer, c in UNITS:
    for seed in SEEDS:
        for recipe in ["pixel", "recipe"]:
            run(layer, c, recipe, seed)
print(f"{len(runs)} optimisations: {time.time() - t:.0f} s")

# %%
# (not compared by nbval: gradient ascent differs in the last digits with the number of CPU threads)
crop_hf = np.array([high_freq_share(x) for x in crops])
hf = {k: high_freq_share(v[0]) for k, v in runs.items()}


def per_run(layer, recipe, what):
    """Values over the 3 channels × 3 seeds of `layer`: what = 'z', 'gain' or 'hf'."""
    out = []
    for c in CHANNELS[layer]:
        for s in SEEDS:
            act = runs[layer, c, recipe, s][2]
            out.append({"z": z((layer, c), act), "gain": z((layer, c), act) - z((layer, c), grey_act[layer, c]),
                        "hf": hf[layer, c, recipe, s]}[what])
    return np.array(out)


print("mean ± sd over 3 channels × 3 seeds")
print(f"{'layer':6s} | {'recipe':6s} | {'z (crop units)':>14s} | {'gain from grey':>14s} | {'high-freq share':>15s}")
for layer in LAYERS:
    for recipe in ["pixel", "recipe"]:
        zz, gg, hh = (per_run(layer, recipe, w) for w in ["z", "gain", "hf"])
        print(f"{layer:6s} | {recipe:6s} | {zz.mean():7.1f} ± {zz.std(ddof=1):4.1f} | {gg.mean():7.1f} ± {gg.std(ddof=1):4.1f} "
              f"| {hh.mean():7.3f} ± {hh.std(ddof=1):5.3f}")
print(f"real crops: high-freq share {crop_hf.mean():.3f} ± {crop_hf.std(ddof=1):.3f}")

# %% [markdown]
# **The verdict.** The unit of the comparison is the channel: for each of the 9 channels we
# average the paired difference *recipe − pixel* over the 3 seeds, then a bootstrap over the
# channels (2000 resamples, seeded) gives a 95 % interval of the mean difference. The verdict is
# "better" or "worse" when the interval excludes 0, else "no clear difference"; for the
# high-frequency share lower is better (closer to a photograph), for the activation higher is.

# %%
# (not compared by nbval: gradient ascent differs in the last digits with the number of CPU threads)
boot = np.random.default_rng(0)


def compare(diffs, lower_is_better, label):
    """diffs: one paired difference per channel. Prints mean, 95 % bootstrap interval and the verdict."""
    diffs = np.asarray(diffs)
    means = diffs[boot.integers(0, len(diffs), (2000, len(diffs)))].mean(1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    if lo > 0 or hi < 0:
        verdict = "better" if (hi < 0) == lower_is_better else "worse"
    else:
        verdict = "no clear difference"
    n_neg = int((diffs < 0).sum())
    print(f"{label}: {diffs.mean():+.3f} [{lo:+.3f}, {hi:+.3f}], lower in {n_neg}/{len(diffs)} channels -> {verdict}")
    return verdict


def diff(a, b, what, units=UNITS, seeds=SEEDS):
    """Per channel, the seed-averaged difference a - b of 'z' or 'hf'."""
    val = {"z": lambda u, r, s: z(u, runs[u[0], u[1], r, s][2]), "hf": lambda u, r, s: hf[u[0], u[1], r, s]}[what]
    return [np.mean([val(u, a, s) - val(u, b, s) for s in seeds]) for u in units]


v_hf = compare(diff("recipe", "pixel", "hf"), True, "recipe - pixel, high-freq share       ")
v_z = compare(diff("recipe", "pixel", "z"), False, "recipe - pixel, activation (crop units)")
recipe_vs_crops = [np.mean([hf[u[0], u[1], "recipe", s] for s in SEEDS]) - crop_hf.mean() for u in UNITS]
v_crops = compare(recipe_vs_crops, True, "recipe - real crops, high-freq share  ")

# %% [markdown]
# Read the two tables: plain pixel ascent drives every channel far beyond the photographs (many
# crop standard deviations), and most of its spectral energy sits above 0.25 cycles per pixel,
# several times the real crops' share — the adversarial-looking noise, a pattern the channel
# responds to that no camera produces. The printed verdicts for the readable recipe against plain
# pixels: a lower high-frequency share, verdict **better**; a lower activation in the same 32
# steps, verdict **worse** — smoothness is paid for in activation here. Against the real crops
# the recipe's high-frequency share is still higher (last line: verdict **worse**), so after
# 32 steps at 64 px its pictures are smoother than the pixel ones but not yet as smooth as
# photographs. Both recipes gain several crop units over their grey start.

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.0))
for ax, layer in zip(axes, LAYERS):
    c = CHANNELS[layer][0]
    r = real[layer, c].numpy()
    ax.axhspan(*np.percentile(r, [5, 95]), color="0.85", label="real crops, 5–95 %")
    ax.axhline(r.max(), color="0.4", ls="--", lw=1, label="best real crop")
    for recipe, colour in [("pixel", "C0"), ("recipe", "C1")]:
        for s in SEEDS:
            ax.plot(runs[layer, c, recipe, s][1], color=colour, lw=1, label=recipe if s == 0 else None)
    ax.set(title=f"{layer} channel {c}", xlabel="step", ylabel="objective (mean activation)")
axes[0].legend(fontsize=8)
fig.suptitle("optimisation curves, 3 seeds each (the recipe's objective is measured on the transformed picture)",
             fontsize=10)
plt.tight_layout();

# %% [markdown]
# The curves show the objective the optimiser sees at each step. Pixel ascent climbs steadily
# and is still climbing at step 32; the recipe's curve is jagged because every step measures a
# freshly jittered, scaled and rotated copy, and it climbs more slowly. Both leave the band of
# the photographs (grey) within about ten steps.

# %%
fig, axes = plt.subplots(3, 6, figsize=(12, 6.4))
for row, layer in enumerate(LAYERS):
    c = CHANNELS[layer][0]
    top = real[layer, c].argsort(descending=True)[:4].tolist()
    panels = [(runs[layer, c, r, 0][0], f"{r} z={z((layer, c), runs[layer, c, r, 0][2]):.1f}") for r in ["pixel", "recipe"]]
    panels += [(crops[i], f"crop z={z((layer, c), real[layer, c][i].item()):.1f}") for i in top]
    for ax, (im, title) in zip(axes[row], panels):
        ax.imshow(im.permute(1, 2, 0).numpy())
        ax.set_title(f"{layer}/{c}: {title}" if ax is axes[row][0] else title, fontsize=9)
        ax.axis("off")
fig.suptitle("optimised pictures, seed 0 (left two) and the 4 real crops with the highest activation", fontsize=10)
plt.tight_layout();

# %% [markdown]
# Next to each optimised picture, the four real crops that drive the channel highest (the
# dataset view) show what it responds to in photographs. The deep channel's map is only 2×2 at
# 64 px, so its pictures are the hardest to read.
#
# ## 4. Which trick does what? One trick at a time
#
# On the same 9 channels (seed 0 only, to keep the notebook short) we add the tricks one by one:
# Fourier parameterisation, then colour decorrelation, then the transforms. Each line compares a
# step with the one before it, with the same bootstrap over channels.

# %%
t = time.time()
for layer, c in UNITS:
    for recipe in ["fourier", "fourier+decor"]:
        run(layer, c, recipe, 0)
print(f"{2 * len(UNITS)} more optimisations: {time.time() - t:.0f} s")

# %%
# (not compared by nbval: gradient ascent differs in the last digits with the number of CPU threads)
STAGES = ["pixel", "fourier", "fourier+decor", "recipe"]
hf.update({k: high_freq_share(v[0]) for k, v in runs.items() if k not in hf})
print("mean ± sd over the 9 channels, seed 0")
for recipe in STAGES:
    zz = np.array(diff(recipe, "pixel", "z", seeds=[0])) + np.array([z(u, runs[u[0], u[1], "pixel", 0][2]) for u in UNITS])
    hh = np.array([hf[u[0], u[1], recipe, 0] for u in UNITS])
    print(f"{recipe:14s} z {zz.mean():6.1f} ± {zz.std(ddof=1):5.1f} | high-freq share {hh.mean():.3f} ± {hh.std(ddof=1):.3f}")
ablation = {}
for before, after in zip(STAGES, STAGES[1:]):
    ablation[after, "hf"] = compare(diff(after, before, "hf", seeds=[0]), True, f"{after:14s} - {before:14s}, high-freq share")
    ablation[after, "z"] = compare(diff(after, before, "z", seeds=[0]), False, f"{after:14s} - {before:14s}, activation     ")

# %% [markdown]
# One trick at a time (the verdicts printed above): the Fourier parameterisation is the step that
# removes most of the high-frequency energy, and it does not cost activation — its verdict on
# the activation is even *better*: a 1/f-scaled step moves the picture along the directions
# natural pictures vary in, so smoothness is not bought with a lower objective. Colour
# decorrelation lowers the high-frequency share further (better) with no clear difference in
# activation, and changes the colours (see the pictures). The transforms lower the share a
# little more (better) and are the trick that costs activation (worse): the picture must keep working when shifted, scaled and rotated, which
# is exactly what makes its pattern robust rather than tuned to one pixel grid — a gain you see
# in the pictures, not in this number.

# %%
fig, axes = plt.subplots(1, 4, figsize=(9, 2.6))
for ax, recipe in zip(axes, STAGES):
    ax.imshow(runs["block4", C4, recipe, 0][0].permute(1, 2, 0).numpy())
    ax.set_title("fourier+decor+transforms" if recipe == "recipe" else recipe, fontsize=9); ax.axis("off")
fig.suptitle(f"block4 channel {C4}, seed 0", fontsize=10)
plt.tight_layout();

# %% [markdown]
# ## Pitfalls
#
# - **Ascent, not descent.** Minimise the *negative* objective (or add the gradient). A sign
#   error finds what *switches the channel off* — it still converges and still looks like a
#   pattern.
# - **One channel, not the layer.** `acts.mean()` maximises all channels at once; the picture
#   then shows a blend of everything the layer likes. Index the channel: `acts[:, c].mean()`.
# - **Freeze the network.** Optimise the input only: weights with `requires_grad=True` collect
#   `.grad` (memory, and an optimiser built on `model.parameters()` would change the model).
#   `fl.maximize_activation` freezes them and restores the flags afterwards.
# - **Eval mode.** In train mode batch-norm normalises with the statistics of the one picture
#   being optimised, and the objective changes meaning.
# - **Remove the hooks.** A forgotten hook keeps a reference to every output and runs on every
#   later forward pass; `fl.Capture` (used inside `fl.maximize_activation`) removes it on exit,
#   also after an error.
# - **Judge against the distribution, not one crop.** A channel of a linear projection has an
#   offset: a flat grey picture can already beat every photograph. Read activations in crop
#   units (or as a percentile of real crops) and report the gain from the start.
# - **One channel, one seed proves little.** Draw channels by a rule (here at random, seeded) and
#   repeat each optimisation from several starts before saying which recipe is better.
# - **A high activation is not a good explanation.** The pixel picture reaches a far higher
#   activation than any real crop with a pattern no camera would take: it shows what the channel
#   *computes* on out-of-distribution input, not what it detects in photographs. Always show the
#   dataset view next to it.
# - **Small and short here.** 64 px and 32 steps keep the notebook under a minute on a CPU; the
#   deep channel's map is only 2×2 at this size. With a GPU, try `size=224, steps=256`.
#
# **Exercise:** `exercises/15_activation_maximisation.ipynb` — the channel objective, the
# Fourier frequency scaling, and one gradient-ascent step on the input.

# %%
print(f"notebook run time: {time.time() - t0:.0f} s")
