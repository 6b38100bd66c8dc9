# ---
# jupyter:
#   jupytext:
#     formats: ipynb,src//py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 12 — Performance: where the time goes in feature extraction
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - measure throughput (images per second) *correctly*: warm-up, synchronisation, the median of
#   several runs, a baseline measured in the same run;
# - find the stage that limits a pipeline (read, decode, resize, forward, write) and predict with
#   Amdahl's law what speeding up one stage can give;
# - *measure* the usual knobs on this machine: batch size, `channels_last`, bfloat16/float16,
#   decoding threads and `DataLoader` workers, `torch.compile` including its compile time;
# - write a two-stage pipeline (a thread pool decoding ahead of the model) and a pipeline per core
#   (each with its own copy of the model) from scratch, check that they give exactly the features
#   of `fl.cache.extract_folder`, then use featlab;
# - resize only the part of a picture the crop keeps;
# - choose a storage format with numbers: float16 vs float32 (size, top-k agreement of `fl.search`),
#   HDF5 vs pickle vs `.npy` (write and read time).
#
# **Prerequisites:** `05_feature_maps` (`fl.extract`, layer names), `07_embeddings_retrieval`
# (pooled embeddings, cosine similarity, float16 storage).
# **Run time:** under a minute on a 2-core CPU, up to 20 s of it the `torch.compile` experiment.
#
# **Every timing in this notebook is measured where it runs.** The text states no timings; it says
# what to look for, and the cells print the numbers — and, for every comparison, a plain
# "yes/no" — so the conclusion you read is the one your machine produced. On a laptop, a shared
# server or a GPU the answers may differ; that is the point.
#
# ## The idea
#
# Feature extraction is a pipeline: each picture is **read** from disk, **decoded** (JPEG →
# pixels), **resized** and cropped, **normalised**, sent through the **model**, and the vector is
# **written**. If stage $i$ takes $t_i$ seconds per image, then
#
# $$\text{one after the other: } \frac{1}{\sum_i t_i}\ \text{images/s},\qquad
# \text{stages overlapped: at most } \frac{1}{\max_i t_i}\ \text{images/s}.$$
#
# An overlapped pipeline runs at the speed of its **slowest stage**. And speeding up one stage that
# takes a fraction $p$ of the time by a factor $s$ gives, by **Amdahl's law**,
#
# $$S = \frac{1}{(1 - p) + p / s} \;\le\; \frac{1}{1 - p}:$$
#
# a model twice as fast helps little if decoding takes most of the time. So: measure first, find
# the slowest stage, then decide.

# %%
# %matplotlib inline
import io
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

import featlab as fl

t_start = time.time()
torch.manual_seed(0)
rng = np.random.default_rng(0)
plt.rcParams["figure.dpi"] = 72
DEV = fl.device()
ON_GPU = DEV.type == "cuda"
load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
print(f"device {DEV.type}" + (f" ({torch.cuda.get_device_name()})" if ON_GPU else "")
      + f", {cores} CPU cores, {torch.get_num_threads()} torch threads, "
      f"load average {load[0]:.1f} (1 min) — above {cores} means other programs compete for the cores")

t = time.perf_counter()
model = fl.load_model("efficientnet_lite0")
prep = fl.preprocess_for(model)
PICTURES = list(fl.sample_images())                                  # 12 real pictures
x_real = fl.preprocess(PICTURES, model)                              # (12, 3, 224, 224), on DEV
print(f"model loaded and 12 pictures preprocessed in {time.perf_counter() - t:.1f} s; "
      f"preprocessing: resize {prep.resize} ({prep.interpolation}), crop {prep.crop}")

# %% [markdown]
# ## 1. Measuring right
#
# Three rules make a timing mean something:
# 1. **Warm up.** The first call of a model pays for one-time work: memory allocation, the choice
#    of convolution algorithms for this input shape (oneDNN on a CPU, cuDNN on a GPU), lazy imports.
# 2. **Synchronise.** On a GPU, `model(x)` only *queues* the work and returns at once;
#    `torch.cuda.synchronize()` waits until it is done. Without it you time the queueing.
# 3. **Repeat and take the median.** Other programs, the OS and the CPU's clock speed make single
#    measurements jump; the median of a few ignores one bad run. Compare two variants in the *same*
#    run, alternating them, so both see the same load.
# 4. **Know your threads.** PyTorch runs a CPU forward pass on one thread per core, and those threads
#    wait for each other at every layer: if another program takes one core away, the others wait.
#    On a busy machine one thread can then beat several. The cell measures both and keeps the
#    faster setting for the rest of the notebook (on a GPU the threads hardly matter; it keeps the
#    default).

# %%
def sync():
    """Wait for the device: GPU work is asynchronous (no-op on a CPU)."""
    if DEV.type == "cuda":
        torch.cuda.synchronize()
    elif DEV.type == "mps":
        torch.mps.synchronize()


def seconds(fn, repeats=3, warmup=1):
    """Wall-clock seconds of ``repeats`` calls of fn(), after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
        sync()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()                                   # the work is done, not just queued
        out.append(time.perf_counter() - t0)
    return out


def rate(fn, n_images, repeats=3, warmup=1):
    """Median images/s of fn(), which processes n_images."""
    return n_images / statistics.median(seconds(fn, repeats, warmup))


def forward(x):
    with torch.inference_mode():
        return model(x)


# first call on a new input shape vs the steady state
x7 = x_real[:7]
t0 = time.perf_counter(); forward(x7); sync(); first = time.perf_counter() - t0
steady = statistics.median(seconds(lambda: forward(x7), repeats=3, warmup=0))
print(f"batch of 7, first call {1000 * first:.0f} ms, then {1000 * steady:.0f} ms (median of 3): "
      f"the first call took {first / steady:.1f}× the steady time; slower: {'yes' if first > steady else 'no'}")

# torch threads: 1 vs the default (one per core), alternating, median of 3
n_default = torch.get_num_threads()
thr = {}
for r in range(3):
    for n in sorted({1, n_default}):
        torch.set_num_threads(n)
        thr.setdefault(n, []).extend(seconds(lambda: forward(x_real[:2]), repeats=1, warmup=int(r == 0)))
for n, ts in thr.items():
    print(f"{n} torch thread(s): {2 / statistics.median(ts):7.1f} img/s (batch of 2)")
THREADS = min(thr, key=lambda n: statistics.median(thr[n])) if DEV.type == "cpu" else n_default
torch.set_num_threads(THREADS)
print(f"1 thread faster than {n_default}: {'yes' if statistics.median(thr[1]) < statistics.median(thr[n_default]) else 'no'}; "
      f"the rest of this notebook uses {THREADS} torch thread(s)")

# %% [markdown]
# ## 2. Batch size
#
# A batch lets the library run one big matrix operation instead of many small ones and pays the
# per-call overhead (Python, kernel launches, hooks) once per batch. The curve below sends the same
# pictures through the network at several batch sizes; throughput usually rises, then flattens
# when the hardware is busy — beyond that, a larger batch only costs memory and latency.

# %%
BATCHES = [1, 4, 16, 64, 256] if ON_GPU else [1, 2, 4, 8]
N_CURVE = 256 if ON_GPU else 8                                        # images per measurement
x_curve = x_real.repeat(N_CURVE // 12 + 1, 1, 1, 1)[:N_CURVE]
curve = {}
for b in BATCHES:
    forward(x_curve[:b])                                              # warm up this shape
    curve[b] = rate(lambda: [forward(chunk) for chunk in x_curve.split(b)], N_CURVE, warmup=0)
    print(f"batch {b:4d}: {curve[b]:7.1f} img/s")
best = max(curve, key=curve.get)
print(f"best batch size here: {best}; batch {best} is {curve[best] / curve[1]:.1f}× batch 1; "
      f"batched beats one-at-a-time: {'yes' if curve[best] > 1.1 * curve[1] else 'no'}")
plt.figure(figsize=(5, 3))
plt.plot(list(curve), list(curve.values()), "o-")
plt.xscale("log", base=2); plt.xlabel("batch size"); plt.ylabel("images / s")
plt.title(f"EfficientNet-Lite0 forward, {DEV.type}"); plt.grid(alpha=0.3)
plt.tight_layout()

# %% [markdown]
# ## 3. Memory layout: NCHW vs channels_last
#
# A batch `(N, C, H, W)` is stored by default with the width varying fastest (NCHW);
# `channels_last` stores the C values of each pixel next to each other (NHWC), the layout many
# convolution kernels prefer — tensor cores on GPUs in particular. The *values* do not change,
# so the features must be the same; only the speed may. (`fl.cache.extract_folder` uses it by
# default: `benchmarks/README.md` measured it faster on an H100 and on a 2-core CPU. An earlier
# version of featlab had it off on CPUs after a measurement of the whole pipeline on a busy
# machine; measured alone, on an idle one, the layout won — measure before you believe.)

# %%
def pooled(x, m=model):
    """(N, 3, 224, 224) -> (N, 1280) float32 average-pooled `head` features, on the CPU."""
    with torch.inference_mode():
        return fl.pool(fl.extract(m, x, ["head"])["head"].float()).cpu()


N_LAYOUT = 64 if ON_GPU else 12
x_lay = x_real.repeat(N_LAYOUT // 12 + 1, 1, 1, 1)[:N_LAYOUT]
ref32 = pooled(x_real)
layout = {}
for r in range(3):                                    # alternate the two layouts, same load for both
    for name in ("NCHW", "channels_last"):
        fmt = torch.channels_last if name == "channels_last" else torch.contiguous_format
        model.to(memory_format=fmt)
        xin = x_lay.contiguous(memory_format=fmt)
        layout.setdefault(name, []).extend(seconds(lambda: forward(xin), repeats=1, warmup=int(r == 0)))
        if r == 0 and name == "channels_last":
            f_cl = pooled(x_real.contiguous(memory_format=fmt))
model.to(memory_format=torch.contiguous_format)      # back to the default
for name, ts in layout.items():
    print(f"{name:14s}: {N_LAYOUT / statistics.median(ts):7.1f} img/s")
faster = statistics.median(layout["channels_last"]) < statistics.median(layout["NCHW"])
print(f"channels_last faster here: {'yes' if faster else 'no'}")

# %%
# NBVAL_CHECK_OUTPUT
cos = torch.nn.functional.cosine_similarity(f_cl, ref32).min().item()
print(f"same features in both layouts (lowest cosine over the 12 pictures above 0.9999): {cos > 0.9999}")

# %% [markdown]
# ## 4. Precision: float32 vs bfloat16 / float16
#
# Under `torch.autocast`, convolutions and matrix products run in a 16-bit format while the rest
# stays float32. bfloat16 keeps float32's range with 8 bits of mantissa (about 3 decimal digits);
# float16 has 11 bits but a range that ends at 65504. On GPUs with tensor cores this usually
# doubles the speed. On a CPU it depends on the instruction set: without native bfloat16 support
# the 16-bit path converts back and forth and can be *slower* than float32. Either way the features
# change a little — the cell measures how much, as the cosine to the float32 features.

# %%
N_PREC = 64 if ON_GPU else 12
x_prec = x_real.repeat(N_PREC // 12 + 1, 1, 1, 1)[:N_PREC]
dtypes = {"float32": None, "bfloat16": torch.bfloat16}
if ON_GPU:
    dtypes["float16"] = torch.float16              # on most CPUs float16 autocast is very slow
prec_s, prec_cos = {}, {}
for r in range(3):
    for name, dt in dtypes.items():
        def run(x=x_prec, dt=dt):
            with torch.autocast(DEV.type, dtype=dt, enabled=dt is not None):
                return forward(x)
        prec_s.setdefault(name, []).extend(seconds(run, repeats=1, warmup=int(r == 0)))
for name, dt in dtypes.items():
    with torch.autocast(DEV.type, dtype=dt, enabled=dt is not None):
        f = pooled(x_real)
    prec_cos[name] = torch.nn.functional.cosine_similarity(f, ref32).min().item()
for name in dtypes:
    sp = statistics.median(prec_s["float32"]) / statistics.median(prec_s[name])
    print(f"{name:9s}: {N_PREC / statistics.median(prec_s[name]):7.1f} img/s ({sp:.2f}× float32), "
          f"lowest cosine to float32 over the 12 pictures {prec_cos[name]:.5f}")
faster = statistics.median(prec_s["bfloat16"]) < statistics.median(prec_s["float32"])
print(f"bfloat16 faster than float32 here: {'yes' if faster else 'no'}")

# %% [markdown]
# The cosine tells you what the speed costs: retrieval and linear probes hardly notice a cosine of
# 0.999 to the float32 vector, but never mix features computed in different precisions (or on
# different devices) in one index without checking.
#
# ## 5. A folder of JPEG files
#
# From here on, the input is what a user has: JPEG files on disk. We write the 12 sample pictures at
# two typical photo sizes, 640×480 and 1024×768 (quality 90), into a temporary folder.

# %%
tmp = Path(tempfile.mkdtemp(prefix="featlab_nb12_"))
folder = tmp / "jpegs"
(folder / "all").mkdir(parents=True)                 # one subfolder: torchvision's ImageFolder wants classes
for i, name in enumerate(PICTURES):
    for size in ((640, 480), (1024, 768)):
        pic = ImageOps.fit(fl.load_image(name), size, Image.Resampling.LANCZOS)
        pic.save(folder / "all" / f"{name}_{size[0]}.jpg", quality=90)
rels = fl.loader.list_images(folder)                 # relative paths, sorted
files = [folder / r for r in rels]
kb = sum(f.stat().st_size for f in files) / len(files) / 1e3
print(f"{len(files)} JPEG files, {kb:.0f} kB on average")

# %% [markdown]
# ## 6. Where the time goes in one extraction
#
# Take a batch of 4 files and time each stage on its own, one after the other (Pillow's stages on one
# thread, the forward pass with PyTorch's threads):
# **read** the bytes, **decode** the JPEG, **resize** (the short side to 256, bicubic, as the
# weights expect) and centre-**crop**, stack and **normalise**, the **forward** pass to the pooled
# `head` on the device, and **write** the (4, 1280) vectors to an HDF5 file.

# %%
def read(path):
    return Path(path).read_bytes()


def decode_bytes(data):
    img = Image.open(io.BytesIO(data))
    return img.convert("RGB")                        # convert() forces the actual decoding


def resize_crop(img):
    img = TF.resize(img, prep.resize, interpolation=InterpolationMode(prep.interpolation), antialias=True)
    return TF.pil_to_tensor(TF.center_crop(img, [prep.crop, prep.crop]))          # (3, 224, 224) uint8


MEAN = torch.tensor(prep.mean).view(1, 3, 1, 1)
STD = torch.tensor(prep.std).view(1, 3, 1, 1)


def normalise(u8):
    """(N, 3, H, W) uint8 -> float32 (x / 255 - mean) / std."""
    return (u8.float() / 255 - MEAN) / STD


batch_files = files[:4]
datas = [read(f) for f in batch_files]
imgs = [decode_bytes(d) for d in datas]
u8s = [resize_crop(im) for im in imgs]
xb = normalise(torch.stack(u8s))
vecs = pooled(xb.to(DEV)).numpy()
h5 = h5py.File(tmp / "stages.h5", "w")
ds = h5.create_dataset("features", (0, vecs.shape[1]), maxshape=(None, vecs.shape[1]), dtype="float32")


def write(v):
    n = ds.shape[0]
    ds.resize(n + len(v), axis=0)
    ds[n:] = v
    h5.flush()


stages = {
    "read": lambda: [read(f) for f in batch_files],
    "decode": lambda: [decode_bytes(d) for d in datas],
    "resize + crop": lambda: [resize_crop(im) for im in imgs],
    "normalise": lambda: normalise(torch.stack(u8s)),
    "forward": lambda: pooled(xb.to(DEV)),
    "write": lambda: write(vecs),
}
per_image = {k: statistics.median(seconds(fn, repeats=3)) / len(batch_files) for k, fn in stages.items()}
h5.close()
total = sum(per_image.values())
for k, v in per_image.items():
    print(f"{k:14s} {1000 * v:7.2f} ms/image  {100 * v / total:5.1f} %")
slowest = max(per_image, key=per_image.get)
p_fwd = per_image["forward"] / total
print(f"slowest stage: {slowest}. One after the other: {1 / total:.1f} img/s. "
      f"The forward pass is {100 * p_fwd:.0f} % of the time: an infinitely fast model would give at most "
      f"{1 / (1 - p_fwd):.2f}× (Amdahl), a model twice as fast {1 / ((1 - p_fwd) + p_fwd / 2):.2f}×.")
plt.figure(figsize=(6, 2.8))
plt.barh(list(per_image)[::-1], [1000 * v for v in per_image.values()][::-1], color="tab:blue")
plt.xlabel("ms per image (batch of 4)"); plt.title(f"one extraction, {DEV.type}")
plt.tight_layout()

# %% [markdown]
# **Resize only what the crop keeps.** Resize + crop computes the whole resized picture (341 × 256
# for these 4:3 files) and then throws away the columns outside the 224-pixel crop. Pillow can
# resize a *box* of the picture: the same filter, the same sample positions, only the columns
# kept. (Cropping the rows in the box as well makes Pillow run its two passes in the other order,
# and rounding then moves pixels by a few levels; so rows are resized in full and cropped after.)
# `prep.to_uint8`, which featlab's loaders use, does exactly this:

# %%
def resize_crop_box(img):
    out_w, out_h, left, top = prep.resize_plan(*img.size)          # torchvision's sizes and offsets
    sx = img.width / out_w
    img = img.resize((prep.crop, out_h), Image.Resampling.BICUBIC,
                     box=(left * sx, 0, (left + prep.crop) * sx, img.height))
    return torch.from_numpy(np.asarray(img)[top:top + prep.crop].copy()).permute(2, 0, 1)


assert all(torch.equal(resize_crop_box(im), prep.to_uint8(im)) for im in imgs)   # featlab's way
diff = max((resize_crop(im).int() - resize_crop_box(im).int()).abs().max().item() for im in imgs)
t_box = statistics.median(seconds(lambda: [resize_crop_box(im) for im in imgs], repeats=3)) / len(imgs)
print(f"resize + crop {1000 * per_image['resize + crop']:.2f} ms/image, box only {1000 * t_box:.2f} ms/image "
      f"({per_image['resize + crop'] / t_box:.2f}× as fast); largest pixel difference {diff} of 255")

# %% [markdown]
# The cell named the slowest stage on this machine. A CPU spends most of its time in the network;
# on a GPU the model becomes so fast that decoding and resizing can take over — which is why featlab
# decodes JPEGs *on* the GPU there. The decode-side stages (read, decode, resize, normalise) can run
# **at the same time** as the forward pass, on other threads, if the machine has idle cores for them.
#
# ## 7. From scratch: a two-stage pipeline
#
# Stage 1, a thread pool, reads and decodes batch $i+1$ while stage 2, the main thread, runs the
# model on batch $i$. Threads work here because Pillow and PyTorch release Python's global lock
# while they decode, resize or compute. The sequential version does the same steps one after the
# other. Both must give the features `fl.cache.extract_folder` stores (asked for float32, NCHW and
# Pillow decoding, as here).
#
# A third way gives up on overlap: **one pipeline per core**. Two threads each take a whole batch,
# decode it, and run it through *their own copy* of the model with one PyTorch thread, while the
# other thread does the same with the next batch. No stage waits for another, and no decoding
# thread interrupts a parallel operation that needs every core. `extract_folder` does this on a CPU
# (`streams=2`, its default on 2 cores or more).

# %%
import copy


def load_one(path):
    return resize_crop_box(decode_bytes(read(path)))     # file -> (3, 224, 224) uint8, as featlab


def sequential(paths, batch_size=4):
    out = []
    for i in range(0, len(paths), batch_size):
        u8 = torch.stack([load_one(p) for p in paths[i:i + batch_size]])
        out.append(pooled(normalise(u8).to(DEV)))
    return torch.cat(out)


def two_stage(paths, batch_size=4, threads=1):
    batches = [paths[i:i + batch_size] for i in range(0, len(paths), batch_size)]
    out = []
    with ThreadPoolExecutor(threads) as pool:
        ahead = [pool.submit(load_one, p) for p in batches[0]]
        for i in range(len(batches)):
            u8 = torch.stack([f.result() for f in ahead])                 # wait for batch i
            if i + 1 < len(batches):                                       # stage 1 starts on batch i+1 ...
                ahead = [pool.submit(load_one, p) for p in batches[i + 1]]
            out.append(pooled(normalise(u8).to(DEV)))                      # ... while stage 2 runs batch i
    return torch.cat(out)


def per_core(paths, batch_size=4, streams=2):
    batches = [paths[i:i + batch_size] for i in range(0, len(paths), batch_size)]
    copies = [model] + [copy.deepcopy(model) for _ in range(streams - 1)]    # one model per stream

    def run(k):                                       # stream k: batches k, k + streams, ...
        torch.set_num_threads(max(1, cores // streams))                    # its share of the cores
        return {i: pooled(normalise(torch.stack([load_one(p) for p in batches[i]])).to(DEV), copies[k])
                for i in range(k, len(batches), streams)}

    done = {}
    with ThreadPoolExecutor(streams) as pool:
        for part in pool.map(run, range(streams)):
            done.update(part)
    torch.set_num_threads(THREADS)
    return torch.cat([done[i] for i in range(len(batches))])


def featlab_extract(out_name, **kw):
    path = tmp / out_name
    path.unlink(missing_ok=True)
    fl.cache.extract_folder(model, folder, "head", path, batch_size=4, progress=False, **kw)
    paths, feats = fl.cache.load_features(path)
    assert paths == rels                             # the same files, in the same (sorted) order
    return torch.from_numpy(feats["head"])


f_seq = sequential(files)
f_two = two_stage(files)
f_core = per_core(files)
f_fl = featlab_extract("check.h5", precision="float32", channels_last=False, jpeg_on_device=False)

# %%
# NBVAL_CHECK_OUTPUT
assert torch.allclose(f_seq, f_two, atol=1e-5)       # same code, same batches
assert torch.allclose(f_seq, f_core, atol=1e-5)
# a CPU gives the same numbers; on a GPU, TF32 and cuDNN's choice of algorithm move the last digits
tol = 1e-4 if DEV.type == "cpu" else 1e-2
assert (f_two - f_fl).abs().max().item() < tol
cos = torch.nn.functional.cosine_similarity(f_two, f_fl).min().item()
print(f"{tuple(f_fl.shape)} features: two-stage = per core = sequential = fl.cache.extract_folder "
      f"(lowest cosine above 0.9999: {cos > 0.9999})")

# %% [markdown]
# Now the speed, all on the same files and batch size (4: six batches, three per stream), alternating
# the variants so that each sees the same load. featlab's `extract_folder` adds what a real run needs: skipped unreadable files,
# resumable HDF5 writing, uint8 transfer to the device. It runs once like the code above (float32,
# NCHW: like with like) and once with its defaults, which add `channels_last` (section 3) and, on a
# GPU, bfloat16 and nvJPEG decoding.

# %%
runs = {"sequential": lambda: sequential(files), "two-stage (1 decode thread)": lambda: two_stage(files)}
if not ON_GPU:
    runs["per core (2 streams)"] = lambda: per_core(files)
runs["fl.cache.extract_folder, NCHW"] = lambda: featlab_extract("speed.h5", channels_last=False)
runs["fl.cache.extract_folder, defaults"] = lambda: featlab_extract("speed.h5")
pipe = {k: [] for k in runs}
for r in range(3):
    for k, fn in runs.items():
        pipe[k].extend(seconds(fn, repeats=1, warmup=0))
pipe_rate = {k: len(files) / statistics.median(v) for k, v in pipe.items()}
for k, v in pipe_rate.items():
    print(f"{k:34s} {v:7.1f} img/s  ({v / pipe_rate['sequential']:.2f}× sequential)")
decode_side = per_image["read"] + per_image["decode"] + t_box + per_image["normalise"]
print(f"predicted from section 6 (box resize): one after the other {1 / (decode_side + per_image['forward'] + per_image['write']):.1f} img/s, "
      f"perfectly overlapped {1 / max(decode_side, per_image['forward'] + per_image['write']):.1f} img/s")


def faster(a, b):
    return "yes" if pipe_rate[a] > pipe_rate[b] else "no"


print(f"two-stage faster than sequential: {faster('two-stage (1 decode thread)', 'sequential')}")
if not ON_GPU:
    print(f"per core faster than two-stage: {faster('per core (2 streams)', 'two-stage (1 decode thread)')}")
print(f"featlab (NCHW) faster than sequential: {faster('fl.cache.extract_folder, NCHW', 'sequential')}; "
      f"its defaults faster than NCHW: {faster('fl.cache.extract_folder, defaults', 'fl.cache.extract_folder, NCHW')}")

# %% [markdown]
# Overlap only helps when the stages use *different* resources. On a 2-core CPU the forward pass
# already keeps both cores busy, so the decoding thread takes its time from the model: the gain is
# at most what the idle moments of the model (Python overhead, the last layers of a batch) leave,
# and a decoding thread that is scheduled in the middle of a parallel operation stalls it.
# One pipeline per core overlaps nothing inside a stream; the streams fill the cores. Where it wins
# (the lines above say whether it did here), it is for two reasons: a one-thread forward pass
# spends nothing on coordinating threads (section 1 measured how far 2 threads are from twice the
# speed of 1), and no decoding ever interrupts a parallel operation. It costs one more copy of the
# model in memory per stream. On a GPU machine the model runs on the GPU and decoding on the CPU
# cores: there the two stages really run side by side, and `extract_folder` keeps one stream fed by
# decoding threads.
#
# ## 8. Decoding threads vs `DataLoader` worker processes
#
# The loader alone (no model): featlab's `fl.loader.load_batches` with 0 threads (decode in the
# calling thread) and 2 threads, and PyTorch's `DataLoader` over torchvision's `ImageFolder`
# with 0 and 2 worker *processes*. Processes sidestep Python's global lock entirely, but each
# epoch starts them anew (unless `persistent_workers=True`) and every batch is pickled back to the
# main process; threads start instantly and share memory.

# %%
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

tf = transforms.Compose([transforms.Resize(prep.resize, interpolation=InterpolationMode(prep.interpolation)),
                         transforms.CenterCrop(prep.crop), transforms.PILToTensor()])
image_folder = datasets.ImageFolder(folder, transform=tf)    # the same files, sorted the same way


def featlab_loader(workers):
    return [b.x for b in fl.loader.load_batches(folder, rels, prep, 8, DEV, workers=workers,
                                                jpeg_on_device=False)]


def torch_loader(workers):
    return [normalise(x).to(DEV) for x, _ in DataLoader(image_folder, batch_size=8, num_workers=workers)]


loaders = {"featlab, 0 threads": lambda: featlab_loader(0), "featlab, 2 threads": lambda: featlab_loader(2),
           "DataLoader, 0 workers": lambda: torch_loader(0), "DataLoader, 2 workers": lambda: torch_loader(2)}
# same pixels up to rounding (featlab resizes only the crop box, section 6): at most 1 level of 255
assert torch.allclose(torch.cat(featlab_loader(2)), torch.cat(torch_loader(0)), atol=1.01 / 255 / min(prep.std))
load_s = {k: [] for k in loaders}
for r in range(3):
    for k, fn in loaders.items():
        load_s[k].extend(seconds(fn, repeats=1, warmup=0))     # the files were just read: warm
load_rate = {k: len(files) / statistics.median(v) for k, v in load_s.items()}
for k, v in load_rate.items():
    print(f"{k:22s} {v:7.1f} img/s (read + decode + resize + normalise, no model)")
print(f"2 threads faster than 0: {'yes' if load_rate['featlab, 2 threads'] > load_rate['featlab, 0 threads'] else 'no'}; "
      f"2 worker processes faster than 0: {'yes' if load_rate['DataLoader, 2 workers'] > load_rate['DataLoader, 0 workers'] else 'no'}; "
      f"decoding alone ({max(load_rate.values()):.0f} img/s at best) vs the model alone "
      f"({max(curve.values()):.0f} img/s at best, section 2): decoding is the slower stage: "
      f"{'yes' if max(load_rate.values()) < max(curve.values()) else 'no'}")

# %% [markdown]
# With only 24 files, the worker processes' start-up is part of each measurement: on a big folder it
# is paid once per epoch and matters less. The decisive number is the last line: if
# decoding alone is faster than the model alone, more decoding threads cannot speed up the
# extraction — the model is the slowest stage.
#
# ## 9. `torch.compile`: faster, after paying for the compilation
#
# `torch.compile` traces the model and generates fused kernels (C++ on a CPU, Triton on a GPU).
# The first call pays for the compilation, which for a full network takes far longer than this
# notebook's minute (`benchmarks/README.md` times it for ResNet-50 on an H100). So we measure it on a
# **tiny** convolutional network,
# in a separate process with a time budget, so that a slow or missing compiler (no C++ compiler,
# an unsupported Python) cannot break the notebook. The question is always: how many images until
# the compile time is paid back? (Compiled kernels are cached on disk, `TORCHINDUCTOR_CACHE_DIR`:
# the very first run of this cell pays the most, a rerun much less.)

# %%
COMPILE_BUDGET_S = 20
compile_script = textwrap.dedent("""
    import json, statistics, time, torch
    from torch import nn
    torch.manual_seed(0)
    torch.set_num_threads(THREADS)
    dev = torch.device(DEVICE)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval().to(dev)
    x = torch.randn(64, 3, 64, 64, device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    def rate(f):
        f(); sync(); ts = []
        for _ in range(5):
            t = time.perf_counter(); f(); sync(); ts.append(time.perf_counter() - t)
        return len(x) / statistics.median(ts)
    with torch.inference_mode():
        eager = rate(lambda: net(x))
        fast = torch.compile(net)
        t = time.perf_counter(); y = fast(x); sync(); first = time.perf_counter() - t
        compiled = rate(lambda: fast(x))
        err = (y - net(x)).abs().max().item()
    print(json.dumps(dict(eager=eager, compiled=compiled, first=first, err=err)))
""").replace("DEVICE", repr(DEV.type)).replace("THREADS", str(THREADS))
t = time.perf_counter()
try:
    res = subprocess.run([sys.executable, "-c", compile_script], capture_output=True, text=True,
                         timeout=COMPILE_BUDGET_S)
    comp = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else None
    why = None if comp else (res.stderr.strip().splitlines() or ["no message"])[-1]
except subprocess.TimeoutExpired:
    comp, why = None, f"not finished within the budget of {COMPILE_BUDGET_S} s"
wall = time.perf_counter() - t
if comp:
    gain = 1 / comp["eager"] - 1 / comp["compiled"]                  # seconds saved per image
    print(f"tiny network, batch 64 of 64×64: eager {comp['eager']:.0f} img/s, compiled "
          f"{comp['compiled']:.0f} img/s ({comp['compiled'] / comp['eager']:.2f}×); the first compiled call "
          f"took {comp['first']:.1f} s; outputs agree within {comp['err']:.1e}")
    print(f"compiled faster: {'yes' if gain > 0 else 'no'}; " + (
        f"the compile time is paid back after about {comp['first'] / gain:,.0f} images" if gain > 0
        else "it never pays back here"))
else:
    print(f"torch.compile could not be measured here ({why}); the process ran {wall:.0f} s. "
          "Eager mode is what featlab uses.")

# %% [markdown]
# For a real extraction, the same arithmetic with the real network: `benchmarks/README.md` measured
# ResNet-50 on an H100, where compiling paid back only after a very large number of pictures per
# process (and only if decoding kept up) — so `fl.cache.extract_folder` does not compile.
#
# ## 10. Storage: float16 vs float32, and HDF5 vs pickle vs `.npy`
#
# **float16 halves the file.** Does it change search results? We store the features of the folder
# with `extract_folder(..., dtype="float16")`, everything else as in the float32 file of section 7,
# and compare top-5 lists of `fl.search`. With 24 pictures that is an easy test, so we add a harder
# one: the 7×7 = 49 position vectors of the 12 pictures' `head` maps (588 vectors, neighbours
# within a picture are near-duplicates), the top-10 neighbours of every 4th one.

# %%
# NBVAL_CHECK_OUTPUT
def topk_overlap(a_idx, b_idx):
    """Mean share of the k ids two (Q, k) top-k lists have in common (order ignored)."""
    k = a_idx.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(a_idx, b_idx)]))


featlab_extract("f16.h5", dtype="float16", precision="float32", channels_last=False, jpeg_on_device=False)
_, by_dtype = zip(*(fl.cache.load_features(tmp / n) for n in ("check.h5", "f16.h5")))
a32, a16 = by_dtype[0]["head"], by_dtype[1]["head"]
print(f"stored dtypes {a32.dtype} / {a16.dtype}, {a32.nbytes // len(a32)} / {a16.nbytes // len(a16)} bytes per row")
s32, i32 = fl.search(a32, a32, k=5)
s16, i16 = fl.search(a16, a32, k=5)
print(f"folder ({len(a32)} pictures), top-5 agreement float16 vs float32: {topk_overlap(i32, i16):.3f}, "
      f"largest cosine change below 1e-3: {np.abs(s32 - s16).max() < 1e-3}")

with torch.inference_mode():
    maps = fl.extract(model, x_real, ["head"])["head"]                                   # (12, 1280, 7, 7)
dense = maps.float().permute(0, 2, 3, 1).reshape(-1, maps.shape[1]).cpu().numpy()      # (12·49, 1280)
with h5py.File(tmp / "dense.h5", "w") as f:
    f["f32"], f["f16"] = dense, dense.astype(np.float16)
with h5py.File(tmp / "dense.h5", "r") as f:
    q = dense[::4]
    s32, i32 = fl.search(f["f32"], q, k=10)
    s16, i16 = fl.search(f["f16"], q, k=10)
print(f"position vectors ({dense.shape[0]}, {dense.shape[1]}), {len(q)} queries, top-10 agreement "
      f"float16 vs float32: {topk_overlap(i32, i16):.3f}, largest cosine change below 1e-3: "
      f"{np.abs(s32 - s16).max() < 1e-3}")

# %%
sizes = {n: (tmp / n).stat().st_size for n in ("check.h5", "f16.h5")}
with h5py.File(tmp / "check.h5", "r") as f:
    chunk = f["features/head"].chunks
print(f"HDF5 files for {len(a32)} pictures: float32 {sizes['check.h5'] / 1e3:.0f} kB, float16 "
      f"{sizes['f16.h5'] / 1e3:.0f} kB — featlab writes the float32 rows in chunks of {chunk[0]} rows "
      f"({chunk[0] * chunk[1] * 4 / 1e6:.1f} MB), so a small file is mostly one chunk; on many rows:")
big = rng.standard_normal((10_000, 1280), dtype=np.float32)
for dt in ("float32", "float16"):
    with h5py.File(tmp / f"big_{dt}.h5", "w") as f:
        f["x"] = big.astype(dt)
print(f"10,000 × 1280 features: float32 {(tmp / 'big_float32.h5').stat().st_size / 1e6:.1f} MB, "
      f"float16 {(tmp / 'big_float16.h5').stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# **"HDF5 is about 3× faster than pickle."** The lesson this course grew from claims it. We test
# it on the same 10,000 × 1280 float32 matrix (51 MB), written and read back in three formats:
# HDF5 (`h5py`), `pickle` and NumPy's `.npy`; and, since people often pickle a *dict of one vector
# per file*, that too. Files go through the OS page cache, so this measures the formats' own cost,
# not the disk.

# %%
paths_big = [f"img_{i:05d}.jpg" for i in range(len(big))]
as_dict = dict(zip(paths_big, big))


def h5_write():
    with h5py.File(tmp / "t.h5", "w") as f:
        f["x"] = big


def h5_read():
    with h5py.File(tmp / "t.h5", "r") as f:
        return f["x"][:]


def pkl_write(obj=big, name="t.pkl"):
    with open(tmp / name, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def pkl_read(name="t.pkl"):
    with open(tmp / name, "rb") as fh:
        return pickle.load(fh)


formats = {"HDF5": (h5_write, h5_read),
           "pickle": (pkl_write, pkl_read),
           ".npy": (lambda: np.save(tmp / "t.npy", big), lambda: np.load(tmp / "t.npy")),
           "pickle, dict of vectors": (lambda: pkl_write(as_dict, "d.pkl"), lambda: pkl_read("d.pkl"))}
io_s = {k: {"write": [], "read": []} for k in formats}
for r in range(3):
    for k, (w, rd) in formats.items():
        io_s[k]["write"].extend(seconds(w, repeats=1, warmup=int(r == 0)))
        io_s[k]["read"].extend(seconds(rd, repeats=1, warmup=int(r == 0)))
assert np.array_equal(h5_read(), big) and np.array_equal(pkl_read(), big) and np.array_equal(np.load(tmp / "t.npy"), big)
med = {k: {op: statistics.median(v) for op, v in d.items()} for k, d in io_s.items()}
for k, d in med.items():
    print(f"{k:24s} write {1000 * d['write']:7.1f} ms  read {1000 * d['read']:7.1f} ms")
for op in ("write", "read"):
    ratio = med["pickle"][op] / med["HDF5"][op]
    print(f"{op}: HDF5 is {ratio:.2f}× as fast as pickle (one array) — about 3× faster: "
          f"{'yes' if 2.5 <= ratio <= 3.5 else 'no'}; faster at all: {'yes' if ratio > 1 else 'no'}")
ratio_d = {op: med["pickle, dict of vectors"][op] / med["HDF5"][op] for op in ("write", "read")}
print(f"against a pickled dict of 10,000 vectors HDF5 is {ratio_d['write']:.1f}× (write) and "
      f"{ratio_d['read']:.1f}× (read) as fast — about 3× or more: "
      f"{'yes' if min(ratio_d.values()) >= 2.5 else 'no'}")

# %% [markdown]
# The lines above are this machine's verdict on the claim. Why it is not a law: for **one big
# array**, pickle, `.npy` and HDF5 all copy the same bytes, so a large and stable difference has no
# reason to exist, and the ranking moves with the machine and the load. Pickle pays *per object*, so
# the case where HDF5 can win by a wide margin is a pickled **dict of many small arrays** — the last
# line says by how much here. The reasons to choose HDF5 are not raw speed: it reads *parts* of a file larger than RAM
# (`fl.cache.open_features`, `fl.search` reading in chunks), it can be appended to and resumed, and
# it stores names and metadata next to the numbers. And pickle runs code when it loads: never
# unpickle a file you did not make.

# %% [markdown]
# ## Pitfalls
# - **Timing without `torch.cuda.synchronize()`.** GPU calls return before the work is done:
#   without a synchronisation before reading the clock you measure how fast work is *queued*.
#   The cell below shows the size of the error on a GPU.
# - **The first call.** Section 1 measured it: always warm up before timing, and warm up *each*
#   input shape (a new batch size is a new shape; the last, smaller batch of a folder too).
# - **A contended machine.** The load average printed at the start and at the end says whether
#   other programs shared the cores. Alternate the variants you compare, take medians, and trust
#   ratios measured in one run more than absolute numbers from different runs.
# - **Threads.** PyTorch uses one thread per core for its own work; decoding threads, worker
#   processes and other programs then compete with it. Section 1 measured 1 thread against the
#   default and this notebook kept the faster. `torch.set_num_threads` (or `OMP_NUM_THREADS` before
#   Python starts) pins the number; several processes on one machine should split the cores
#   between them, and the setting that wins on an idle machine can lose on a busy one.
# - **Comparing unlike things.** The same pictures, the same layer, the same batch size and the same
#   precision — and a check that the features agree, as in section 7 — before comparing speeds.

# %%
if ON_GPU:
    xg = x_real.repeat(22, 1, 1, 1)[:256]
    forward(xg); sync()
    t0 = time.perf_counter(); forward(xg); no_sync = time.perf_counter() - t0
    sync()
    with_sync = statistics.median(seconds(lambda: forward(xg), repeats=3))
    print(f"GPU, batch 256: without synchronize {1000 * no_sync:.1f} ms, with {1000 * with_sync:.1f} ms "
          f"({with_sync / no_sync:.0f}× — the first number is the time to queue the work)")
else:
    print("CPU: operations finish before they return, so synchronize changes nothing here")
torch.set_num_threads(n_default)                     # back to PyTorch's default
load_end = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
print(f"load average now {load_end[0]:.1f} (at the start {load[0]:.1f}) on {cores} cores")
shutil.rmtree(tmp, ignore_errors=True)
print(f"notebook run time: {time.time() - t_start:.0f} s")

# %% [markdown]
# **Exercise:** `exercises/12_performance.ipynb` — a `throughput` function with warm-up,
# synchronisation and the median (checked with a fake clock), the top-k agreement of two search
# results, and Amdahl's law, then all three used on the real network.
