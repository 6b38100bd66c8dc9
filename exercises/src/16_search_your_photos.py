# ---
# jupyter:
#   jupytext:
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
# # Exercise 16 — Search your photos
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/16_search_your_photos.ipynb`. Fill in each `TODO`, run the cell, then
# run the check below it. It prints ✓ when your function is right, and says what is wrong when
# it is not.

# %%
import numpy as np
import torch
import torch.nn.functional as F

import featlab as fl

_ = torch.manual_seed(0)


# %% [markdown]
# ## 1. The similarity map
#
# `similarity_map(q, fmap, size)` takes a query's pooled vector `q` (C,), a hit's feature map
# `fmap` (C, h, w) and the picture's size `(H, W)`. It returns the (H, W) map of the cosine
# between `q` and the vector `fmap[:, i, j]` at each position, upsampled with
# `F.interpolate(..., mode="bilinear", align_corners=False)`:
# $S[i, j] = \frac{q \cdot F[:, i, j]}{\lVert q \rVert\,\lVert F[:, i, j] \rVert}$.
# Do not call `F.cosine_similarity` or `fl.similarity_map`.

# %%
def similarity_map(q, fmap, size):
    ### BEGIN SOLUTION
    q = q / q.norm()
    f = fmap / fmap.norm(dim=0, keepdim=True)              # each position's vector, unit length
    s = torch.einsum("c,chw->hw", q, f)                     # (h, w) cosines
    return F.interpolate(s[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_similarity_map(similarity_map)


# %% [markdown]
# ## 2. Recall@k from search results
#
# `fl.search(rows, queries, k=K)` returns `indices` (Q, K): each query's hits, best first.
# `search_recall(indices, right, k)` takes them and `right` (Q,), the row of each query's right
# answer, and returns one number: the share of queries whose right row is among their first `k`
# hits (`k <= K`).

# %%
def search_recall(indices, right, k):
    ### BEGIN SOLUTION
    return float((indices[:, :k] == right[:, None]).any(axis=1).mean())
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_search_recall(search_recall)


# %% [markdown]
# ## 3. A contact sheet
#
# `contact_sheet(thumbs, cols)` takes a list of pictures, each an (h, w, 3) uint8 array of the same
# size, and returns one (rows·h, cols·w, 3) uint8 picture: the thumbnails row by row (picture `n`
# at row `n // cols`, column `n % cols`), with as many rows as needed and the empty cells of the
# last row white (255).

# %%
def contact_sheet(thumbs, cols):
    ### BEGIN SOLUTION
    h, w, _ = thumbs[0].shape
    rows = -(-len(thumbs) // cols)                          # ceil(n / cols)
    sheet = np.full((rows * h, cols * w, 3), 255, np.uint8)
    for n, t in enumerate(thumbs):
        r, c = divmod(n, cols)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    return sheet
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_contact_sheet(contact_sheet)

# %% [markdown]
# Try it on real pictures: the top 5 hits of a query, as one sheet.

# %%
thumbs = [np.asarray(fl.load_image(name).resize((96, 96))) for name in ["chelsea", "coffee", "astronaut", "rocket", "flower"]]
sheet = contact_sheet(thumbs, 3)
print(sheet.shape, sheet.dtype)
