"""Feature maps as vectors: pooling, per-layer normalisation, fusion, cosine similarity, recall@k.

Taught in ``notebooks/07_embeddings_retrieval.ipynb``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .extract import extract
from .extractor import pool
from .images import ImageLike
from .settings import POOLINGS

__all__ = ["pool", "l2_normalize", "embed", "fuse", "cosine_similarity", "recall_at_k"]

POOLS = POOLINGS

_pool = pool  # embed() has an argument named ``pool``


def l2_normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """(N, D) -> (N, D) with every row of unit length (an all-zero row stays zero)."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def embed(model: nn.Module, images: ImageLike | Sequence[ImageLike] | torch.Tensor,
          layers: str | Sequence[str], pool: str = "avg", normalize: bool = True,
          batch_size: int | None = None) -> dict[str, torch.Tensor]:
    """One vector per image and layer: ``{layer: (N, D)}`` float32 on the model's device.

    Each layer's map (N, C, H, W) is pooled (``avg``, ``max`` or ``none`` = flattened; see
    :func:`pool`), then L2-normalised per layer if ``normalize`` — layers differ in scale by
    orders of magnitude, so unnormalised vectors cannot be compared or fused across layers.
    ``layers`` and ``images`` are as for :func:`featlab.extract`.
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}; got '{pool}'.")
    maps = extract(model, images, layers, batch_size=batch_size)
    out = {name: _pool(f.float(), pool) for name, f in maps.items()}
    return {name: l2_normalize(v) if normalize else v for name, v in out.items()}


def fuse(embeddings: Mapping[str, torch.Tensor], weights: Mapping[str, float] | None = None,
         how: str = "concat") -> torch.Tensor:
    """Several layers' vectors ``{layer: (N, D_l)}`` -> one unit vector per image.

    Every layer is L2-normalised first, so each counts by its weight and not by its scale.
    ``concat``: concatenate ``sqrt(w_l)·v_l`` and normalise — the cosine of two fused vectors
    is then the weighted mean of the per-layer cosines, ``Σ w_l cos_l / Σ w_l``.
    ``sum``: ``Σ w_l v_l``, normalised (needs the same D in every layer).
    ``weights`` default to 1 per layer.
    """
    if not embeddings:
        raise ValueError("fuse needs at least one layer's vectors.")
    names = list(embeddings)
    w = {n: 1.0 for n in names} if weights is None else dict(weights)
    unknown = set(w) - set(names)
    if unknown or set(names) - set(w):
        raise ValueError(f"weights must name exactly the layers {names}; got {list(w)}.")
    if any(v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError(f"weights must be >= 0 and not all zero; got {w}.")
    vs = {n: l2_normalize(embeddings[n].float()) for n in names}
    if how == "concat":
        return l2_normalize(torch.cat([vs[n] * w[n] ** 0.5 for n in names], dim=1))
    if how == "sum":
        dims = {n: v.shape[1] for n, v in vs.items()}
        if len(set(dims.values())) > 1:
            raise ValueError(f"how='sum' needs one dimension for all layers; got {dims}. "
                             "Use how='concat' (it weights the per-layer cosines the same way).")
        return l2_normalize(sum(vs[n] * w[n] for n in names))
    raise ValueError(f"how must be 'concat' or 'sum'; got '{how}'.")


def cosine_similarity(a: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """(N, D) and (M, D) -> (N, M) matrix of cosines; ``b=None`` compares ``a`` with itself."""
    a = l2_normalize(a.float())
    b = a if b is None else l2_normalize(b.float())
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"vectors of different length: {a.shape[1]} and {b.shape[1]}.")
    return a @ b.T


def recall_at_k(similarity: torch.Tensor, query_labels: Sequence[int] | torch.Tensor,
                gallery_labels: Sequence[int] | torch.Tensor, k: int = 1) -> float:
    """Share of queries with an item of their own label among the ``k`` most similar items.

    ``similarity``: (Q, G) between queries and gallery; labels: (Q,) and (G,) integers.
    """
    sim = similarity.detach().cpu()
    q = torch.as_tensor(query_labels).cpu()
    g = torch.as_tensor(gallery_labels).cpu()
    if sim.shape != (len(q), len(g)):
        raise ValueError(f"similarity is {tuple(sim.shape)}; expected (len(query_labels), "
                         f"len(gallery_labels)) = ({len(q)}, {len(g)}).")
    if not 1 <= k <= len(g):
        raise ValueError(f"k must be between 1 and the gallery size {len(g)}; got {k}.")
    top = sim.topk(k, dim=1).indices                       # (Q, k)
    return float((g[top] == q[:, None]).any(dim=1).float().mean())
