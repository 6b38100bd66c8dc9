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
# # 01 — The mathematics of convolution
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - write a convolutional layer as the sum it is — cross-correlation over space and channels — and
#   check it, number for number, against PyTorch;
# - compute it three ways (plain loops, im2col + one matrix product, `F.conv2d`) with stride,
#   padding, dilation and groups, and know why libraries use the last two;
# - predict every layer's output size with one formula (including ceil-mode pooling and
#   TensorFlow-style "same" padding);
# - see that a 1×1 convolution is a `Linear` applied to every pixel;
# - measure what memory layout (NCHW vs channels-last) and precision (float32 vs bfloat16/float16)
#   change: values, speed, features.
#
# **Prerequisites:** `00_setup_and_tour` (loading the model and pictures). **Run time:** about 45 s
# on a 2-core CPU.
#
# ## The idea
#
# A convolutional layer slides a small weight tensor over the input and, at every position, takes a
# dot product with the patch under it. For input $x$ with $C_{in}$ channels, weight $W$ of shape
# $(C_{out}, C_{in}, k_H, k_W)$, bias $b$, stride $s$, padding $p$ (zeros) and dilation $d$:
#
# $$y[n, c, h, w] = b[c] + \sum_{c'=0}^{C_{in}-1}\sum_{i=0}^{k_H-1}\sum_{j=0}^{k_W-1}
#   x[n, c', \; s h + d i - p, \; s w + d j - p]\; W[c, c', i, j].$$
#
# With stride 1, no padding and 1-based indices this is the form many textbooks write,
# $y[h,w,c] = \sum_i \sum_j \sum_{c'} x[h+i-1, w+j-1, c']\, W[i,j,c',c] + b[c]$ — in
# channels-last order. Note that the kernel is **not flipped**: deep-learning "convolution" is the
# signal-processing *cross-correlation*. With `groups = g`, output channel $c$ only sums over the
# $C_{in}/g$ input channels of its own group (depth-wise convolution: $g = C_{in}$).

# %%
import copy
import time

import matplotlib.pyplot as plt
import numpy as np
import scipy.signal
import torch
import torch.nn.functional as F
from torch import nn

import featlab as fl

torch.manual_seed(0)
np.random.seed(0)
plt.rcParams["figure.dpi"] = 72
dev = fl.device()


# %% [markdown]
# ## From scratch: one channel, four loops
#
# The smallest honest version: one image, one input and one output channel, stride 1, no padding.

# %%
# NBVAL_CHECK_OUTPUT
def corr2d(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(H, W) image, (kH, kW) kernel -> (H-kH+1, W-kW+1) cross-correlation."""
    kh, kw = k.shape
    out = torch.zeros(x.shape[0] - kh + 1, x.shape[1] - kw + 1, dtype=x.dtype)
    for h in range(out.shape[0]):
        for w in range(out.shape[1]):
            out[h, w] = sum(x[h + i, w + j] * k[i, j] for i in range(kh) for j in range(kw))
    return out

x = torch.arange(25, dtype=torch.float64).reshape(5, 5)
k = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0]], dtype=torch.float64)   # a 2×3 kernel
ours = corr2d(x, k)
torch_says = F.conv2d(x[None, None], k[None, None])[0, 0]
assert torch.equal(ours, torch_says)
print(ours)
# scipy knows both operations: correlate2d is what PyTorch computes, convolve2d flips the kernel
print("equals scipy correlate2d:", np.allclose(ours, scipy.signal.correlate2d(x, k, mode="valid")))
print("equals scipy convolve2d: ", np.allclose(ours, scipy.signal.convolve2d(x, k, mode="valid")))
print("convolve2d with flipped kernel:",
      np.allclose(ours, scipy.signal.convolve2d(x, k.flip(0, 1), mode="valid")))

# %% [markdown]
# `fl.conv2d_loops` is the same loops, extended to batches, channels, stride, padding, dilation and
# groups. Two faster formulations compute the same sum:
#
# - **im2col** (`fl.conv2d_unfold`): `F.unfold` copies every patch into a column, giving a
#   $(C_{in} k_H k_W) \times (H' W')$ matrix; the weight, flattened to $C_{out} \times (C_{in} k_H
#   k_W)$, multiplies all columns in one matrix product. That is how classic libraries turned
#   convolution into fast BLAS calls;
# - **`F.conv2d`** (`fl.conv2d`): PyTorch's kernels (oneDNN on CPU, cuDNN on GPU).
#
# We check that all three agree on a grid of settings, in float64 so that any disagreement larger
# than rounding shows.

# %%
# NBVAL_CHECK_OUTPUT
settings = [  # (C_in, C_out, kernel, stride, padding, dilation, groups)
    (3, 4, (3, 3), 1, 0, 1, 1),
    (3, 4, (3, 3), 1, 1, 1, 1),
    (3, 4, (3, 3), 2, 1, 1, 1),
    (3, 4, (1, 5), 1, (0, 2), 1, 1),
    (3, 4, (3, 3), 1, 2, 2, 1),
    (4, 6, (3, 3), 1, 1, 1, 2),
    (6, 6, (3, 3), 2, 1, 1, 6),
]
print(f"{'C_in C_out kernel stride padding dilation groups':50s} out shape      max |loops-F|  max |unfold-F|")
for c_in, c_out, kern, s, p, d, g in settings:
    xx = torch.randn(2, c_in, 9, 8, dtype=torch.float64)
    ww = torch.randn(c_out, c_in // g, *kern, dtype=torch.float64)
    bb = torch.randn(c_out, dtype=torch.float64)
    ref = F.conv2d(xx, ww, bb, stride=s, padding=p, dilation=d, groups=g)
    e_loop = (fl.conv2d_loops(xx, ww, bb, s, p, d, g) - ref).abs().max().item()
    e_unf = (fl.conv2d_unfold(xx, ww, bb, s, p, d, g) - ref).abs().max().item()
    assert e_loop < 1e-10 and e_unf < 1e-10
    name = f"{c_in:4d} {c_out:4d}  {str(kern):7s} {s!s:6s} {p!s:7s} {d!s:8s} {g}"
    print(f"{name:50s} {str(tuple(ref.shape)):14s} {'< 1e-10':14s} {'< 1e-10'}")

# %% [markdown]
# ### What im2col costs
#
# im2col trades memory for speed: each input value is copied into up to $k_H k_W$ columns.
# The cell below measures the size of the column matrix for a typical early layer.

# %%
# NBVAL_CHECK_OUTPUT
xx = torch.randn(1, 64, 56, 56)
cols = F.unfold(xx, kernel_size=3, padding=1)
print("input :", tuple(xx.shape), f"{xx.numel() * 4 / 2**20:.2f} MiB")
print("im2col:", tuple(cols.shape), f"{cols.numel() * 4 / 2**20:.2f} MiB",
      f"= {cols.numel() / xx.numel():.2f} × the input")


# %% [markdown]
# How much faster? A timing is noisy: other programs, caches and the CPU's clock move it from run
# to run. So every speed comparison in this notebook runs the two contenders alternately several
# times, prints the median time of each, the ratio B/A with a 95 % bootstrap interval over the
# repeats, and a verdict with a **tie band of ±5 %**: "better" (B faster) only if the whole interval
# lies below 0.95, "worse" only if it lies above 1.05, otherwise "no clear difference". Timings
# depend on your CPU, so these outputs are not compared by the tests. The loops and `F.conv2d` are
# timed on one thread, so that only the algorithm differs: a convolution this small, spread over
# several threads, spends most of its time waiting for them — on a busy computer above all.

# %%
def compare_times(fn_a, fn_b, repeats=7, band=0.05, seed=0):
    """Run fn_a and fn_b alternately; -> (median a, median b, ratio b/a, (low, high), verdict for B)."""
    fn_a(); fn_b()                                             # warm-up: kernel selection, caches
    ta, tb = [], []
    for _ in range(repeats):
        for fn, ts in ((fn_a, ta), (fn_b, tb)):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    log_ratio = np.log(np.array(tb) / np.array(ta))            # paired: one ratio per repeat
    rng = np.random.default_rng(seed)
    boot = rng.choice(log_ratio, size=(2000, repeats)).mean(1)
    lo, hi = np.exp(np.percentile(boot, [2.5, 97.5]))
    # tie band ±5 %: "better" if the interval lies below 0.95, "worse" if above 1.05
    verdict = "better" if hi < 1 - band else "worse" if lo > 1 + band else "no clear difference"
    return np.median(ta), np.median(tb), np.exp(log_ratio.mean()), (lo, hi), verdict


def report(name_a, name_b, result, unit=1e3):
    ta, tb, ratio, (lo, hi), verdict = result
    num = lambda v: f"{v:.3g}" if v < 100 else f"{v:.0f}"     # 3 significant digits, no 1e+03
    print(f"{name_a} {num(ta * unit)} ms | {name_b} {num(tb * unit)} ms | time ratio {num(ratio)} "
          f"(95 % interval {num(lo)} to {num(hi)}) -> {name_b}: {verdict}")


small_x, small_w = torch.randn(1, 3, 16, 16), torch.randn(8, 3, 3, 3)
big_x, big_w = torch.randn(1, 64, 56, 56), torch.randn(64, 64, 3, 3)
n_threads = torch.get_num_threads()
torch.set_num_threads(1)                                      # one thread each: only the algorithm differs
report("loops", "F.conv2d", compare_times(lambda: fl.conv2d_loops(small_x, small_w, padding=1),
                                          lambda: fl.conv2d(small_x, small_w, padding=1), repeats=3))
torch.set_num_threads(n_threads)
report("unfold", "F.conv2d", compare_times(lambda: fl.conv2d_unfold(big_x, big_w, padding=1),
                                           lambda: fl.conv2d(big_x, big_w, padding=1)))

# %% [markdown]
# Read the verdict lines: `F.conv2d` is **better** than the plain loops, many times faster (see the
# time ratio and its interval); whether im2col loses to `F.conv2d` on a real layer depends on your
# CPU and on what else it is doing. In the stored output it does: the second verdict line says
# **better** for `F.conv2d`.

# %% [markdown]
# ## Output size
#
# Along each axis a window of extent $d(k-1)+1$ slides over $n + 2p$ padded values in steps of $s$:
#
# $$n_{out} = \left\lfloor \frac{n + 2p - d(k-1) - 1}{s} \right\rfloor + 1 .$$
#
# Pooling layers with `ceil_mode=True` round up instead (but never start a window in the right
# padding). `fl.conv_output_size` implements both. We check it on **every** convolution and pooling
# layer of the pretrained EfficientNet-Lite0 and of a ResNet-18 (random weights: only shapes matter),
# by recording each layer's real input and output size with forward hooks.

# %%
model = fl.load_model("efficientnet_lite0")

def layer_sizes(net: nn.Module, size: int = 224):
    """[(path, module, input H, output H)] for every Conv2d / MaxPool2d / AvgPool2d in ``net``."""
    rows, handles = [], []
    for path, m in net.named_modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            hook = lambda m, inp, out, path=path: rows.append((path, m, inp[0].shape[-1], out.shape[-1]))
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            net(torch.zeros(1, 3, size, size, device=fl.device()))
    finally:
        for h in handles:
            h.remove()
    return rows

def predicted(m: nn.Module, n: int) -> int:
    if isinstance(m, nn.Conv2d):
        return fl.conv_output_size(n, m.kernel_size[0], m.stride[0], m.padding[0], m.dilation[0])
    return fl.conv_output_size(n, m.kernel_size, m.stride, m.padding, ceil_mode=m.ceil_mode)


# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
resnet = fl.load_model("resnet18", pretrained=False)
for name, net in [("EfficientNet-Lite0", model), ("ResNet-18", resnet)]:
    rows = layer_sizes(net)
    wrong = [(p, type(m).__name__, n, out, predicted(m, n)) for p, m, n, out in rows if predicted(m, n) != out]
    print(f"{name}: {len(rows)} conv/pool layers, formula right for {len(rows) - len(wrong)}")
    for p, kind, n, out, pred in wrong:
        print(f"   {p:22s} {kind:11s} input {n:3d}: real output {out:3d}, formula {pred:3d}")

# %% [markdown]
# The formula is right everywhere except for EfficientNet-Lite0's `Conv2dSame` layers. They come from
# TensorFlow, whose `padding="same"` pads *at run time* and *asymmetrically*: the module's `padding`
# attribute says 0, but the forward pass first adds just enough zeros — more at the bottom/right —
# that the output is $\lceil n / s \rceil$. The cell below checks that rule on those layers, and
# shows the padding TensorFlow adds: $\max\big((\lceil n/s\rceil - 1)s + d(k-1) + 1 - n,\ 0\big)$ in
# total, the smaller half on top.

# %%
# NBVAL_CHECK_OUTPUT
for p, m, n, out in layer_sizes(model):
    if type(m).__name__ == "Conv2dSame":
        k, s, d = m.kernel_size[0], m.stride[0], m.dilation[0]
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        assert out == -(-n // s) == fl.conv_output_size(n + total, k, s, 0, d)
        print(f"{p:22s} k={k} s={s}: input {n:3d} -> ceil(n/s) = {out:3d};"
              f" pads {total // 2} on top, {total - total // 2} at the bottom")

# %% [markdown]
# ## A 1×1 convolution is a Linear layer on every pixel
#
# With $k_H = k_W = 1$ the sum over $i, j$ disappears: $y[n,c,h,w] = b[c] + \sum_{c'} W[c,c']\,
# x[n,c',h,w]$ — the same matrix applied to the $C_{in}$-vector of every pixel. So reshape the map to
# $(N \cdot H \cdot W, C_{in})$ rows, apply `F.linear`, reshape back: that is `fl.conv1x1_as_linear`.
# We check it on EfficientNet-Lite0's real 1×1 head convolution (320 → 1280 channels) and real
# features of a real picture, then count how much of the network is made of 1×1 convolutions.

# %%
# NBVAL_CHECK_OUTPUT
pics = ["chelsea", "coffee", "astronaut", "rocket"]
x = fl.preprocess(pics, model)
feats = fl.extract(model, x, ["blocks.6", "conv_head"])
head = model.conv_head
as_linear = fl.conv1x1_as_linear(feats["blocks.6"], head.weight, head.bias)
print("input", tuple(feats["blocks.6"].shape), "-> output", tuple(as_linear.shape))
print("1×1 conv == Linear on pixels:", torch.allclose(as_linear, feats["conv_head"], atol=1e-4))

convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
one_by_one = [m for m in convs if m.kernel_size == (1, 1)]
params = lambda ms: sum(p.numel() for m in ms for p in m.parameters())
print(f"1×1 convolutions: {len(one_by_one)} of {len(convs)} conv layers, "
      f"{params(one_by_one) / params(convs):.1%} of all conv weights")

# %% [markdown]
# ## Memory layout: NCHW and channels-last
#
# A tensor's shape says nothing about how its numbers lie in memory; its *strides* do (how many
# elements to skip to move one step along each axis). PyTorch's default is NCHW: a whole channel
# plane is contiguous. `channels_last` keeps the same shape (N, C, H, W) but stores the C values of
# each pixel next to each other (NHWC in memory), which many CPU and GPU kernels prefer.

# %%
# NBVAL_CHECK_OUTPUT
x_cl = x.contiguous(memory_format=torch.channels_last)
print("shape  NCHW:", tuple(x.shape), "  channels_last:", tuple(x_cl.shape))
print("stride NCHW:", x.stride(), "  channels_last:", x_cl.stride())
model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
with torch.inference_mode():
    logits = model(x)
    logits_cl = model_cl(x_cl)
print("same logits (atol 1e-4):", torch.allclose(logits, logits_cl, atol=1e-4))
print("same top-1 for all pictures:", torch.equal(logits.argmax(1), logits_cl.argmax(1)))


# %% [markdown]
# Same numbers (up to float rounding: the sums are added in a different order). The speed is what
# may differ, and which layout wins depends on the CPU, the library version, the layer type
# (depth-wise convolutions behave differently from dense ones) and on what else the computer is
# doing — measure before converting a model. The verdicts below are for the computer that ran this
# notebook; yours may differ.

# %%
def forward(net, inp):
    with torch.inference_mode():
        return net(inp)

report("Lite0 NCHW", "channels_last", compare_times(lambda: forward(model, x[:2]), lambda: forward(model_cl, x_cl[:2])))
conv3 = nn.Conv2d(64, 64, 3, padding=1).to(dev)
conv3_cl = copy.deepcopy(conv3).to(memory_format=torch.channels_last)
big_cl = big_x.to(dev, memory_format=torch.channels_last)
report("3×3 conv NCHW", "channels_last", compare_times(lambda: forward(conv3, big_x.to(dev)), lambda: forward(conv3_cl, big_cl)))

# %% [markdown]
# ## Precision: float32, bfloat16, float16
#
# Half-size floats halve memory and, on hardware built for them, double speed or more. They keep
# fewer significant bits: float16 has a 10-bit mantissa and a small range, bfloat16 keeps float32's
# range but only 7 mantissa bits. The machine epsilon (gap between 1 and the next number) says how
# many digits survive:

# %%
# NBVAL_CHECK_OUTPUT
for dt in (torch.float32, torch.bfloat16, torch.float16):
    fi = torch.finfo(dt)
    print(f"{str(dt):15s} eps {fi.eps:.3g}  max {fi.max:.3g}  ~{-np.log10(fi.eps):.1f} decimal digits")

# %% [markdown]
# What does that do to a whole network? We run the pretrained model in each precision on the same
# four pictures and compare logits, pooled features (the 1280-d vector before the classifier) and the
# top-1 class with float32. float16 convolutions are slow or missing on some CPUs, so that run is
# guarded. (Exact error values depend on the CPU's kernels, so this cell's output is not compared.)

# %%
ref = fl.extract(model, x, ["global_pool", "classifier"])
print(f"{'dtype':15s} max|Δlogit|  rel. error  cos(features)  top-1 agrees")
lows = {}
for dt in (torch.bfloat16, torch.float16):
    try:
        low = copy.deepcopy(model).to(dt)
        out = fl.extract(low, x.to(dt), ["global_pool", "classifier"])
    except (RuntimeError, NotImplementedError) as e:
        print(f"{str(dt):15s} not supported on this device: {str(e)[:60]}")
        continue
    lg, f = out["classifier"].float(), out["global_pool"].float()
    err = (lg - ref["classifier"]).abs().max().item()
    rel = ((lg - ref["classifier"]).norm() / ref["classifier"].norm()).item()
    cos = F.cosine_similarity(f, ref["global_pool"], dim=1).min().item()
    agree = (lg.argmax(1) == ref["classifier"].argmax(1)).float().mean().item()
    print(f"{str(dt):15s} {err:11.3f}  {rel:10.4f}  {cos:13.5f}  {agree:.0%}")
    lows[dt] = low

# %% [markdown]
# And the speed? Half precision is faster only where the hardware has fast half-precision units
# (recent GPUs, some recent CPUs); elsewhere it is emulated and often *slower*. Measured on the
# computer that ran this notebook (one picture at 112×112, to keep emulated float16 affordable):

# %%
x_small = F.interpolate(x[:1], size=112, mode="bilinear", align_corners=False)
for dt, low in lows.items():
    report("float32", str(dt).replace("torch.", ""),
           compare_times(lambda: forward(model, x_small), lambda: forward(low, x_small.to(dt)), repeats=3))

# %% [markdown]
# Features survive half precision almost unchanged in direction (cosine close to 1), while single
# logits move by amounts you can see in the printed errors: fine for feature extraction and
# retrieval, worth checking before comparing probabilities across precisions — and worth timing
# (the verdicts above) before assuming it is faster.
#
# ## What the first layer learned
#
# The stem of EfficientNet-Lite0 is 32 filters of shape 3×3×3 (RGB × 3 × 3). Below they are drawn as
# tiny colour images (each rescaled to [0, 1]), next to hand-made edge filters. To *measure* the
# resemblance, collapse each learned filter over its colour channels (the part that sees brightness)
# and compute its cosine similarity with each hand-made filter, ignoring sign (an edge detector of
# the opposite polarity is still an edge detector).

# %%
w_stem = model.conv_stem.weight.detach().float().cpu()            # (32, 3, 3, 3)
hand = {
    "Sobel x": torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
    "Sobel y": torch.tensor([[-1.0, -2, -1], [0, 0, 0], [1, 2, 1]]),
    "diagonal": torch.tensor([[0.0, 1, 2], [-1, 0, 1], [-2, -1, 0]]),
    "Laplacian": torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]),
    "blur": torch.ones(3, 3) / 9,
}
fig, axes = plt.subplots(5, 8, figsize=(8, 5.4))
for ax in axes.flat:
    ax.axis("off")
for i, ax in enumerate(axes.flat[:32]):
    f = w_stem[i]
    ax.imshow(((f - f.min()) / (f.max() - f.min())).permute(1, 2, 0).numpy())
    ax.set_title(str(i), fontsize=7)
for ax, (name, k) in zip(axes[4], hand.items()):
    ax.imshow(k.numpy(), cmap="gray", vmin=-k.abs().max(), vmax=k.abs().max())
    ax.set_title(name, fontsize=7)
fig.suptitle("learned stem filters (rows 1-4) and hand-made filters (row 5)", fontsize=9)
plt.tight_layout()
plt.show()

# %%
# NBVAL_CHECK_OUTPUT
gray = w_stem.sum(dim=1).flatten(1)                                   # (32, 9) brightness part
hand_flat = torch.stack(list(hand.values())).flatten(1)               # (5, 9)


def abs_cos(filters, refs):
    """(..., F, 9) filters, (R, 9) references -> (..., F, R) |cosine|."""
    return (F.normalize(filters, dim=-1) @ F.normalize(refs, dim=-1).T).abs()


cos = abs_cos(gray, hand_flat)
best = cos.max(dim=0)
for (name, _), c, i in zip(hand.items(), best.values, best.indices):
    print(f"{name:9s}: best learned filter #{i.item():2d}, |cos| = {c.item():.2f}")
print(f"learned filters with |cos| > 0.8 to some hand-made filter: {(cos.max(1).values > 0.8).sum().item()} of 32")

# %% [markdown]
# Is that a resemblance? Nine numbers is a small space: among 32 *random* filters one is bound to
# point roughly the same way as a Sobel kernel. The baseline that could win: draw 32 filters of
# 3×3 Gaussian noise, 5000 times, and record the same numbers for each draw. A second, stricter
# baseline keeps each learned filter's own nine values but shuffles their positions (same value
# distribution, no spatial layout). If learning made the filters edge-like, the learned numbers
# should sit in the top tail of both distributions: the verdict is "better" above the 97.5th
# percentile, "worse" below the 2.5th, "no clear difference" in between.

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(0)
baselines = {
    "random Gaussian": torch.randn(5000, 32, 9, generator=g),
    "shuffled learned": gray.expand(5000, 32, 9).gather(2, torch.rand(5000, 32, 9, generator=g).argsort(2)),
}
learned_best = cos.max(0).values.numpy()                                    # (5,)
learned_count = (cos.max(1).values > 0.8).sum().item()
verdict = lambda v, d: "better" if v > np.percentile(d, 97.5) else "worse" if v < np.percentile(d, 2.5) else "no clear difference"
for base, filters in baselines.items():
    c = abs_cos(filters, hand_flat)                                         # (5000, 32, 5)
    best_r = c.max(1).values.numpy()                                        # (5000, 5)
    count_r = (c.max(2).values > 0.8).sum(1).numpy()                        # (5000,)
    print(f"baseline: 32 {base} filters, 5000 draws")
    print(f"  {'':10s} learned  baseline median  95th pct  learned's percentile  verdict")
    for j, name in enumerate(hand):
        pct = ((best_r[:, j] < learned_best[j]).mean() + 0.5 * (best_r[:, j] == learned_best[j]).mean()) * 100
        print(f"  {name:10s} {learned_best[j]:7.2f}  {np.median(best_r[:, j]):15.2f}  {np.percentile(best_r[:, j], 95):8.2f}"
              f"  {pct:20.0f}  {verdict(learned_best[j], best_r[:, j])}")
    pct = ((count_r < learned_count).mean() + 0.5 * (count_r == learned_count).mean()) * 100
    print(f"  {'# > 0.8':10s} {learned_count:7d}  {np.median(count_r):15.0f}  {np.percentile(count_r, 95):8.0f}"
          f"  {pct:20.0f}  {verdict(learned_count, count_r)}")

# %%
fig, axes = plt.subplots(1, 5, figsize=(11, 2.2), sharey=True)
rand_best = abs_cos(baselines["random Gaussian"], hand_flat).max(1).values.numpy()
for j, (ax, name) in enumerate(zip(axes, hand)):
    ax.hist(rand_best[:, j], bins=40, range=(0.3, 1), color="0.7")
    ax.axvline(learned_best[j], color="C3", lw=2)
    ax.set_title(name, fontsize=9); ax.set_xlabel("best |cos| of 32", fontsize=8)
axes[0].set_ylabel("random draws")
fig.suptitle("grey: 5000 sets of 32 random filters; red: the 32 learned stem filters", fontsize=9)
plt.tight_layout(); plt.show()

# %% [markdown]
# Read the table: for every hand-made filter the learned stem's best match sits inside the range of
# random filters (verdict **no clear difference** in every row), and "2 of 32 filters above 0.8"
# is also what random filters give. So the old claim "the first layer learned Sobel- and
# Gabor-like filters" does **not** follow from these cosines: with nine numbers per filter, a
# cosine of 0.8 is what chance delivers. Edge- and Gabor-like filters are plainly visible in
# networks with larger first-layer kernels (AlexNet's 11×11, ResNet's 7×7), where chance matches
# are far rarer; a 3×3 brightness kernel has too few numbers to tell. (The shuffled baseline cannot
# test the blur row at all: the cosine with a constant filter sees only the sum of the nine
# values, which shuffling keeps — hence its median equal to its 95th percentile.)

# %% [markdown]
# Apply the Sobel filter and its best-matching learned filter to the same picture, and compare the
# two response maps. The baseline again: how well does the response of a *random* 3×3×3 filter
# correlate with the Sobel response?

# %%
img = fl.preprocess("chelsea", model)                                  # (1, 3, 224, 224)
i_best = best.indices[0].item()
sobel_rgb = hand["Sobel x"].expand(3, 3, 3)[None] / 3                  # same filter on every channel
resp_sobel = fl.conv2d(img.cpu(), sobel_rgb, padding=1)[0, 0]
resp_learned = fl.conv2d(img.cpu(), w_stem[i_best:i_best + 1], padding=1)[0, 0]
fig, axes = plt.subplots(1, 3, figsize=(9, 3))
axes[0].imshow(fl.preprocess_for(model).denormalize(img[0]).permute(1, 2, 0).cpu())
axes[1].imshow(resp_sobel.abs(), cmap="gray")
axes[2].imshow(resp_learned.abs(), cmap="gray")
for ax, t in zip(axes, ["picture", "|Sobel x|", f"|learned filter #{i_best}|"]):
    ax.set_title(t, fontsize=9)
    ax.axis("off")
plt.tight_layout()
plt.show()
r_learned = np.corrcoef(resp_sobel.abs().flatten(), resp_learned.abs().flatten())[0, 1]
# baseline: 200 draws of 32 random filters; from each draw the one closest to Sobel x, as for the learned one
w_rand = torch.randn(200, 32, 3, 3, 3, generator=torch.Generator().manual_seed(1))
pick = abs_cos(w_rand.sum(2).flatten(2), hand_flat[:1])[..., 0].argmax(1)           # (200,)
w_pick = w_rand[torch.arange(200), pick]                                             # (200, 3, 3, 3)
resp_rand = fl.conv2d(img.cpu(), w_pick, padding=1)[0].abs().flatten(1).numpy()     # (200, 224*224)
r_rand = np.array([np.corrcoef(resp_sobel.abs().flatten(), r)[0, 1] for r in resp_rand])
print(f"correlation of |Sobel x| with |learned #{i_best}|: {r_learned:.2f}; with the best-matching of 32 random "
      f"filters (200 draws): median {np.median(r_rand):.2f}, 95th percentile {np.percentile(r_rand, 95):.2f}"
      f" -> learned: {verdict(r_learned, r_rand)}")

# %% [markdown]
# On the picture, the verdict line says the learned filter's response is **better** matched to
# Sobel's than the best-matching random filter's usually is. The two tests measure different things:
# the cosine compares nine brightness weights and cannot tell learned from random; the response
# uses all 27 weights (including the colour ones) on real pixels. So the best-matching learned filter
# does respond like Sobel x (to vertical edges) on this picture — but "the first layer learned Sobel filters" in general
# is not what the cosine table showed.

# %% [markdown]
# ## Pitfalls
#
# - **Convolution vs cross-correlation.** PyTorch, TensorFlow and JAX do not flip the kernel; SciPy's
#   `convolve2d` does. Porting a hand-designed kernel between them silently mirrors it.
# - **Output sizes off by one.** The floor in the formula drops the last pixels when the window does
#   not fit; ceil-mode pooling and TensorFlow "same" padding do not. Compute sizes, do not guess them.
# - **Groups must divide both channel counts;** a depth-wise weight is (C, 1, k, k), not (C, C, k, k).
# - **im2col memory** grows with $k_H k_W$: fine for teaching, not for large images.
# - **channels_last** changes strides, never shapes or values: `x.shape` cannot tell you which you
#   have; `x.is_contiguous(memory_format=torch.channels_last)` can.
# - **Half precision on CPU**: bfloat16 is widely supported, float16 convolutions may be slow or
#   missing; always compare against float32 on a few inputs before trusting it.
#
# ## Exercise
#
# Open `exercises/01_convolution_math.ipynb`: write the output-size formula, a convolution via
# `unfold`, and a 1×1 convolution as a matrix product; the check cells compare them with PyTorch.
