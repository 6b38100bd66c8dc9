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
# # Exercise 07 — Embeddings and retrieval
#
# Glossary / 术语表: [docs/glossary.md](../docs/glossary.md)
#
# Goes with `notebooks/07_embeddings_retrieval.ipynb`. Fill in each `TODO`, run the cell, then
# run the check below it. It prints ✓ when your function is right, and says what is wrong when
# it is not.
#
# Shapes: an embedding matrix is (N, D), one picture per **row**. Labels are integer tensors,
# one per row.

# %%
import numpy as np
import torch
import featlab as fl

_ = torch.manual_seed(0)


# %% [markdown]
# ## 1. The cosine similarity matrix
#
# `cosine_matrix(a, b)` takes `a` (N, D) and `b` (M, D) and returns the (N, M) matrix whose
# entry `[i, j]` is the cosine of row `i` of `a` and row `j` of `b`:
# $\cos = \frac{a_i \cdot b_j}{\lVert a_i \rVert \, \lVert b_j \rVert}$.
# Normalise the rows, then take one matrix product. Do not call `fl.cosine_similarity` or
# `F.cosine_similarity`.

# %%
def cosine_matrix(a, b):
    ### BEGIN SOLUTION
    a = a / a.norm(dim=1, keepdim=True)
    b = b / b.norm(dim=1, keepdim=True)
    return a @ b.T
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_cosine_matrix(cosine_matrix)


# %% [markdown]
# ## 2. Recall@k
#
# `recall_at_k(similarity, query_labels, gallery_labels, k)` takes a (Q, G) similarity matrix
# (queries × gallery) and the labels of both. It returns one number: the share of queries
# that have at least one gallery item **of their own label** among their `k` most similar
# items.

# %%
def recall_at_k(similarity, query_labels, gallery_labels, k):
    ### BEGIN SOLUTION
    top = similarity.topk(k, dim=1).indices                        # (Q, k) the k most similar
    hit = (gallery_labels[top] == query_labels[:, None]).any(dim=1)  # (Q,) at least one right
    return hit.float().mean().item()
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_recall_at_k(recall_at_k)


# %% [markdown]
# ## 3. Leave-one-out recall@k
#
# Often there is no separate query set: every item of one set is used as a query against all
# the *other* items. `leave_one_out_recall(similarity, labels, k)` takes the (N, N) cosine
# matrix of a set with itself. It returns recall@k with each item's own entry left out.
# Otherwise every item finds itself first. Do not change the matrix you are given.

# %%
def leave_one_out_recall(similarity, labels, k):
    ### BEGIN SOLUTION
    others = similarity.clone()
    others.fill_diagonal_(float("-inf"))                           # an item may not find itself
    return recall_at_k(others, labels, labels, k)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_leave_one_out_recall(leave_one_out_recall)


# %% [markdown]
# ## 4. Fusing layers, each normalised
#
# `fuse_layers(embeddings, weights)` takes `{layer: (N, D_l)}` and `{layer: w_l}`. It returns
# one (N, ΣD_l) matrix. Normalise the rows of every layer, scale layer $l$ by $\sqrt{w_l}$,
# concatenate in the order of the dictionary, and normalise the rows of the result. Then the
# cosine of two fused vectors is $\sum_l w_l \cos_l / \sum_l w_l$.

# %%
def fuse_layers(embeddings, weights):
    ### BEGIN SOLUTION
    parts = [embeddings[n] / embeddings[n].norm(dim=1, keepdim=True) * weights[n] ** 0.5 for n in embeddings]
    fused = torch.cat(parts, dim=1)
    return fused / fused.norm(dim=1, keepdim=True)
    ### END SOLUTION


# %% tags=["check"]
fl.checks.check_fuse_layers(fuse_layers)

# %% [markdown]
# ## 5. Use them on the real network
#
# Cut 3 random 160-px crops from each of the 12 sample pictures (the class is the picture).
# Embed them at `block3` and `head` *without* normalisation, so your functions have to do it.
# Then measure leave-one-out recall@1 for each layer and for their fusion. Does fusing help?
# And what does recall@1 become if you forget to leave the item out?

# %%
model = fl.load_model("efficientnet_lite0")
rng = np.random.default_rng(0)
crops, labels = [], []
for c, name in enumerate(fl.sample_images()):
    im = fl.load_image(name)
    for _ in range(3):
        left, top = int(rng.integers(0, im.width - 159)), int(rng.integers(0, im.height - 159))
        crops.append(im.crop((left, top, left + 160, top + 160))); labels.append(c)
labels = torch.tensor(labels)
raw = {L: v.cpu() for L, v in fl.embed(model, crops, ["block3", "head"], normalize=False).items()}
views = {**raw, "fused 1:1": fuse_layers(raw, {"block3": 1.0, "head": 1.0})}
for name, vectors in views.items():
    if vectors is None:
        break
    sim = cosine_matrix(vectors, vectors)
    if sim is None:
        break
    loo, itself = leave_one_out_recall(sim, labels, 1), recall_at_k(sim, labels, labels, 1)
    print(f"{name:10s} leave-one-out recall@1 {'TODO' if loo is None else f'{loo:.2f}'}   "
          f"recall@1 counting itself {'TODO' if itself is None else f'{itself:.2f}'}")
