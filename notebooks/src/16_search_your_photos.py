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
# # 16 — Capstone: search your own photos, and see why each one matches
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# **Learning goals**
# - index a folder of pictures with the same engine as `featlab extract`, and search it with
#   `fl.search` / `fl.search_file` — on a folder whose right answers are known, or on your own;
# - explain a match with a **similarity map**: the cosine between the query's pooled vector and
#   the feature vector at each place of the hit — derived from scratch, then `fl.similarity_map`;
# - measure, with bootstrap intervals and verdicts: recall@1/5 per layer, pooling and fused
#   layers; float16 against float32 storage; the similarity map's **pointing game** against a
#   centre-point baseline;
# - see where it fails: small objects, repeated textures.
#
# **Prerequisites:** `04_gap_classification` (CAM), `06_grad_cam`, `07_embeddings_retrieval`
# (pooling, fusion, recall@k), `12_performance` (`featlab extract`, `fl.search`).
# **Run time:** under a minute on a 2-core CPU.
#
# A search ranks the pictures of a folder by the cosine between one pooled vector per picture
# and the query's. That says *which* pictures match, not *why*. The pooled vector is the mean of
# the layer's map $F \in \mathbb{R}^{C\times h\times w}$ over its positions, so we can compare the
# query's pooled vector $q$ with the vector at each position $F[:, i, j]$ of a hit:
#
# $$S[i, j] = \frac{q^\top F[:, i, j]}{\lVert q\rVert\,\lVert F[:, i, j]\rVert},$$
#
# upsampled to the picture's size. High values mark the places of the hit that look like the
# query as a whole.

# %%
# %matplotlib inline
import io
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance, ImageOps

import featlab as fl

t0 = time.time()
torch.manual_seed(0)
plt.rcParams["figure.dpi"] = 72
model = fl.load_model("efficientnet_lite0")
prep = fl.preprocess_for(model)

# %% [markdown]
# ## A folder with known answers (or your own)
#
# To measure a search we need to know the right answers. From eight sample pictures we cut three
# overlapping crops each: 24 "photos", where the crops of one picture are hard distractors for
# each other. Then 24 **composites**: an object (a cat's face, a cup, a face, a flower) pasted
# at a random place on a texture (brick, grass, gravel), large (128 px) or small (48 px) on a
# 320 px picture — we know where the object is. The queries are edited copies of the photos,
# so each has exactly one right answer in the folder. Every query is a crop (45–70 % of the side, anywhere in the photo),
# plus a flip, a colour or exposure change or a JPEG re-encode at quality 6 — edits an easy
# search forgives entirely would measure nothing.
#
# To search **your own** photos, set `MY_FOLDER` to a folder of pictures: the explorer at the
# end then searches it (or upload a query picture there). The measurements need known answers, so
# they always use the built folder.

# %%
MY_FOLDER = None  # e.g. "~/Pictures/holiday"

rng = np.random.default_rng(0)
work = Path(tempfile.mkdtemp(prefix="featlab16_"))
folder = work / "photos"
folder.mkdir()

sources = ["chelsea", "coffee", "astronaut", "rocket", "china", "flower", "camera", "coins"]
photos = []  # (name, PIL picture)
for s in sources:
    img = fl.load_image(s)
    w, h = img.size
    side = int(0.7 * min(w, h))
    for j, fx in enumerate([0.0, 0.5, 1.0]):
        x0 = int(fx * (w - side)); y0 = int((h - side) * [0.2, 0.5, 0.8][j])
        photos.append((f"{s}_{j}", img.crop((x0, y0, x0 + side, y0 + side)).resize((256, 256), Image.Resampling.BICUBIC)))
for name, pic in photos:
    pic.save(folder / f"{name}.jpg", quality=90)

objects = {"cat": fl.load_image("chelsea").crop((80, 20, 240, 180)),
           "cup": fl.load_image("coffee").crop((170, 40, 470, 340)),
           "face": fl.load_image("astronaut").crop((160, 20, 320, 180)),
           "flower": fl.load_image("flower").crop((220, 90, 440, 310))}
textures = {t: fl.load_image(t).resize((320, 320)) for t in ["brick", "grass", "gravel"]}
composites = []  # (file name, object, size, box (x0, y0, x1, y1))
for o, obj in objects.items():
    for t, tex in textures.items():
        for size in (128, 48):
            x0, y0 = (int(v) for v in rng.integers(0, 320 - size, 2))
            pic = tex.copy()
            pic.paste(obj.resize((size, size), Image.Resampling.BICUBIC), (x0, y0))
            name = f"z_{o}_on_{t}_{size}.jpg"
            pic.save(folder / name, quality=90)
            composites.append((name, o, size, (x0, y0, x0 + size, y0 + size)))


def edit(pic, kind, rng):
    """An edited copy: always a crop (45-70 % of the side, anywhere), then one more change.
    The right answer is the photo it came from."""
    side = int(256 * rng.uniform(0.45, 0.7)); x, y = (int(v) for v in rng.integers(0, 256 - side, 2))
    pic = pic.crop((x, y, x + side, y + side))
    if kind == "flip":
        return ImageOps.mirror(pic)
    if kind == "colour":
        return ImageEnhance.Color(pic).enhance(rng.uniform(0.0, 0.3))
    if kind == "exposure":
        return ImageEnhance.Brightness(pic).enhance(rng.choice([0.4, 1.8]))
    if kind == "jpeg":
        buf = io.BytesIO(); pic.save(buf, "JPEG", quality=6)
        return Image.open(buf).convert("RGB")
    return pic  # "crop" only


EDITS = ["flip", "crop", "colour", "exposure", "jpeg"]
queries = [(edit(pic, kind, rng), i, kind) for i, (_, pic) in enumerate(photos) for kind in EDITS]
print(f"{len(photos)} photos + {len(composites)} composites in the folder; {len(queries)} edited queries")

# %%
fig, axes = plt.subplots(2, 7, figsize=(10, 3.2))
for a, (q, i, kind) in zip(axes[0], [(photos[3][1], 3, "photo")] + [q for q in queries if q[1] == 3] + [(None, 0, "")]):
    if q is not None:
        a.imshow(q); a.set_title(kind, fontsize=8)
for a, (name, o, size, box) in zip(axes[1], composites[:7]):
    a.imshow(Image.open(folder / name)); a.set_title(f"{o}, {size} px", fontsize=8)
for a in axes.flat:
    a.axis("off")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Index the folder
#
# `featlab extract FOLDER --out F.h5 --layers block5,block6,head` on the command line (run here
# from the notebook, as you would in a terminal); `fl.extract_folder` runs the same engine from
# Python (same settings object, loader, extractor and file). We store three layers, once with
# average and once with max pooling, and once the head in float16 to measure what the smaller
# file costs.

# %%
import subprocess
import sys

LAYERS = ["block5", "block6", "head"]
files = {(how, dtype): work / f"features_{how}_{dtype}.h5"
         for how, dtype in [("avg", "float32"), ("max", "float32"), ("avg", "float16")]}
cli = subprocess.run([sys.executable, "-m", "featlab", "extract", str(folder), "--out", str(files["avg", "float32"]),
                      "--layers", ",".join(LAYERS), "--streams", "1", "--no-progress"],
                     capture_output=True, text=True)
print("featlab extract:", ", ".join(cli.stdout.strip().splitlines()[-1].split(", ")[:3]) if cli.returncode == 0
      else cli.stderr)
for how, dtype in [("max", "float32"), ("avg", "float16")]:
    fl.extract_folder(model, folder, LAYERS if dtype == "float32" else ["head"], files[how, dtype],
                      pooling=how, dtype=dtype, progress=False, streams=1)
paths, rows = fl.load_features(files["avg", "float32"])
print(len(paths), "pictures;", {k: v.shape for k, v in rows.items()})

# %% [markdown]
# ## Search: the top-k grid
#
# `fl.query_features` embeds query files exactly as the file's rows were embedded (model, layer,
# pooling, preprocessing), and `fl.search_file` ranks the stored rows by cosine, as
# `featlab search F.h5 QUERY.jpg -k 5` does.

# %%
qdir = work / "queries"; qdir.mkdir()
shown = [queries[k] for k in (17, 44, 103)]
for n, (q, i, kind) in enumerate(shown):
    q.save(qdir / f"q{n}_{kind}.png")
qfiles = sorted(qdir.glob("*.png"))
qv = fl.query_features(files["avg", "float32"], qfiles, layer="head")
scores, idx, hits = fl.search_file(files["avg", "float32"], qv, layer="head", k=5)
fig, axes = plt.subplots(len(qfiles), 6, figsize=(10, 1.9 * len(qfiles)))
for r, qf in enumerate(qfiles):
    axes[r, 0].imshow(Image.open(qf)); axes[r, 0].set_title(f"query: {qf.stem}", fontsize=8)
    for c in range(5):
        axes[r, c + 1].imshow(Image.open(folder / hits[r][c]))
        axes[r, c + 1].set_title(f"{hits[r][c][:14]} {scores[r, c]:.3f}", fontsize=7)
for a in axes.flat:
    a.axis("off")
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Why this match: the similarity map from scratch
#
# The map compares the query's pooled vector — pooled exactly as the stored rows are: the model's
# preprocessing with its centre crop, the same layer, average pooling — with the vector at each
# position of the **whole** hit. The hit is resized (short side 256, the scale the stored crops
# were taken at) but not cropped, so nothing at its borders is missed.

# %%
# NBVAL_CHECK_OUTPUT
query, hit = shown[1][0], Image.open(folder / hits[1][0])
q = fl.extract(model, prep([query]), "head")["head"].mean(dim=(2, 3))[0].cpu()      # (C,) pooled
w, h = hit.size
s = prep.resize / min(w, h)
whole = hit.resize((round(w * s), round(h * s)), Image.Resampling.BICUBIC)           # no crop
x = torch.from_numpy(np.asarray(whole).copy()).permute(2, 0, 1)[None].float() / 255
x = (x - torch.tensor(prep.mean).view(1, 3, 1, 1)) / torch.tensor(prep.std).view(1, 3, 1, 1)
fmap = fl.extract(model, x.to(fl.device()), "head")["head"][0].cpu()                 # (C, h, w)
cos = (q[:, None, None] * fmap).sum(0) / (q.norm() * fmap.norm(dim=0))              # (h, w)
ours = F.interpolate(cos[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
theirs = fl.similarity_map(model, query, hit, layer="head")
print("feature map", tuple(fmap.shape), "-> similarity map", tuple(ours.shape))
assert np.allclose(ours.numpy(), theirs, atol=1e-4)
print("from scratch == fl.similarity_map: True")

# %%
fig, axes = plt.subplots(1, 3, figsize=(8, 2.8))
axes[0].imshow(query); axes[0].set_title("query", fontsize=9)
axes[1].imshow(hit); axes[1].set_title(f"hit {hits[1][0]}", fontsize=9)
axes[2].imshow(hit); im = axes[2].imshow(theirs, cmap="jet", alpha=0.5, vmin=-1, vmax=1)
axes[2].set_title("similarity map (cosine)", fontsize=9)
for a in axes:
    a.axis("off")
fig.colorbar(im, ax=axes[2], fraction=0.046); plt.show()

# %% [markdown]
# **How it relates to CAM and Grad-CAM.** CAM (notebook 04) weighs the channels of the last map
# by one class's weights, $\text{CAM}[i, j] = \sum_c w_c F[c, i, j]$; Grad-CAM (notebook 06) takes
# the weights from the gradient of a class score. The similarity map weighs the channels by the
# *query's* pooled vector, $q/\lVert q\rVert$, and divides by the length of each position's
# vector: no class, no gradient, one forward pass. A search score is the cosine of the *means*;
# the map shows which positions pull that mean towards the query.

# %% [markdown]
# ## Measure 1: recall@1 and recall@5 per layer, pooling and fused layers
#
# Each of the 120 queries has one right photo. For each choice we search the stored rows with
# `fl.search` and note, per query, whether the right photo is first (recall@1) or in the top 5.
# The intervals are 95 % bootstrap intervals over queries (2000 resamples); each choice is
# compared with the head, average-pooled (the `featlab extract` default) on the same resamples.

# %%
# NBVAL_CHECK_OUTPUT
qmaps = fl.extract(model, prep([q for q, _, _ in queries]), LAYERS)
truth = np.array([i for _, i, _ in queries])
name_to_row = {p: r for r, p in enumerate(paths)}
right_row = np.array([name_to_row[f"{photos[i][0]}.jpg"] for i in truth])
rows_max = fl.load_features(files["max", "float32"])[1]


def hits_at(gallery, qvec, k=5):
    _, top = fl.search(gallery, qvec, k=k)
    return (top[:, :1] == right_row[:, None]).any(1), (top == right_row[:, None]).any(1)


choices = {}
for how, stored in [("avg", rows), ("max", rows_max)]:
    for layer in LAYERS:
        choices[f"{layer} {how}"] = hits_at(stored[layer], fl.pool(qmaps[layer].float(), how).cpu().numpy())
fused_rows = fl.fuse({l: torch.from_numpy(rows[l]) for l in ["block6", "head"]}).numpy()
fused_q = fl.fuse({l: fl.pool(qmaps[l].float(), "avg").cpu() for l in ["block6", "head"]}).numpy()
choices["block6+head avg (fused)"] = hits_at(fused_rows, fused_q)

B = np.random.default_rng(1).integers(0, len(truth), (2000, len(truth)))


def interval(v):
    boot = v[B].mean(1)
    return v.mean(), np.percentile(boot, 2.5), np.percentile(boot, 97.5)


def verdict(a, b):
    """a - b over the same resamples: better / worse / no clear difference."""
    lo, hi = np.percentile(a[B].mean(1) - b[B].mean(1), [2.5, 97.5])
    return "better" if lo > 0 else "worse" if hi < 0 else "no clear difference"


base = choices["head avg"]
verdicts = {}
print(f"{'choice':26s} {'recall@1 [95 % CI]':>22s} {'recall@5 [95 % CI]':>22s}  recall@1 vs head avg")
for name, (h1, h5) in choices.items():
    m1, m5 = interval(h1.astype(float)), interval(h5.astype(float))
    v = "(baseline)" if name == "head avg" else verdict(h1.astype(float), base[0].astype(float))
    verdicts.setdefault(v, []).append(name)
    print(f"{name:26s} {m1[0]:.3f} [{m1[1]:.3f}, {m1[2]:.3f}]   {m5[0]:.3f} [{m5[1]:.3f}, {m5[2]:.3f}]  {v}")

# %%
# NBVAL_CHECK_OUTPUT
for v in ("better", "worse", "no clear difference"):
    print(f"recall@1 against head avg, {v}: {', '.join(verdicts.get(v, [])) or 'none'}")
print("recall@1 per edit, head avg:",
      {kind: round(float(base[0][[k == kind for _, _, k in queries]].mean()), 3) for kind in EDITS})

# %% [markdown]
# The table's last column is the verdict of each choice against the head with average pooling
# (the default of `featlab extract`); the lines under the table sort the choices by verdict.
# Only a choice whose interval of the difference excludes zero is better or worse. Recall@5 is
# close to 1 for every choice: on a folder this small it ranks nothing, so recall@1 is the
# measure to read. The per-edit line shows which edits cost the most.
#
# ## Measure 2: float16 storage against float32
#
# Half the file size; do the rankings change? Same queries, same head rows, stored in float16.

# %%
# NBVAL_CHECK_OUTPUT
rows16 = fl.load_features(files["avg", "float16"])[1]["head"]
qhead = fl.pool(qmaps["head"].float(), "avg").cpu().numpy()
s32, top32 = fl.search(rows["head"], qhead, k=5)
s16, top16 = fl.search(rows16, qhead.astype(np.float16), k=5)
same1 = (top32[:, 0] == top16[:, 0]).astype(float)
overlap5 = np.array([len(set(a) & set(b)) / 5 for a, b in zip(top32, top16)])
h16 = (top16[:, :1] == right_row[:, None]).any(1).astype(float)
print(f"file dtype {rows16.dtype}: same top-1 {interval(same1)[0]:.3f} [{interval(same1)[1]:.3f}, {interval(same1)[2]:.3f}], "
      f"top-5 overlap {overlap5.mean():.3f}, largest score change {np.abs(s32 - s16).max():.1e}")
print("recall@1 float16 vs float32:", verdict(h16, base[0].astype(float)))

# %% [markdown]
# ## Measure 3: the pointing game
#
# Does the similarity map point at the object? On each composite we take the query to be the
# object picture itself and ask whether the map's peak lies inside the pasted box. The baseline
# always points at the centre of the picture — a baseline that wins whenever the object covers
# the centre. Large and small objects separately (12 composites each; intervals bootstrap over
# composites).

# %%
# NBVAL_CHECK_OUTPUT
point, centre, size_of = [], [], []
peaks = {}
for name, o, size, (x0, y0, x1, y1) in composites:
    smap = fl.similarity_map(model, objects[o], Image.open(folder / name), layer="head")
    r, c = np.unravel_index(smap.argmax(), smap.shape)
    peaks[name] = (smap, r, c)
    point.append(x0 <= c < x1 and y0 <= r < y1)
    centre.append(x0 <= 160 < x1 and y0 <= 160 < y1)
    size_of.append(size)
point, centre, size_of = (np.array(v, dtype=float) for v in (point, centre, size_of))
Bc = np.random.default_rng(2).integers(0, 12, (2000, 12))
for size in (128, 48):
    p, c = point[size_of == size], centre[size_of == size]
    d = np.percentile(p[Bc].mean(1) - c[Bc].mean(1), [2.5, 97.5])
    v = "better" if d[0] > 0 else "worse" if d[1] < 0 else "no clear difference"
    print(f"{size:3d} px objects: similarity-map peak inside {p.mean():.3f} "
          f"[{np.percentile(p[Bc].mean(1), 2.5):.3f}, {np.percentile(p[Bc].mean(1), 97.5):.3f}], "
          f"centre point {c.mean():.3f}; similarity map vs centre: {v}")

# %% [markdown]
# The printed verdicts say whether the map points at the object more often than the centre
# point does, for large and for small objects.
#
# ## Where it fails
#
# A small object is a few positions of a 7×7-ish head map — each position's vector mixes the
# object with the texture around it, so the peak can drift onto the texture. And a query of a
# **repeated texture** (a patch of brick) resembles every place of a brick wall about equally:
# the map is flat and its peak means nothing.

# %%
misses = [n for (n, o, size, _), p in zip(composites, point) if size == 48 and not p][:2]
brick_patch = textures["brick"].crop((0, 0, 96, 96))
flat = fl.similarity_map(model, brick_patch, Image.open(folder / composites[2][0]), layer="head")
panels = [(n, peaks[n][0], (peaks[n][2], peaks[n][1])) for n in misses]
panels.append((composites[2][0], flat, np.unravel_index(flat.argmax(), flat.shape)[::-1]))
fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3))
for a, (n, smap, (c, r)) in zip(np.atleast_1d(axes), panels):
    a.imshow(Image.open(folder / n)); a.imshow(smap, cmap="jet", alpha=0.5, vmin=-1, vmax=1)
    a.plot(c, r, "w+", ms=14, mew=3); a.axis("off")
    a.set_title(n if smap is not flat else "query: a brick patch", fontsize=8)
plt.tight_layout(); plt.show()
print(f"brick-patch query on a brick wall: map range {flat.min():.2f}..{flat.max():.2f}, spread (std) {flat.std():.3f}")

# %% [markdown]
# ## Explore
#
# Pick a query (edited copies, or **upload** your own picture), the layer and the pooling; the
# grid shows the top-k hits with their cosine scores and, under each, its similarity map. The
# ranking changes with the layer and the pooling.

# %%
explorer = fl.widgets.search_explorer(model, Path(MY_FOLDER).expanduser() if MY_FOLDER else folder, queries={f"{photos[i][0]} ({kind})": q for q, i, kind in queries[::7]},
                                      layers=("block6", "head"), k=4)
explorer

# %% [markdown]
# ## Pitfalls
# - A query must be embedded as the rows were: same model, layer, pooling and preprocessing
#   (`fl.query_features` reads them from the file); a vector from another layer raises.
# - The map is a cosine per position, not a probability; compare maps on one colour scale (−1..1).
# - The head map of a 224-pixel crop is 7×7: objects much smaller than a cell blur into their
#   surroundings. An earlier layer has finer cells but weaker meaning.
#
# Exercise: `exercises/16_search_your_photos.ipynb` (the similarity map, recall@k, a contact sheet).

# %%
print(f"run time {time.time() - t0:.0f} s")
