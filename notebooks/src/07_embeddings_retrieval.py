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
# # 07 — Embeddings and retrieval: one vector per picture, from several layers
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - turn a layer's feature map into an embedding (global average pooling, then L2
#   normalisation) and compare pictures by cosine similarity — from scratch, then with
#   `fl.embed`, `fl.cosine_similarity` and `fl.fuse`;
# - *measure* how far the value ranges of the layers differ, and what concatenating
#   unnormalised layers does to retrieval;
# - evaluate retrieval with recall@k on a gallery whose right answers are known, look at a
#   query's top-5, and test the claim "mid-level layers for colour and texture, deep layers for
#   content" with bootstrap intervals over the pictures;
# - look at the embeddings with PCA and t-SNE, and store them in HDF5 as float16 at a measured cost.
#
# **Prerequisites:** `04_gap_classification` (global average pooling), `05_feature_maps`
# (`fl.extract`, layer aliases).
# **Run time:** about 30 s on a 2-core CPU.
#
# A common recipe builds a picture's "embedding" from several layers of
# VGG19 (`conv3_4`, `conv4_4`, `conv5_4`, `fc6`, `fc7`). A layer $l$ gives a map
# $F_l \in \mathbb{R}^{C_l \times H_l \times W_l}$. Average it over the positions to get one
# number per channel, and scale the vector to length 1. Two pictures $x, y$ are compared by the
# cosine of their vectors, which for unit vectors is just the dot product. To use several
# layers at once, concatenate the unit vectors, each scaled by $\sqrt{w_l}$, and normalise
# again. Then the cosine of the fused vectors is the weighted mean of the per-layer cosines:
#
# $$v_l = \frac{\bar f_l}{\lVert \bar f_l \rVert_2},\;\; \bar f_l = \frac{1}{H_l W_l}\sum_{i,j} F_l[:, i, j],
# \qquad \cos_l(x, y) = v_l(x)^\top v_l(y), \qquad
# \cos_{\text{fused}}(x, y) = \frac{\sum_l w_l \cos_l(x, y)}{\sum_l w_l}.$$
#
# Normalising each layer first is what makes the weights $w_l$ mean anything. Without it,
# each layer counts in proportion to its squared length, as the measurements below show.
# Retrieval then ranks a gallery by cosine to a query. **Recall@k** is the share of
# queries that have at least one right answer among their $k$ nearest gallery items.

# %%
# %matplotlib inline
import io
import tempfile
import time
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_samples, silhouette_score

import featlab as fl

t0 = time.time()
torch.manual_seed(0)
rng = np.random.default_rng(0)
plt.rcParams["figure.dpi"] = 72
model = fl.load_model("efficientnet_lite0")

# %% [markdown]
# ## A gallery with known answers
#
# Retrieval can only be measured when the right answers are known. We make both the gallery
# and the queries from the 12 sample pictures of `fl.sample_images()`, so the class of an
# item is simply *the picture it came from*. Each picture is scaled so its short side is
# 320 px.
# - **Gallery:** 4 random 224×224 crops of each picture (48 items).
# - **Queries:** 8 per picture (96), each a fresh random crop with one known edit, in three kinds:
#   - *geometric* (keeps colour, texture **and** layout; a baseline): crop at another scale, flip,
#     rotate 15–30°;
#   - *texture-preserving* (keeps colour and texture, destroys the layout): the crop cut into
#     4×4, 8×8 or 16×16 tiles (56, 28, 14 px) that are shuffled;
#   - *content-preserving* (keeps the layout and the objects, changes colour or texture
#     statistics): hue turned by 180° with contrast ×0.6, grayscale, Gaussian blur (radius 4),
#     JPEG at quality 5.
#
# Six of the twelve pictures are grayscale (camera, brick, grass, gravel, coins, horse). For
# them the grayscale edit changes nothing and the hue edit only the contrast. The per-edit table
# below shows the effect.

# %%
# NBVAL_CHECK_OUTPUT
SIZE = 224
PICTURES = list(fl.sample_images())                      # 12 pictures = 12 classes


def load_scaled(name: str, short: int = 320) -> Image.Image:
    im = fl.load_image(name)
    s = short / min(im.size)
    return im.resize((round(im.width * s), round(im.height * s)), Image.BICUBIC)


def random_crop(im: Image.Image, size: int = SIZE) -> Image.Image:
    left, top = int(rng.integers(0, im.width - size + 1)), int(rng.integers(0, im.height - size + 1))
    return im.crop((left, top, left + size, top + size))


def shuffle_tiles(im: Image.Image, grid: int) -> Image.Image:
    a, t = np.asarray(im), SIZE // grid
    tiles = [a[r * t:(r + 1) * t, c * t:(c + 1) * t] for r in range(grid) for c in range(grid)]
    order = rng.permutation(len(tiles))
    return Image.fromarray(np.vstack([np.hstack([tiles[i] for i in order[r * grid:(r + 1) * grid]])
                                      for r in range(grid)]))


def crop_flip_rotate(pic: Image.Image) -> Image.Image:
    im = random_crop(pic, int(rng.integers(180, 301))).resize((320, 320), Image.BICUBIC)
    im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(float(rng.choice([-1, 1]) * rng.uniform(15, 30)),
                                                             Image.BICUBIC)
    return im.crop((48, 48, 48 + SIZE, 48 + SIZE))      # the centre: no black corners


def hue_contrast(im: Image.Image) -> Image.Image:
    hsv = np.asarray(im.convert("HSV")).copy()
    hsv[..., 0] += 128                                    # uint8 hue wraps around: +180°
    return ImageEnhance.Contrast(Image.fromarray(hsv, "HSV").convert("RGB")).enhance(0.6)


def jpeg(im: Image.Image, quality: int = 5) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


EDITS = {  # kind -> {edit: function of a fresh random crop}
    "texture": {"shuffle 4x4": lambda im: shuffle_tiles(im, 4), "shuffle 8x8": lambda im: shuffle_tiles(im, 8),
                "shuffle 16x16": lambda im: shuffle_tiles(im, 16)},
    "content": {"hue+contrast": hue_contrast, "grayscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
                "blur": lambda im: im.filter(ImageFilter.GaussianBlur(4)), "jpeg q=5": jpeg},
}
gallery, gallery_labels, queries, query_labels, query_kind, query_edit = [], [], [], [], [], []
for c, name in enumerate(PICTURES):
    pic = load_scaled(name)
    for _ in range(4):
        gallery.append(random_crop(pic)); gallery_labels.append(c)
    queries.append(crop_flip_rotate(pic)); query_labels.append(c)
    query_kind.append("geometric"); query_edit.append("crop+flip+rot")
    for kind, edits in EDITS.items():
        for edit, f in edits.items():
            queries.append(f(random_crop(pic))); query_labels.append(c)
            query_kind.append(kind); query_edit.append(edit)

prep = fl.preprocess_for(model)


def to_input(pictures: list[Image.Image], prep: fl.Preprocess) -> torch.Tensor:
    """224×224 pictures -> normalised (N, 3, 224, 224); no resize or crop (they are cut already)."""
    t = torch.from_numpy(np.stack([np.asarray(p) for p in pictures])).permute(0, 3, 1, 2).float() / 255
    return (t - torch.tensor(prep.mean).view(1, 3, 1, 1)) / torch.tensor(prep.std).view(1, 3, 1, 1)


X = to_input(gallery + queries, prep)                    # gallery first, then the queries
G = len(gallery)
print(f"{len(PICTURES)} classes; gallery {G}, queries {len(queries)}; input {tuple(X.shape)}")
print({k: query_kind.count(k) for k in ["geometric", "texture", "content"]})

# %%
show = [0, 1, 2, 3] + list(range(G, G + 8))
fl.plot.show_images([(gallery + queries)[i] for i in show],
                    ["gallery"] * 4 + [query_edit[i - G] for i in show[4:]], ncols=6, size=1.35)
plt.show()

# %% [markdown]
# ## From scratch: pool, normalise, cosine, fuse
#
# Take four items: two gallery crops of `chelsea`, one of `coffee`, and the cat's geometric
# query. Pool two layers by hand, normalise the rows, compare, and fuse with weights
# `block4: 1, head: 3`. The asserts check that this equals `fl.embed`, `fl.cosine_similarity`
# and `fl.fuse`. They also check the formula: the fused cosine is the weighted mean of the
# per-layer cosines.

# %%
# NBVAL_CHECK_OUTPUT
four = X[[0, 1, 4, G]]                                   # chelsea, chelsea, coffee, chelsea query
maps4 = fl.extract(model, four, ["block4", "head"])       # {layer: (4, C, h, w)}
v = {}
for L, f in maps4.items():
    pooled = f.mean(dim=(2, 3))                           # (4, C): global average pooling
    v[L] = pooled / pooled.norm(dim=1, keepdim=True)      # every ROW (one picture) -> length 1
cos = {L: v[L] @ v[L].T for L in v}                       # (4, 4) cosines
w = {"block4": 1.0, "head": 3.0}
fused = torch.cat([v[L] * w[L] ** 0.5 for L in v], dim=1)
fused = fused / fused.norm(dim=1, keepdim=True)

ours = fl.embed(model, four, ["block4", "head"])          # pool="avg", normalize=True
for L in v:
    assert torch.allclose(v[L], ours[L], atol=1e-6)
    assert torch.allclose(cos[L], fl.cosine_similarity(ours[L]), atol=1e-5)
assert torch.allclose(fused, fl.fuse(ours, w), atol=1e-6)
assert torch.allclose(fused @ fused.T, (1 * cos["block4"] + 3 * cos["head"]) / 4, atol=1e-5)
print("from scratch == fl.embed, fl.cosine_similarity, fl.fuse; fused cos == weighted mean of cosines")
for L, m in [*cos.items(), ("fused 1:3", fused @ fused.T)]:
    print(f"{L:9s} cos(cat, cat) {m[0, 1].item():.2f}  cos(cat, coffee) {m[0, 2].item():.2f}  "
          f"cos(cat, cat query) {m[0, 3].item():.2f}")

# %% [markdown]
# `fl.embed(model, images, layers, pool="avg", normalize=True)` does this for any layers and
# returns `{layer: (N, D)}`. `pool="max"` takes the maximum instead, and `pool="none"` flattens
# the whole map. `fl.fuse(embeddings, weights, how="concat")` normalises every layer before
# it fuses, so a forgotten normalisation cannot creep in. `how="sum"` adds the weighted unit
# vectors instead, which needs the same $D$ in every layer.
#
# ## The real thing: six layers of EfficientNet-Lite0
#
# VGG19's weights are not shipped offline (an optional cell below runs the recipe's own layers
# when they are present). Lite0 layers at the same strides stand in for them:
#
# | VGG19 (recipe) | grid | Lite0 here | channels, grid |
# |---|---|---|---|
# | `conv3_4` | 56×56 | `block2` | 24, 56×56 |
# | `conv4_4` | 28×28 | `block3` | 40, 28×28 |
# | `conv5_4` | 14×14 | `block4`, `block5` | 80 / 112, 14×14 |
# | `fc6`, `fc7` | vectors | `block6`, `head` | 192 / 1280, 7×7 |
#
# We extract all six maps in one pass and measure their value ranges: the values in the maps,
# and the length of the average-pooled and the sum-pooled vector. Sum pooling
# ("SPoC", Babenko & Lempitsky 2015) is the same vector times $H_l W_l$.

# %%
# NBVAL_CHECK_OUTPUT
LAYERS = ["block2", "block3", "block4", "block5", "block6", "head"]
maps = fl.extract(model, X, LAYERS, batch_size=48)        # {layer: (144, C, h, w)}
avg = {L: fl.pool(maps[L], "avg").cpu() for L in LAYERS}  # raw (unnormalised) vectors (144, C)
HW = {L: maps[L].shape[2] * maps[L].shape[3] for L in LAYERS}
print("layer   C × h × w      map min  map max  mean|a|   |avg vector|  |sum vector|")
for L in LAYERS:
    f = maps[L]
    n_avg = avg[L].norm(dim=1).mean().item()
    print(f"{L:7s} {'×'.join(map(str, f.shape[1:])):12s} {f.min().item():8.2f} {f.max().item():8.2f} "
          f"{f.abs().mean().item():8.3f} {n_avg:12.1f} {n_avg * HW[L]:12.0f}")
emb = {L: fl.l2_normalize(avg[L]) for L in LAYERS}        # == fl.embed(model, X, LAYERS)
del maps

# %% [markdown]
# Read the table. **The maps differ by more than an order of magnitude; the average-pooled
# vectors do not.** The block outputs of Lite0 have no activation: they are BatchNorm'd
# projections, ranging about ±40 to ±70 (mean |a| 4.4–6.7). `head` ends in ReLU6, so its values
# lie in [0, 6] (mean |a| 0.17, 25 to 40 times smaller). After average pooling, though, the
# vector lengths stay within a factor of about 3 (16 to 51). `head`'s small values are spread
# over 1280 channels, and BatchNorm at the end of every block keeps the blocks' scales alike.
# VGG19 has no BatchNorm, so nothing keeps its layers' scales alike: that is why recipes built
# on VGG19 warn that its layers' pooled vectors differ by orders of magnitude. The optional VGG19
# cell below prints the vector lengths when the weights are present.
# In Lite0 the gap appears as soon as the vectors are **summed** over the positions instead of
# averaged: `block2` (56×56 positions) is then about 75 times longer than `head` (7×7). The
# same happens with flattened maps (`pool="none"`), whose length grows with $\sqrt{C H W}$.
#
# ## Retrieval: recall@1 and recall@5 per layer and per fusion
#
# First we write recall@k from scratch once and check it against `fl.recall_at_k`. Then we
# build one table: a row per layer and per fusion, and columns for the three kinds of query.
# The fusions are the two unnormalised concatenations, the all-layers `fl.fuse` (each layer
# L2-normalised, weights 1), a mid-level pair and a deep pair.

# %%
# NBVAL_CHECK_OUTPUT
gl, ql = torch.tensor(gallery_labels), torch.tensor(query_labels)
KINDS = ["geometric", "texture", "content"]
masks = {k: torch.tensor([q == k for q in query_kind]) for k in KINDS}


def recall_scratch(sim: torch.Tensor, q_labels: torch.Tensor, g_labels: torch.Tensor, k: int) -> float:
    top = sim.argsort(dim=1, descending=True)[:, :k]     # (Q, k) indices of the k most similar
    return (g_labels[top] == q_labels[:, None]).any(dim=1).float().mean().item()


sim_head = fl.cosine_similarity(emb["head"][G:], emb["head"][:G])   # (96 queries, 48 gallery)
for k in (1, 5):
    assert recall_scratch(sim_head, ql, gl, k) == fl.recall_at_k(sim_head, ql, gl, k)


def recalls(vectors: torch.Tensor) -> list[float]:
    """(144, D) vectors, gallery first -> [R@1, R@5] for each kind of query."""
    sim = fl.cosine_similarity(vectors[G:], vectors[:G])
    return [fl.recall_at_k(sim[m], ql[m], gl, k) for m in masks.values() for k in (1, 5)]


rows = {L: recalls(emb[L]) for L in LAYERS}
rows |= {
    "concat raw, avg pool": recalls(torch.cat([avg[L] for L in LAYERS], dim=1)),
    "concat raw, sum pool": recalls(torch.cat([avg[L] * HW[L] for L in LAYERS], dim=1)),
    "fl.fuse all six": recalls(fl.fuse(emb)),
    "fl.fuse block3+block4": recalls(fl.fuse({L: emb[L] for L in ["block3", "block4"]})),
    "fl.fuse block6+head": recalls(fl.fuse({L: emb[L] for L in ["block6", "head"]})),
}
print(f"queries per kind: {', '.join(f'{k} {int(m.sum())}' for k, m in masks.items())}; chance R@1 = 1/12 = 0.08")
print(f"{'':22s}" + "".join(f"{k:>13s}" for k in KINDS))
print(f"{'':22s}" + "    R@1  R@5" * 3)
for name, r in rows.items():
    print(f"{name:22s}" + "".join(f"   {r[i]:.2f} {r[i + 1]:.2f}" for i in range(0, 6, 2)))

# %%
# NBVAL_CHECK_OUTPUT
EDIT_NAMES = list(dict.fromkeys(query_edit))
print("recall@1 per edit (12 queries each, one per picture)")
print(f"{'':16s}" + "".join(f"{e[:13]:>14s}" for e in EDIT_NAMES))
for name, vec in [*((L, emb[L]) for L in LAYERS), ("fl.fuse all six", fl.fuse(emb))]:
    sim = fl.cosine_similarity(vec[G:], vec[:G])
    r1 = [fl.recall_at_k(sim[m], ql[m], gl, 1)
          for m in (torch.tensor([e == edit for e in query_edit]) for edit in EDIT_NAMES)]
    print(f"{name:16s}" + "".join(f"{x:14.2f}" for x in r1))

# %%
fig, ax = plt.subplots(figsize=(5.2, 2.6))
for i, k in enumerate(KINDS):
    ax.plot(LAYERS, [rows[L][2 * i] for L in LAYERS], "o-", label=f"{k} queries")
ax.set_ylabel("recall@1"); ax.set_ylim(0, 1.05); ax.set_title("which layer finds the source picture?", fontsize=9)
ax.legend(fontsize=8); plt.tight_layout(); plt.show()

# %% [markdown]
# What a query actually gets back: three queries and their five nearest gallery crops, by a
# mid-level layer (`block3`) and by `head`. A green frame is a crop of the query's own picture.

# %%
strip_queries = [G + i for i, e in enumerate(query_edit) if e in ("shuffle 8x8", "hue+contrast", "blur")]
strip_queries = [strip_queries[k] for k in (3, 13, 26)]            # one query of each edit
fig, axes = plt.subplots(2 * len(strip_queries), 6, figsize=(6.6, 2 * len(strip_queries) * 1.15))
for r, (qi, L) in enumerate([(q, L) for q in strip_queries for L in ("block3", "head")]):
    sim = fl.cosine_similarity(emb[L][qi:qi + 1], emb[L][:G])[0]
    top = sim.topk(5).indices.tolist()
    axes[r, 0].imshow((gallery + queries)[qi]); axes[r, 0].set_title(f"{query_edit[qi - G]}\n({L})", fontsize=7)
    for c, gi in enumerate(top, start=1):
        axes[r, c].imshow(gallery[gi])
        ok = gallery_labels[gi] == query_labels[qi - G]
        for side in axes[r, c].spines.values():
            side.set_edgecolor("green" if ok else "red"); side.set_linewidth(3)
        axes[r, c].set_title(f"{float(sim[gi]):.2f}", fontsize=7)
for ax in axes.flat:
    ax.set_xticks([]); ax.set_yticks([])
plt.suptitle("query (left) and its top-5 gallery crops, cosine above; green = same picture", fontsize=8)
plt.tight_layout(); plt.show()

# %% [markdown]
# **How sure are these differences?** Each recall@1 above rests on 12 to 48 queries from 12
# pictures, and the queries of one picture are not independent. So the interval of a
# difference is a bootstrap over the **pictures** (2,000 resamples of the 12, each taking all
# its queries along), paired: both rows are scored on the same resampled queries. The verdict is
# *better* / *worse* when the 95 % interval of the difference excludes zero, else *no clear
# difference*.

# %%
# NBVAL_CHECK_OUTPUT
def hits_at_1(vectors: torch.Tensor) -> np.ndarray:
    """(144, D) vectors, gallery first -> (96,) 1.0 where the nearest gallery item is right."""
    sim = fl.cosine_similarity(vectors[G:], vectors[:G])
    return (gl[sim.argmax(dim=1)] == ql).double().numpy()


boot_idx = np.random.default_rng(0).integers(0, len(PICTURES), (2000, len(PICTURES)))


def compare(a: np.ndarray, b: np.ndarray, kind: str) -> str:
    """Paired difference of recall@1 of two rows on one kind of query, bootstrapped over pictures."""
    m = masks[kind].numpy()
    q_pic = ql.numpy()[m]
    d_sum = np.bincount(q_pic, weights=(a - b)[m], minlength=len(PICTURES))   # per picture
    n = np.bincount(q_pic, minlength=len(PICTURES))
    boot = d_sum[boot_idx].sum(1) / n[boot_idx].sum(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    word = "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"
    return f"{(a - b)[m].mean():+.2f} [{lo:+.2f}, {hi:+.2f}]  {word}"


hit = {L: hits_at_1(emb[L]) for L in LAYERS}
hit["fl.fuse all six"] = hits_at_1(fl.fuse(emb))
hit["concat raw, avg pool"] = hits_at_1(torch.cat([avg[L] for L in LAYERS], dim=1))
hit["concat raw, sum pool"] = hits_at_1(torch.cat([avg[L] * HW[L] for L in LAYERS], dim=1))
print("recall@1, A - B [95 % bootstrap interval over pictures], verdict")
for a_, b_, kind in [("head", "block3", "content"), ("block6", "block4", "content"),
                     ("block3", "head", "texture"), ("block2", "block6", "texture"),
                     ("fl.fuse all six", "head", "content"), ("fl.fuse all six", "block2", "texture"),
                     ("fl.fuse all six", "concat raw, avg pool", "content"),
                     ("fl.fuse all six", "concat raw, sum pool", "content")]:
    print(f"  {kind:8s} {a_:>16s} - {b_:<21s} {compare(hit[a_], hit[b_], kind)}")

# %% [markdown]
# **What the numbers show about the claim** "mid-level layers for colour and texture, deep
# layers for content". (Chance is 0.08.)
# - *Content-preserving edits* (colour, blur, JPEG): the deep layers win by a wide margin.
#   Recall@1 is 0.54–0.65 at `block2`–`block4`, 0.92 at `block5` and 0.96 at `block6` and
#   `head`. Per edit, the early layers lose on every one of the four (0.33–0.92 at
#   `block2`–`block4`, against 0.92–1.00 at `block6` and `head`). A pooled early layer records
#   colour and fine-texture statistics, and those are exactly what these edits change.
# - *Texture-preserving edits* (shuffled tiles): the early and mid layers win. Recall@1 is 0.92
#   at `block2` and `block4` (0.86 at `block3`), and falls with depth to 0.75 at `block6` and
#   0.69 at `head`. Per edit, every layer recognises 56-px tiles (4×4, 1.00). With 28-px tiles
#   `head` drops to 0.67 while `block2`–`block4` stay at 1.00. With 14-px tiles every layer
#   suffers, and `block6`/`head` fall to 0.42.
# - The geometric baseline keeps everything, and every layer from `block3` up finds all 12.
#
# So on these pictures **the measurements agree with the claim**, and the verdicts hold with
# intervals over the pictures: for content, `head` is *better* than `block3` and `block6`
# *better* than `block4`; for texture, `block3` is *better* than `head` and `block2` *better*
# than `block6`. Two limits: there are only 12 classes and 12 queries per edit, so one query is
# 0.08 of a per-edit recall. And "content" here means *the same picture after an edit*, not
# "another cat". This gallery holds one picture per object, so the claim about semantics across
# different objects cannot be tested offline. What we test is invariance to colour and texture
# changes, a proxy for it.
#
# **Fusion.** `fl.fuse` of all six layers (each normalised, weights 1) is the best compromise:
# 0.89 on texture and 0.98 on content. It does not *beat* the best single layer of either kind —
# the verdicts are *no clear difference* against `head` on content and against `block2` on
# texture — but it matches both at once, which no single layer does. The mid pair alone (`block3+block4`) and the deep pair alone
# (`block6+head`) each inherit their layers' weakness.
#
# ## What unnormalised concatenation does
#
# In a concatenation, each layer's share of the cosine is its share of the squared length.
# Below are the shares, averaged over the 144 items, for the two raw concatenations in the
# table. For `fl.fuse` every share is 1/6 = 0.17 by construction.

# %%
# NBVAL_CHECK_OUTPUT
print("layer    share in raw concat (avg pool)   share in raw concat (sum pool)")
sq_avg = torch.stack([avg[L].pow(2).sum(dim=1) for L in LAYERS])            # (6, 144)
sq_sum = torch.stack([(avg[L] * HW[L]).pow(2).sum(dim=1) for L in LAYERS])
share_avg, share_sum = (sq_avg / sq_avg.sum(0)).mean(1), (sq_sum / sq_sum.sum(0)).mean(1)
for L, a, s in zip(LAYERS, share_avg, share_sum):
    print(f"{L:7s} {a.item():20.2f} {s.item():32.2f}")

# %% [markdown]
# - With **sum pooling**, `block2` holds 0.91 of the squared length. The raw concatenation then
#   retrieves like `block2` alone (0.92 texture, 0.65 content, as in the `block2` row) and
#   throws the deep layers away: on content `fl.fuse` is *better* (the last verdict line above).
# - With **average pooling** the shares are uneven too (`block6` 0.44, `head` 0.05), but no layer
#   dominates. This raw concatenation happens to retrieve almost as well as `fl.fuse` here
#   (content recall@1 0.96 against 0.98; verdict *no clear difference*), because its accidental weights favour `block6` and
#   `block4`. That is luck, not design: the weights come from BatchNorm scales and channel
#   counts, and they change with the pooling, the network and the input size.
# - **Per-layer normalisation** (`fl.fuse`) removes the dependence: each layer gets exactly the
#   weight you give it.
#
# ## Optional: the recipe's layers on VGG19
#
# This runs only when VGG19's ImageNet weights are installed (`fl.available_models()`); the
# course ships without them, so the stored output only says so. On a CPU, the 144 pictures take
# about a minute. For `conv3_4`, `conv4_4`, `conv5_4`, `fc6`
# and `fc7` it prints the length of the average-pooled vector and the recall table, and then the
# raw concatenation against `fl.fuse`.

# %%
VGG_LAYERS = ["conv3_4", "conv4_4", "conv5_4", "fc6", "fc7"]
if "vgg19" in fl.available_models():
    vgg = fl.load_model("vgg19")
    vgg_raw = fl.embed(vgg, to_input(gallery + queries, fl.preprocess_for(vgg)), VGG_LAYERS,
                       normalize=False, batch_size=16)
    vgg_raw = {L: t.cpu() for L, t in vgg_raw.items()}
    print("layer     |avg vector|   " + "".join(f"{k:>13s}" for k in KINDS))
    print(" " * 25 + "    R@1  R@5" * 3)
    for L in VGG_LAYERS:
        r = recalls(fl.l2_normalize(vgg_raw[L]))
        print(f"{L:8s} {vgg_raw[L].norm(dim=1).mean().item():12.1f}   "
              + "".join(f"   {r[i]:.2f} {r[i + 1]:.2f}" for i in range(0, 6, 2)))
    for name, vec in [("concat raw", torch.cat(list(vgg_raw.values()), dim=1)), ("fl.fuse all", fl.fuse(vgg_raw))]:
        r = recalls(vec)
        print(f"{name:12s} {'':8s}   " + "".join(f"   {r[i]:.2f} {r[i + 1]:.2f}" for i in range(0, 6, 2)))
    del vgg
else:
    print("VGG19 weights are not installed (fl.available_models() lists "
          f"{fl.available_models()}): skipping the VGG19 layers {VGG_LAYERS}. "
          "The tables above use EfficientNet-Lite0.")

# %% [markdown]
# ## Looking at the embeddings: PCA and t-SNE
#
# Project the 144 unit vectors of each layer to 2-D, with PCA (linear) and with t-SNE
# (non-linear, `random_state=0`), and colour them by source picture. A picture does not prove
# anything, so we also print two numbers per layer. One is the share of the variance that the
# 2-D PCA keeps. The other is the **silhouette score** of the classes in the full space
# (cosine distance). It runs from −1 to 1, and higher means tighter, better-separated classes.
# Does it really change with depth? Each item has its own silhouette value; averaged per source
# picture they give 12 numbers per layer, and two layers are compared, paired, with a bootstrap
# over the 12 pictures (approximate: an item's silhouette also depends on the other pictures).

# %%
# NBVAL_CHECK_OUTPUT
labels_all = np.array(gallery_labels + query_labels)
pca2, sil, sil_pic = {}, {}, {}
print("layer    PCA: variance in 2-D   silhouette (cosine, 12 classes)")
for L in LAYERS:
    z = emb[L].numpy()
    pca = PCA(n_components=2, random_state=0).fit(z)
    pca2[L] = pca.transform(z)
    per_item = silhouette_samples(z, labels_all, metric="cosine")          # (144,)
    sil[L] = per_item.mean()
    assert np.isclose(sil[L], silhouette_score(z, labels_all, metric="cosine"))
    sil_pic[L] = np.bincount(labels_all, weights=per_item) / np.bincount(labels_all)   # (12,) per picture
    print(f"{L:7s} {pca.explained_variance_ratio_.sum():16.2f} {sil[L]:20.2f}")
for a_, b_ in [("block6", "block2"), ("head", "block6")]:
    d_sil = sil_pic[a_] - sil_pic[b_]
    lo, hi = np.percentile(d_sil[boot_idx].mean(1), [2.5, 97.5])              # the 2,000 resamples of pictures
    word = "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"
    print(f"silhouette {a_} - {b_}: {d_sil.mean():+.2f} [{lo:+.2f}, {hi:+.2f}] (bootstrap over pictures) -> {a_}: {word}")

# %%
tsne2 = {L: TSNE(n_components=2, perplexity=20, init="pca", method="exact", max_iter=500,
                 random_state=0).fit_transform(emb[L].numpy()) for L in LAYERS}
colours = plt.cm.tab20([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 3, 9])     # 12 distinct colours
fig, axes = plt.subplots(2, len(LAYERS), figsize=(12, 4.6))
for col, L in enumerate(LAYERS):
    for row, (method, pts) in enumerate([("PCA", pca2[L]), ("t-SNE", tsne2[L])]):
        ax = axes[row, col]
        ax.scatter(pts[:, 0], pts[:, 1], c=colours[labels_all], s=9)
        ax.set_xticks([]); ax.set_yticks([])
        ax.set_title(f"{L}: {method}", fontsize=8)
handles = [plt.Line2D([], [], ls="", marker="o", color=colours[i], label=n) for i, n in enumerate(PICTURES)]
fig.legend(handles=handles, loc="lower center", ncol=12, fontsize=7, handletextpad=0.1, columnspacing=0.8)
plt.tight_layout(rect=(0, 0.07, 1, 1)); plt.show()

# %% [markdown]
# The silhouette rises with depth, from 0.24 at `block2` to 0.47 at `block6`: `block6` is
# **better** than `block2`, with an interval over the pictures. It does not rise to the very end:
# `head` (0.42) is **worse** than `block6` — a small but clear step back. The deeper layers
# gather each picture's crops and its edited queries into tighter groups, which agrees with the
# recall table. PCA keeps more of the variance in 2-D at the early layers (0.58 at `block2`) than
# at `head` (0.19). The deep embeddings are spread over many directions,
# so a linear 2-D view is a poor summary of them, and t-SNE draws the neighbourhoods instead.
# Do not read the distances *between* t-SNE clusters, or their sizes: t-SNE keeps
# neighbourhoods, not global geometry, and another perplexity or seed draws another picture.
#
# ## Storing embeddings: HDF5, float16 against float32
#
# A gallery's embeddings are computed once and stored. (`fl.extract_folder` does this for
# a folder of pictures, float32, resumable; see notebook 12.) Unit vectors have every entry in
# $[-1, 1]$, so float16 is a natural candidate: half the size. What does it cost? We write the
# six layers' normalised vectors with `h5py` in both types, read them back as float32, and
# compare the retrieval. We report the largest change of a cosine, the share of queries whose
# top-5 list (in order) is identical, and recall@1.

# %%
# NBVAL_CHECK_OUTPUT
folder = Path(tempfile.mkdtemp())
files = {d: folder / f"embeddings_{d}.h5" for d in ["float32", "float16"]}
for dtype, path in files.items():
    with h5py.File(path, "w") as f:
        f["labels"] = labels_all
        for L in LAYERS:
            f.create_dataset(f"features/{L}", data=emb[L].numpy().astype(dtype))


def load(path: Path) -> dict[str, torch.Tensor]:
    with h5py.File(path, "r") as f:
        return {L: torch.from_numpy(f[f"features/{L}"][:].astype(np.float32)) for L in LAYERS}


e32, e16 = load(files["float32"]), load(files["float16"])
kib = {d: p.stat().st_size / 1024 for d, p in files.items()}
n_values = sum(e32[L].numel() for L in LAYERS)
print(f"{n_values} values; file size float32 {kib['float32']:.0f} KiB, float16 {kib['float16']:.0f} KiB "
      f"({kib['float16'] / kib['float32']:.2f} of it)")
print("              max |cos16 - cos32|  identical top-5 lists  R@1 float32  R@1 float16")
pairs = {L: (e32[L], e16[L]) for L in LAYERS} | {"fl.fuse all": (fl.fuse(e32), fl.fuse(e16))}
for name, (a, b) in pairs.items():
    s32, s16 = fl.cosine_similarity(a[G:], a[:G]), fl.cosine_similarity(b[G:], b[:G])
    same = (s32.topk(5, dim=1).indices == s16.topk(5, dim=1).indices).all(dim=1).float().mean().item()
    print(f"{name:12s} {(s32 - s16).abs().max().item():15.5f} {same:18.2f} "
          f"{fl.recall_at_k(s32, ql, gl, 1):14.2f} {fl.recall_at_k(s16, ql, gl, 1):12.2f}")
largest = max((avg[L] * HW[L]).abs().max().item() for L in LAYERS)
for kind in KINDS:
    print(f"recall@1 of fl.fuse all, float16 - float32, {kind} queries: "
          f"{compare(hits_at_1(fl.fuse(e16)), hits_at_1(fl.fuse(e32)), kind)}")
print(f"largest entry of a raw sum-pooled vector: {largest:.0f} = {largest / 65504:.0%} of the float16 maximum 65504")

# %% [markdown]
# float16 halves the file (0.50 of the size). No cosine moves by more than 0.0003, recall@1 is
# the same in every row (verdict: *no clear difference* for every kind of query), and 99–100 % of the top-5 lists are identical: the few that differ are
# near-ties that swap places. So store *normalised* vectors in float16 and compute in float32.
# Do not do that with raw sum-pooled vectors: their largest entry here is 71 % of float16's
# maximum, and at that size float16 can only step by 32.
#
# ## Pitfalls
#
# - **Dot product is not cosine.** Without normalisation, long vectors win every comparison.
#   The ranking then follows the vector lengths, not the directions.
# - **Normalise rows, not columns.** An embedding matrix is (N, D), one picture per row:
#   `x / x.norm(dim=1, keepdim=True)`. With `dim=0` every *feature* gets length 1 across the
#   pictures, and the result is no cosine at all.
# - **Fuse after per-layer normalisation.** A raw concatenation weights each layer by its
#   squared length, and that depends on pooling, BatchNorm and channel count (the table above).
#   Use `fl.fuse`, whose weights are the weights you ask for.
# - **The query must not find itself.** When the queries are also in the gallery
#   (leave-one-out), drop each item's own column first. Otherwise recall@1 is 1.00 whatever the
#   embedding. And `k` means the first *k* items: `topk(k)`, not `topk(k + 1)`.
# - **Same preprocessing for gallery and queries.** Use the model's own mean and std, and the
#   same size for both.
# - **Near-duplicates flatter.** Queries cut from the same picture as the gallery overlap it.
#   The recall here measures invariance to edits, not semantic search across different objects.
#
# **Exercise:** `exercises/07_embeddings_retrieval.ipynb`. Write the cosine-similarity matrix,
# recall@k, leave-one-out recall@k and the per-layer normalised fusion yourself.

# %%
print(f"notebook run time: {time.time() - t0:.0f} s")
