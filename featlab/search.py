"""Exact cosine top-k search over stored features, in row chunks so memory stays bounded.

Taught in ``notebooks/12_performance.ipynb``; used by the ``featlab search`` command line.

The rows are read ``chunk_rows`` at a time (from an array, a tensor or an HDF5 dataset on disk),
L2-normalised in float32 and compared with the normalised queries; a running top-k per query
is merged with each chunk's best, so memory is O(chunk_rows·D + Q·k) whatever N is.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from .store import open_features
from .embed import l2_normalize

__all__ = ["search", "search_file", "BACKENDS"]

BACKENDS = ("auto", "torch", "faiss")


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError("backend='faiss' needs the faiss package: pip install featlab[search] "
                          "(it installs faiss-cpu), or use backend='torch' (same results).") from None
    return faiss


def _merge(best_s: torch.Tensor, best_i: torch.Tensor, s: torch.Tensor, i: torch.Tensor,
           k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k of two candidate sets (Q, a) and (Q, b): higher score first, lower index on ties."""
    s, i = torch.cat([best_s, s], dim=1), torch.cat([best_i, i], dim=1)
    by_index = i.argsort(dim=1, stable=True)
    s, i = s.gather(1, by_index), i.gather(1, by_index)
    by_score = s.argsort(dim=1, descending=True, stable=True)[:, :k]
    return s.gather(1, by_score), i.gather(1, by_score)


def search(features, queries, k: int = 5, chunk_rows: int = 65536,
           backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``features`` most cosine-similar to each query, exactly.

    ``features``: (N, D) NumPy array, torch tensor, or an HDF5 dataset (``h5py.Dataset``, or
    ``fl.store.open_features(p).features[layer]``) — read ``chunk_rows`` rows at a time, so a
    file larger than RAM never has to fit. float16 storage is computed in float32.
    ``queries``: (Q, D) or one (D,) vector. Returns ``scores`` (Q, k) float32 cosines, best
    first, and ``indices`` (Q, k) int64 row numbers; equal scores list the lower row first.
    ``backend``: ``"torch"`` (= ``"auto"``), or ``"faiss"``: an exact inner-product index
    (``faiss.IndexFlatIP``) per chunk of normalised float32 rows, same results (within float
    rounding; of rows tied exactly at the k-th place, faiss may keep another one); needs
    ``pip install featlab[search]``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
    faiss = _faiss() if backend == "faiss" else None
    shape = tuple(getattr(features, "shape", ()))
    if len(shape) != 2:
        raise ValueError(f"features must be (N, D): one row per picture; got shape {shape}.")
    n, d = shape
    q = torch.as_tensor(queries).detach()
    if q.ndim == 1:
        q = q[None]
    if q.ndim != 2 or q.shape[1] != d:
        raise ValueError(f"queries must be (Q, D) with D = {d} like the features; got shape "
                         f"{tuple(q.shape)}. Use the same model, layer and pooling as the features.")
    if not torch.isfinite(q).all():
        raise ValueError("queries contain NaN or infinite values; check how they were computed.")
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a whole number >= 1 (hits per query); got {k!r}.")
    if k > n:
        raise ValueError(f"k = {k} is more than the N = {n} rows searched; use k <= {n}.")
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a whole number >= 1; got {chunk_rows!r}.")
    device = features.device if isinstance(features, torch.Tensor) else torch.device("cpu")
    q = l2_normalize(q.to(device, torch.float32))
    best_s = torch.empty(len(q), 0, device=device)
    best_i = torch.empty(len(q), 0, dtype=torch.int64, device=device)
    for start in range(0, n, chunk_rows):
        rows = features[start:start + chunk_rows]
        rows = torch.as_tensor(np.asarray(rows) if not isinstance(rows, torch.Tensor) else rows)
        rows = rows.to(device, torch.float32)
        if not torch.isfinite(rows).all():
            raise ValueError(f"features rows {start}..{start + len(rows) - 1} contain NaN or infinite "
                             "values; re-extract those pictures.")
        rows = l2_normalize(rows)
        m = min(k, len(rows))
        if faiss is None:
            s = q @ rows.T                                             # (Q, m_chunk)
            s, i = s.sort(dim=1, descending=True, stable=True)         # ties: lower row first
            s, i = s[:, :m], i[:, :m] + start
        else:
            index = faiss.IndexFlatIP(d)
            index.add(np.ascontiguousarray(rows.cpu().numpy()))
            s, i = index.search(np.ascontiguousarray(q.cpu().numpy()), m)
            s, i = torch.from_numpy(s).to(device), torch.from_numpy(i).to(device) + start
        best_s, best_i = _merge(best_s, best_i, s, i, k)
    return best_s.cpu().numpy(), best_i.cpu().numpy()


def search_file(path: str | os.PathLike, queries, layer: str | None = None, k: int = 5,
                chunk_rows: int = 65536, backend: str = "auto") -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """:func:`search` over a feature file of ``featlab extract``, reading its committed rows
    chunk by chunk. ``layer``: the only stored one by default. Returns ``scores`` (Q, k),
    ``indices`` (Q, k) and the picture paths of the hits, one list of k per query."""
    with open_features(path) as ff:
        layer = ff.layer(layer)
        scores, indices = search(ff.features[layer], queries, k=k, chunk_rows=chunk_rows, backend=backend)
        return scores, indices, [[ff.paths[j] for j in row] for row in indices]


def query_features(path: str | os.PathLike, pictures, layer: str | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """(Q, D) features of query pictures (files), embedded exactly as the rows of the feature
    file ``path`` were: its model, layer, pooling and preprocessing, and the precision, memory
    layout and decoding its most recent run recorded (:meth:`ExtractSettings.from_file_attrs`),
    through the same loader and :class:`featlab.extractor.FeatureExtractor` as ``featlab
    extract``, then rounded to the file's storage dtype. ``device``: default ``fl.device()``
    (GPU decoding is used only where the file's rows had it and ``device`` is CUDA).
    An unreadable query raises ``ValueError`` with its reason."""
    from dataclasses import replace
    from pathlib import Path

    from .extractor import FeatureExtractor
    from .loader import load_batches
    from .models import device as default_device
    from .models import load_model, model_names, preprocess_for
    from .settings import ExtractSettings

    with open_features(path) as ff:
        layer, attrs = ff.layer(layer), ff.attrs
    settings = ExtractSettings.from_file_attrs(attrs, str(path))
    if settings.model not in model_names():
        raise ValueError(f"'{path}' was made with model {settings.model!r}, which featlab cannot load; embed "
                         "the queries with that model yourself (fl.FeatureExtractor) and call fl.search_file.")
    dev = torch.device(device) if device is not None else default_device()
    prep = preprocess_for(settings.model)
    if "preprocess" in attrs and str(attrs["preprocess"]) != repr(prep):
        raise ValueError(f"'{path}' was made with other preprocessing ({attrs['preprocess']}) than this "
                         f"featlab's ({prep!r}); re-extract it.")
    settings = replace(settings, layers=(layer,)).resolved(dev)
    extractor = FeatureExtractor.from_settings(load_model(settings.model, device=dev), settings, prep)
    files = [str(q) for q in pictures]
    (batch,) = load_batches(Path(), files, prep, max(1, len(files)), dev, workers=0,
                            jpeg_on_device=settings.jpeg_on_device and dev.type == "cuda",
                            channels_last=extractor.channels_last, fast_decode=settings.fast_decode)
    if batch.skipped:
        raise ValueError("; ".join(batch.skipped.values()))
    v = extractor(batch.x)[layer].cpu()
    return v.to(getattr(torch, settings.dtype)).float()
