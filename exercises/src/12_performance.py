# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercise 12 — Performance: measuring throughput, comparing search results, Amdahl's law
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/12_performance.ipynb`. Fill in each `TODO`, run the cell, then run the
# check below it: it prints ✓ when your function is right, and says what is wrong when it is not.
#
# The checks never measure real speed (that would depend on the machine): they hand your functions
# a fake clock and a fake device whose calls take known times, so a right answer passes everywhere.

# %%
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import featlab as fl

_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. Throughput, measured right
#
# `throughput(fn, n_items, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None)` times
# `fn()`, a call that processes `n_items` items (pictures), and returns **items per second**:
# - call `fn()` `warmup` times without timing it (the first calls pay one-time costs);
# - then `repeats` times: read `clock()`, call `fn()`, call `sync()`, read `clock()` again.
#   `sync()` waits until the device has finished (on a GPU `fn()` only *queues* the work; pass
#   `torch.cuda.synchronize` there). Call `sync()` after the warm-up calls too;
# - return `n_items` divided by the **median** of the `repeats` times (`statistics.median`).
#
# Use the `clock` argument, not `time.perf_counter()` directly: the check passes a fake clock.

# %%
def throughput(fn, n_items, repeats=5, warmup=1, clock=time.perf_counter, sync=lambda: None):
    """Median items/s of fn() (which processes n_items) over `repeats` timed calls after `warmup`."""
    ### BEGIN SOLUTION
    for _ in range(warmup):
        fn()
        sync()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        sync()
        times.append(clock() - t0)
    return n_items / statistics.median(times)
    ### END SOLUTION

# %% tags=["check"]
fl.checks.check_throughput(throughput)

# %% [markdown]
# ## 2. How much do two top-k lists agree?
#
# `fl.search(features, queries, k)` returns `indices`, a `(Q, k)` array: for each query the row
# numbers of its `k` nearest stored vectors. To see whether storing the features as float16 changed
# the results, compare the lists of the two searches.
#
# `topk_agreement(a_idx, b_idx)` takes two `(Q, k)` integer NumPy arrays and returns one number: the
# mean over the `Q` queries of $|A_q \cap B_q| / k$, the share of the `k` ids the two lists have in
# common. The order inside a list does not matter (1.0: the same ids; 0.0: none in common).

# %%
def topk_agreement(a_idx, b_idx):
    """(Q, k), (Q, k) top-k row ids -> mean over queries of |common ids| / k."""
    ### BEGIN SOLUTION
    k = a_idx.shape[1]
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / k for a, b in zip(a_idx, b_idx)]))
    ### END SOLUTION

# %% tags=["check"]
fl.checks.check_topk_agreement(topk_agreement)

# %% [markdown]
# ## 3. Amdahl's law
#
# A part of the work takes the fraction `p` of the time (0 ≤ p ≤ 1) and becomes `s` times faster.
# The rest, `1 - p`, does not change. `amdahl_speedup(p, s)` returns the overall speed-up
#
# $$S = \frac{1}{(1 - p) + p / s}.$$
#
# (`s` may be `float("inf")`: the part then takes no time at all.)

# %%
def amdahl_speedup(p, s):
    """Overall speed-up when the fraction p of the time runs s times faster."""
    ### BEGIN SOLUTION
    return 1 / ((1 - p) + p / s)
    ### END SOLUTION

# %% tags=["check"]
fl.checks.check_amdahl_speedup(amdahl_speedup)

# %% [markdown]
# ## 4. Your functions on the real network
#
# Now with real time on this machine: EfficientNet-Lite0 on the 12 sample pictures, one at a time
# vs in one batch; the share of the time that decoding and resizing take next to the model, and
# what Amdahl's law then promises for a model twice as fast; and whether float16 storage changes
# the top-5 neighbours of every picture. The timings change from run to run — the lines say which
# way they went here.

# %%
model = fl.load_model("efficientnet_lite0")
prep = fl.preprocess_for(model)
dev = fl.device()
sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
pictures = list(fl.sample_images())
x = fl.preprocess(pictures, model)                                           # (12, 3, 224, 224)


def forward(batch):
    with torch.inference_mode():
        return model(batch)


one_by_one = throughput(lambda: [forward(xi[None]) for xi in x], len(x), repeats=3, sync=sync)
batched = throughput(lambda: forward(x), len(x), repeats=3, sync=sync)
print(f"one at a time {one_by_one:.1f} img/s, batch of 12 {batched:.1f} img/s: "
      f"batching faster here: {'yes' if batched > one_by_one else 'no'}")

folder = Path(tempfile.mkdtemp(prefix="featlab_ex12_"))                       # the pictures as JPEG files
jpegs = [folder / f"{name}.jpg" for name in pictures]
for name, path in zip(pictures, jpegs):
    fl.load_image(name).resize((640, 480)).save(path, quality=90)
decode = throughput(lambda: [fl.loader.to_uint8(p, prep) for p in jpegs], len(jpegs), repeats=3)
shutil.rmtree(folder)
p_model = (1 / batched) / (1 / batched + 1 / decode)                         # share of the time per picture
print(f"read + decode + resize 640×480 JPEGs {decode:.1f} img/s; the model is {100 * p_model:.0f} % of the time one after the "
      f"other; a model twice as fast: {amdahl_speedup(p_model, 2):.2f}×, infinitely fast: "
      f"{amdahl_speedup(p_model, float('inf')):.2f}×")

with torch.inference_mode():
    v32 = fl.pool(fl.extract(model, x, ["head"])["head"].float()).cpu().numpy()
_, i32 = fl.search(v32, v32, k=5)
_, i16 = fl.search(v32.astype(np.float16), v32, k=5)
print(f"top-5 agreement, float16 vs float32 storage: {topk_agreement(i32, i16):.3f}")
