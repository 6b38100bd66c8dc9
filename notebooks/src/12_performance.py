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
# - measure throughput (images per second) *correctly*: warm-up, synchronisation, interleaved
#   repeats, the median and the spread, and a verdict with a tie band;
# - find the stage that limits a pipeline (read, decode, resize, forward, write) and predict with
#   Amdahl's law what speeding up one stage can give;
# - *measure* the usual knobs: batch size, `channels_last`, bfloat16, torch threads;
# - write a two-stage pipeline (a thread decoding ahead of the model) and a pipeline per core
#   (each with its own copy of the model) from scratch, check that they give exactly the features
#   of `fl.extract_folder`, then use featlab;
# - choose a storage format with numbers: float16 vs float32 (size, top-k agreement of `fl.search`),
#   HDF5 vs pickle vs `.npy` (write and read time).
#
# **Prerequisites:** `05_feature_maps` (`fl.extract`, layer names), `07_embeddings_retrieval`
# (pooled embeddings, cosine similarity, float16 storage).
# **Run time:** under a minute on a 2-core CPU.
#
# **Every timing in this notebook is measured where it runs.** The text states no timings; it says
# what to look for, and the cells print the numbers. Every speed comparison prints the median ratio
# of interleaved repeats, their range, and one verdict: **better**, **worse** or **no clear
# difference** — "better" only when the median is more than 10 % faster *and* every repeat was
# faster. A difference smaller than that is not worth a decision, and a class whose laptops all print
# "no clear difference" has learned more than one where each prints a different yes or no.
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
import copy
import io
import os
import pickle
import shutil
import statistics
import tempfile
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

model = fl.load_model("efficientnet_lite0")
prep = fl.preprocess_for(model)
PICTURES = list(fl.sample_images())                                  # 12 real pictures
x_real = fl.preprocess(PICTURES, model)                              # (12, 3, 224, 224), on DEV
print(f"preprocessing: resize {prep.resize} ({prep.interpolation}), crop {prep.crop}")

# %% [markdown]
# ## 1. Measuring right
#
# Four rules make a timing mean something:
# 1. **Warm up.** The first call of a model pays for one-time work: memory allocation, the choice
#    of convolution algorithms for this input shape (oneDNN on a CPU, cuDNN on a GPU), lazy imports.
# 2. **Synchronise.** On a GPU, `model(x)` only *queues* the work and returns at once;
#    `torch.cuda.synchronize()` waits until it is done. Without it you time the queueing.
# 3. **Repeat, interleaved, and look at the spread.** Other programs, the OS and the CPU's clock
#    speed make single measurements jump. Run the variants you compare in turn (A, B, A, B, …) so
#    both see the same load, compare them repeat by repeat, and call a difference only when it is
#    larger than the tie band and every repeat agrees.
# 4. **Know your threads.** PyTorch runs a CPU forward pass on one thread per core, and those threads
#    wait for each other at every layer: if another program takes one core away, the others wait.
#    The cell measures 1 thread against the default and keeps the default unless 1 thread is
#    clearly better.

# %%
TIE = 0.10                                       # speed ratios within ±10 % are a tie


def sync():
    """Wait for the device: GPU work is asynchronous (no-op on a CPU)."""
    if DEV.type == "cuda":
        torch.cuda.synchronize()
    elif DEV.type == "mps":
        torch.mps.synchronize()


def timed(fn):
    t0 = time.perf_counter()
    fn()
    sync()                                       # the work is done, not just queued
    return time.perf_counter() - t0


def interleaved(fns, repeats=5, warmup=1):
    """{name: [seconds of each repeat]}; every repeat runs all fns once, in turn, after warm-up."""
    for fn in fns.values():
        for _ in range(warmup):
            timed(fn)
    out = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            out[k].append(timed(fn))
    return out


def compare(t_a, t_b, a="A", b="B"):
    """Speed of a relative to b from paired repeats: median ratio, its range, and a verdict."""
    r = np.asarray(t_b) / np.asarray(t_a)        # > 1: a is faster
    med = float(np.median(r))
    verdict = ("better" if med > 1 + TIE and r.min() > 1 else
               "worse" if med < 1 / (1 + TIE) and r.max() < 1 else "no clear difference")
    print(f"{a} vs {b}: {med:.2f}× the speed (repeats {r.min():.2f}–{r.max():.2f}×, "
          f"tie band ±{100 * TIE:.0f} %) → {verdict}")
    return verdict


def forward(x, m=model):
    with torch.inference_mode():
        return m(x)


# rule 1: the first call on a new input shape vs the steady state, for three new shapes
firsts, steadies = [], []
for b in (5, 6, 7):
    firsts.append(timed(lambda: forward(x_real[:b])))
    steadies.append(statistics.median(timed(lambda: forward(x_real[:b])) for _ in range(3)))
compare(steadies, firsts, "warm calls (median of 3)", "first call, batches of 5, 6, 7")

# rule 4: torch threads, 1 vs the default (one per core)
n_default = torch.get_num_threads()


def with_threads(n):
    def run():
        torch.set_num_threads(n)
        forward(x_real[:2])
    return run


thr = interleaved({"1 thread": with_threads(1), f"{n_default} threads": with_threads(n_default)})
v = compare(thr["1 thread"], thr[f"{n_default} threads"], "1 thread", f"{n_default} threads")
THREADS = 1 if (v == "better" and DEV.type == "cpu") else n_default
torch.set_num_threads(THREADS)
print(f"the rest of this notebook uses {THREADS} torch thread(s)")

# %% [markdown]
# ## 2. Batch size
#
# A batch lets the library run one big matrix operation instead of many small ones and pays the
# per-call overhead (Python, kernel launches, hooks) once per batch. On a GPU, throughput rises
# over a wide range of batch sizes and then flattens when the hardware is busy. On a CPU the gain,
# if any, comes at small batches, and large batches can even be *slower*: their activations no
# longer fit in the CPU's caches. The plot shows which case you are in (median and range of the
# interleaved repeats).

# %%
BATCHES = [1, 4, 16, 64, 256] if ON_GPU else [1, 2, 4, 8]
N_CURVE = 256 if ON_GPU else 8                                        # images per measurement
x_curve = x_real.repeat(N_CURVE // 12 + 1, 1, 1, 1)[:N_CURVE]
curve_s = interleaved({b: (lambda b=b: [forward(c) for c in x_curve.split(b)]) for b in BATCHES}, repeats=5)
curve = {b: N_CURVE / np.array(ts) for b, ts in curve_s.items()}      # images/s of each repeat
med = np.array([np.median(v) for v in curve.values()])
plt.figure(figsize=(5, 3))
plt.errorbar(BATCHES, med, yerr=[med - [v.min() for v in curve.values()], [v.max() for v in curve.values()] - med],
             fmt="o-", capsize=3)
plt.xscale("log", base=2); plt.xlabel("batch size"); plt.ylabel("images / s")
plt.title(f"EfficientNet-Lite0 forward, {DEV.type} (median, range of 5)"); plt.grid(alpha=0.3)
plt.tight_layout(); plt.show()
best = BATCHES[int(np.argmax(med))]
print(f"best median at batch {best}")
if best != 1:
    compare(curve_s[best], curve_s[1], f"batch {best}", "batch 1")

# %% [markdown]
# ## 3. Memory layout: NCHW vs channels_last
#
# A batch `(N, C, H, W)` is stored by default with the width varying fastest (NCHW);
# `channels_last` stores the C values of each pixel next to each other (NHWC), the layout many
# convolution kernels prefer — tensor cores on GPUs in particular. The *values* do not change,
# so the features must be the same; only the speed may. (`fl.extract_folder` uses it by
# default, after measurements in `benchmarks/README.md` — measure before you believe.)

# %%
def pooled(x, m=model):
    """(N, 3, 224, 224) -> (N, 1280) float32 average-pooled `head` features, on the CPU."""
    with torch.inference_mode():
        return fl.pool(fl.extract(m, x, ["head"])["head"].float()).cpu()


N_LAYOUT = 64 if ON_GPU else 12
x_lay = x_real.repeat(N_LAYOUT // 12 + 1, 1, 1, 1)[:N_LAYOUT]
x_cl = x_lay.contiguous(memory_format=torch.channels_last)
model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
lay = interleaved({"NCHW": lambda: forward(x_lay), "channels_last": lambda: forward(x_cl, model_cl)})
compare(lay["channels_last"], lay["NCHW"], "channels_last", "NCHW")
ref32 = pooled(x_real)

# %%
# NBVAL_CHECK_OUTPUT
cos = torch.nn.functional.cosine_similarity(pooled(x_real.contiguous(memory_format=torch.channels_last), model_cl),
                                            ref32).min().item()
print(f"same features in both layouts (lowest cosine over the 12 pictures above 0.9999): {cos > 0.9999}")
del model_cl

# %% [markdown]
# ## 4. Precision: float32 vs bfloat16
#
# Under `torch.autocast`, convolutions and matrix products run in a 16-bit format while the rest
# stays float32. bfloat16 keeps float32's range with 8 bits of mantissa (about 3 decimal digits);
# float16 (tried on a GPU only: on most CPUs it is very slow) has 11 bits but a range that ends at
# 65504. On GPUs with tensor cores this usually doubles the speed. On a CPU it depends on the
# instruction set: without native bfloat16 support the 16-bit path converts back and forth and can
# be *slower* than float32. Either way the features change a little: the plot puts the speed next to
# the cosine of each picture's vector to its float32 vector.

# %%
N_PREC = 64 if ON_GPU else 12
x_prec = x_real.repeat(N_PREC // 12 + 1, 1, 1, 1)[:N_PREC]
dtypes = {"float32": None, "bfloat16": torch.bfloat16}
if ON_GPU:
    dtypes["float16"] = torch.float16


def under(dt, fn):
    with torch.autocast(DEV.type, dtype=dt, enabled=dt is not None):
        return fn()


prec_s = interleaved({n: (lambda dt=dt: under(dt, lambda: forward(x_prec))) for n, dt in dtypes.items()})
prec_cos = {n: torch.nn.functional.cosine_similarity(under(dt, lambda: pooled(x_real)), ref32).numpy()
            for n, dt in dtypes.items()}
for n in dtypes:
    if n != "float32":
        print(f"{n}: lowest cosine to float32 over the 12 pictures {prec_cos[n].min():.4f}")
        compare(prec_s[n], prec_s["float32"], n, "float32")

fig, ax = plt.subplots(figsize=(5.5, 3))
for n in dtypes:
    r = np.asarray(prec_s["float32"]) / np.asarray(prec_s[n])
    ax.errorbar(np.median(r), 1 - prec_cos[n].min(), xerr=[[np.median(r) - r.min()], [r.max() - np.median(r)]],
                fmt="o", capsize=3, label=n)
    ax.scatter(np.full(12, np.median(r)), 1 - prec_cos[n], s=8, alpha=0.4)
ax.set_yscale("symlog", linthresh=1e-6); ax.set_xlabel("speed relative to float32 (median, range)")
ax.set_ylabel("1 − cosine to float32"); ax.axvspan(1 / (1 + TIE), 1 + TIE, color="grey", alpha=0.15, label="tie band")
ax.legend(fontsize=8); ax.set_title("what the speed costs"); fig.tight_layout(); plt.show()

# %% [markdown]
# A cosine a little below 1 is not nothing: whether it matters is a question for your task (section 7
# measures one such question, top-k agreement, for float16 *storage*). Never mix features computed
# in different precisions (or on different devices) in one index without checking.
#
# ## 5. A folder of JPEG files, and where the time goes
#
# From here on, the input is what a user has: JPEG files on disk. We write the 12 sample pictures at
# two typical photo sizes, 640×480 and 1024×768 (quality 90), into a temporary folder. Then we take
# 4 files and time each stage on its own, one after the other: **read** the bytes, **decode** the
# JPEG, **resize** (the short side to 256, bicubic, as the weights expect) and centre-**crop**, stack
# and **normalise**, the **forward** pass to the pooled `head`, and **write** the vectors to HDF5.

# %%
tmp = Path(tempfile.mkdtemp(prefix="featlab_nb12_"))
folder = tmp / "jpegs"
(folder / "all").mkdir(parents=True)
for i, name in enumerate(PICTURES):
    for size in ((640, 480), (1024, 768)):
        pic = ImageOps.fit(fl.load_image(name), size, Image.Resampling.LANCZOS)
        pic.save(folder / "all" / f"{name}_{size[0]}.jpg", quality=90)
rels = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))
files = [folder / r for r in rels]


def read(path):
    return Path(path).read_bytes()


def decode_bytes(data):
    return Image.open(io.BytesIO(data)).convert("RGB")      # convert() forces the actual decoding


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
stage_s = interleaved(stages, repeats=3)
h5.close()
per_image = {k: statistics.median(v) / len(batch_files) for k, v in stage_s.items()}
total = sum(per_image.values())
slowest = max(per_image, key=per_image.get)
p_fwd = per_image["forward"] / total
print(f"slowest stage: {slowest}. One after the other: {1 / total:.1f} img/s. "
      f"The forward pass is {100 * p_fwd:.0f} % of the time: an infinitely fast model would give at most "
      f"{1 / (1 - p_fwd):.2f}× (Amdahl), a model twice as fast {1 / ((1 - p_fwd) + p_fwd / 2):.2f}×.")
fig, ax = plt.subplots(figsize=(6, 2.6))
names = list(per_image)[::-1]
lo = [1000 * min(stage_s[k]) / 4 for k in names]
hi = [1000 * max(stage_s[k]) / 4 for k in names]
mid = [1000 * per_image[k] for k in names]
ax.barh(names, mid, xerr=[np.subtract(mid, lo), np.subtract(hi, mid)], color="tab:blue", capsize=2)
for y, (m, h) in enumerate(zip(mid, hi)):
    ax.text(h, y, f" {100 * m / 1000 / total:.0f} %", va="center", fontsize=8)
ax.set_xlabel("ms per image (batch of 4; median, range of 3)"); ax.set_title(f"one extraction, {DEV.type}")
fig.tight_layout(); plt.show()

# %% [markdown]
# **Resize only what the crop keeps.** Resize + crop computes the whole resized picture (341 × 256
# for these 4:3 files) and then throws away the columns outside the 224-pixel crop. Pillow can
# resize a *box* of the picture: the same filter, the same sample positions, only the columns
# kept. (Cropping the rows in the box as well makes Pillow run its two passes in the other order,
# and rounding then moves pixels by a few levels; so rows are resized in full and cropped after.)
# featlab's loaders do this; section 6 checks that the features agree exactly.

# %%
def resize_crop_box(img):
    """Landscape picture -> (3, 224, 224) uint8, resizing only the crop's columns."""
    w, h = img.size
    out_w, out_h = int(prep.resize * w / h), prep.resize            # torchvision's sizes ...
    left, top = round((out_w - prep.crop) / 2), round((out_h - prep.crop) / 2)   # ... and offsets
    sx = w / out_w
    img = img.resize((prep.crop, out_h), Image.Resampling.BICUBIC,
                     box=(left * sx, 0, (left + prep.crop) * sx, h))
    return torch.from_numpy(np.asarray(img)[top:top + prep.crop].copy()).permute(2, 0, 1)


diff = max((resize_crop(im).int() - resize_crop_box(im).int()).abs().max().item() for im in imgs)
box_s = interleaved({"full": lambda: [resize_crop(im) for im in imgs],
                     "box": lambda: [resize_crop_box(im) for im in imgs]})
compare(box_s["box"], box_s["full"], "box only", "full resize + crop")
print(f"largest pixel difference {diff} of 255")

# %% [markdown]
# The decode-side stages (read, decode, resize, normalise) can run **at the same time** as the
# forward pass, on other threads, if the machine has cores to spare. A CPU spends most of its time
# in the network; on a GPU the model becomes so fast that decoding and resizing can take over —
# which is why featlab decodes JPEGs *on* the GPU there.
#
# ## 6. From scratch: a two-stage pipeline and a pipeline per core
#
# **Two stages:** a thread reads and decodes batch $i+1$ while the main thread runs the model on
# batch $i$. Threads work here because Pillow and PyTorch release Python's global lock while they
# decode, resize or compute.
# **One pipeline per core** gives up on overlap: two threads each take a whole batch, decode it, and
# run it through *their own copy* of the model with one PyTorch thread each. No stage waits for
# another, and no decoding thread interrupts a parallel operation that needs every core.
# `fl.extract_folder` does this on a CPU with 2 or more cores.
# All versions must give the features `fl.extract_folder` stores (asked for float32, NCHW and
# Pillow decoding, as here).

# %%
def load_one(path):
    return resize_crop_box(decode_bytes(read(path)))     # file -> (3, 224, 224) uint8


def sequential(paths, batch_size=4):
    return torch.cat([pooled(normalise(torch.stack([load_one(p) for p in paths[i:i + batch_size]])).to(DEV))
                      for i in range(0, len(paths), batch_size)])


def two_stage(paths, batch_size=4):
    batches = [paths[i:i + batch_size] for i in range(0, len(paths), batch_size)]
    out = []
    with ThreadPoolExecutor(1) as pool:
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
    fl.extract_folder(model, folder, "head", path, batch_size=4, progress=False, **kw)
    paths, feats = fl.load_features(path)
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
print(f"{tuple(f_fl.shape)} features: two-stage = per core = sequential = fl.extract_folder "
      f"(lowest cosine above 0.9999: {cos > 0.9999})")

# %% [markdown]
# Now the speed, all on the same 24 files and batch size 4, interleaved. `fl.extract_folder` adds
# what a real run needs (skipped unreadable files, resumable HDF5 writing); it runs once like the
# code above (float32, NCHW: like with like) and once with its defaults, which add `channels_last`
# (section 3) and, on a GPU, bfloat16 and GPU decoding.

# %%
runs = {"sequential": lambda: sequential(files), "two-stage": lambda: two_stage(files)}
if not ON_GPU:
    runs["per core"] = lambda: per_core(files)
runs["fl.extract_folder, NCHW"] = lambda: featlab_extract("speed.h5", channels_last=False)
runs["fl.extract_folder, defaults"] = lambda: featlab_extract("speed.h5")
pipe = interleaved(runs, repeats=3, warmup=0)        # the model is warm; the files are in the page cache
for k in runs:
    if k != "sequential":
        compare(pipe[k], pipe["sequential"], k, "sequential")
compare(pipe["fl.extract_folder, defaults"], pipe["fl.extract_folder, NCHW"],
        "fl.extract_folder, defaults", "fl.extract_folder, NCHW")
decode_side = (per_image["read"] + per_image["decode"] + per_image["normalise"]
               + statistics.median(box_s["box"]) / len(imgs))
print(f"sequential {len(files) / statistics.median(pipe['sequential']):.0f} img/s; predicted from section 5: "
      f"one after the other {1 / (decode_side + per_image['forward'] + per_image['write']):.0f} img/s, "
      f"perfectly overlapped at most {1 / max(decode_side, per_image['forward'] + per_image['write']):.0f} img/s")

# %% [markdown]
# Overlap only helps when the stages use *different* resources. On a 2-core CPU the forward pass
# already keeps both cores busy, so the decoding thread takes its time from the model, and a
# decoding thread scheduled in the middle of a parallel operation stalls it. One pipeline per core
# overlaps nothing inside a stream; the streams fill the cores, a one-thread forward pass spends
# nothing on coordinating threads, and no decoding interrupts it — at the cost of one more copy of
# the model in memory per stream. The verdicts above say whether any of this was worth it where you
# ran it. On a GPU machine the model runs on the GPU and decoding on the CPU cores: there the two
# stages really run side by side.
#
# ## 7. Storage: float16 vs float32, and HDF5 vs pickle vs `.npy`
#
# **float16 halves the file.** Does it change search results? We store the features of the folder
# with `fl.extract_folder(..., dtype="float16")` and compare top-5 lists of `fl.search`. With 24
# pictures that is an easy test, so we add a harder one: the 7×7 = 49 position vectors of the 12
# pictures' `head` maps (588 vectors, neighbours within a picture are near-duplicates), the top-10
# neighbours of every 4th one.

# %%
# NBVAL_CHECK_OUTPUT
def topk_overlap(a_idx, b_idx):
    """Mean share of the k ids two (Q, k) top-k lists have in common (order ignored)."""
    k = a_idx.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(a_idx, b_idx)]))


featlab_extract("f16.h5", dtype="float16", precision="float32", channels_last=False, jpeg_on_device=False)
a32, a16 = (fl.load_features(tmp / n)[1]["head"] for n in ("check.h5", "f16.h5"))
print(f"stored dtypes {a32.dtype} / {a16.dtype}, {a32.nbytes // len(a32)} / {a16.nbytes // len(a16)} bytes per row")
s32, i32 = fl.search(a32, a32, k=5)
s16, i16 = fl.search(a16, a32, k=5)
print(f"folder ({len(a32)} pictures), top-5 agreement float16 vs float32: {topk_overlap(i32, i16):.3f}, "
      f"largest cosine change below 1e-3: {np.abs(s32 - s16).max() < 1e-3}")

with torch.inference_mode():
    maps = fl.extract(model, x_real, ["head"])["head"]                                   # (12, 1280, 7, 7)
dense = maps.float().permute(0, 2, 3, 1).reshape(-1, maps.shape[1]).cpu().numpy()      # (12·49, 1280)
q = dense[::4]
s32, i32 = fl.search(dense, q, k=10)
s16, i16 = fl.search(dense.astype(np.float16), q, k=10)
print(f"position vectors ({dense.shape[0]}, {dense.shape[1]}), {len(q)} queries, top-10 agreement "
      f"float16 vs float32: {topk_overlap(i32, i16):.3f}, largest cosine change below 1e-3: "
      f"{np.abs(s32 - s16).max() < 1e-3}")

# %% [markdown]
# **"HDF5 is about 3× faster than pickle"** is a claim you will meet in tutorials. We test it on a
# 10,000 × 1280 float32 matrix (51 MB), written and read back in three formats: HDF5 (`h5py`),
# `pickle` and NumPy's `.npy`; and, since people often pickle a *dict of one vector per file*, that
# too. Files go through the OS page cache, so this measures the formats' own cost, not the disk.

# %%
big = rng.standard_normal((10_000, 1280), dtype=np.float32)
as_dict = {f"img_{i:05d}.jpg": row for i, row in enumerate(big)}


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
           "pickle dict": (lambda: pkl_write(as_dict, "d.pkl"), lambda: pkl_read("d.pkl"))}
io_s = interleaved({f"{k} {op}": fn for k, fns in formats.items() for op, fn in zip(("write", "read"), fns)})
assert np.array_equal(h5_read(), big) and np.array_equal(pkl_read(), big) and np.array_equal(np.load(tmp / "t.npy"), big)
print(f"file sizes: HDF5 {(tmp / 't.h5').stat().st_size / 1e6:.1f} MB, .npy {(tmp / 't.npy').stat().st_size / 1e6:.1f} MB; "
      f"as float16 the same matrix is {big.astype(np.float16).nbytes / 1e6:.1f} MB")
for other in ("pickle", ".npy", "pickle dict"):
    for op in ("write", "read"):
        compare(io_s[f"HDF5 {op}"], io_s[f"{other} {op}"], f"HDF5 {op}", f"{other} {op}")

# %% [markdown]
# Why "about 3×" is not a law: for **one big array**, pickle, `.npy` and HDF5 all copy the same
# bytes, so a large and stable difference has no reason to exist, and the ranking moves with the
# machine and the load. Pickle pays *per object*, so the case where HDF5 can win by a wide margin is
# a pickled **dict of many small arrays**. The reasons to choose HDF5 are not raw speed: it reads
# *parts* of a file larger than RAM (`fl.open_features`, `fl.search` reading in chunks), it can be
# appended to and resumed, and it stores names and metadata next to the numbers. And pickle runs
# code when it loads: never unpickle a file you did not make.
#
# ## Pitfalls
# - **Timing without `torch.cuda.synchronize()`.** GPU calls return before the work is done:
#   without a synchronisation you measure how fast work is *queued* (the cell below shows it on a GPU).
# - **The first call.** Warm up *each* input shape (a new batch size is a new shape; the last,
#   smaller batch of a folder too).
# - **A contended machine.** The load average printed at the start and at the end says whether
#   other programs shared the cores. Interleave, compare repeat by repeat, and read "no clear
#   difference" as an answer, not a failure.
# - **Threads.** Decoding threads, worker processes and other programs compete with PyTorch's own
#   threads; several processes on one machine should split the cores (`torch.set_num_threads`).
# - **Comparing unlike things.** The same pictures, layer, batch size and precision — and a check that
#   the features agree, as in section 6 — before comparing speeds.

# %%
if ON_GPU:
    xg = x_real.repeat(22, 1, 1, 1)[:256]
    forward(xg); sync()
    t0 = time.perf_counter(); forward(xg); no_sync = time.perf_counter() - t0
    sync()
    with_sync = statistics.median(timed(lambda: forward(xg)) for _ in range(3))
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
