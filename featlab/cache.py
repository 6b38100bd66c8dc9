"""Extracting a folder of pictures into an HDF5 feature file that survives interruptions.

Taught in ``notebooks/12_performance.ipynb``; used by the ``featlab extract`` command line.

Layout of the file: ``paths`` (N,) image paths relative to the folder, ``features/<layer>``
(N, D) float32 vectors (maps pooled to vectors), attribute ``count`` = rows that are complete.
Rows are written batch by batch and ``count`` is raised last, so a run that is interrupted
loses at most the batch in flight; the next run drops any partial rows and carries on with
the pictures not yet done — nothing is lost or stored twice.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .embed import pool
from .extract import extract, model_device, resolve_layer
from .images import ImageError
from .models import preprocess_for

__all__ = ["IMAGE_SUFFIXES", "list_images", "pool", "extract_folder", "load_features"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def list_images(folder: str | os.PathLike) -> list[str]:
    """Image files below ``folder`` (recursively), as sorted relative POSIX paths."""
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"'{root}' is not a folder of images.")
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _open(out: Path, layers: Sequence[str], model_name: str, pooling: str):
    import h5py

    f = h5py.File(out, "a")
    meta = {"model": model_name, "layers": ",".join(layers), "pool": pooling}
    if "count" in f.attrs:
        old = {k: f.attrs[k] for k in meta}
        if old != meta:
            f.close()
            raise ValueError(f"'{out}' holds features for {old}, not {meta}. Use another --out file.")
        n = int(f.attrs["count"])
        for ds in [f["paths"], *f["features"].values()]:
            ds.resize(n, axis=0)  # drop rows of an interrupted batch
    else:
        f.attrs.update(meta)
        f.attrs["count"] = 0
        f.create_dataset("paths", (0,), maxshape=(None,), dtype=h5py.string_dtype())
        f.create_group("features")
    return f


def extract_folder(model: nn.Module, folder: str | os.PathLike, layers: str | Sequence[str],
                   out: str | os.PathLike, batch_size: int | None = None, pooling: str = "avg",
                   progress: bool = True) -> dict:
    """Pooled features of every picture in ``folder`` into the HDF5 file ``out``; resumable.

    Returns a summary ``{"done": n_new, "skipped": {path: reason}, "total": n_in_file}``.
    Unreadable pictures are skipped (and reported), not fatal. ``batch_size`` defaults to 32 on
    a GPU and 4 on a CPU, where small batches measured faster (``benchmarks/extract_speed.py``).
    """
    layers = [layers] if isinstance(layers, str) else list(layers)
    for name in layers:
        resolve_layer(model, name)  # fail early, listing valid names
    if batch_size is None:
        batch_size = 4 if model_device(model).type == "cpu" else 32
    model_name = getattr(model, "featlab_name", type(model).__name__)
    prep = preprocess_for(model)
    root = Path(folder)
    paths = list_images(root)
    skipped: dict[str, str] = {}
    done_now = 0
    f = _open(Path(out), layers, model_name, pooling)
    try:
        done = set(f["paths"].asstr()[:].tolist())
        todo = [p for p in paths if p not in done]
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(paths), initial=len(paths) - len(todo), desc="featlab extract", unit="img")
        for start in range(0, len(todo), batch_size):
            batch, tensors = [], []
            for rel in todo[start:start + batch_size]:
                try:
                    tensors.append(prep.image_to_tensor(root / rel))
                    batch.append(rel)
                except ImageError as e:
                    skipped[rel] = str(e)
            if batch:
                feats = extract(model, torch.stack(tensors), layers)
                n, m = int(f.attrs["count"]), len(batch)
                for name in layers:
                    v = pool(feats[name].float(), pooling).cpu().numpy().astype(np.float32)
                    v = v.reshape(m, -1)
                    if name not in f["features"]:
                        f["features"].create_dataset(name, (0, v.shape[1]), maxshape=(None, v.shape[1]),
                                                     dtype="float32", chunks=(min(256, max(m, 1)), v.shape[1]))
                    ds = f["features"][name]
                    ds.resize(n + m, axis=0)
                    ds[n:] = v
                f["paths"].resize(n + m, axis=0)
                f["paths"][n:] = batch
                f.flush()
                f.attrs["count"] = n + m  # the commit point
                f.flush()
                done_now += m
            if bar is not None:
                bar.update(len(todo[start:start + batch_size]))
        if bar is not None:
            bar.close()
        total = int(f.attrs["count"])
    finally:
        f.close()
    return {"done": done_now, "skipped": skipped, "total": total}


def load_features(path: str | os.PathLike) -> tuple[list[str], dict[str, np.ndarray]]:
    """Read a file written by :func:`extract_folder`: (paths, {layer: (N, D) array})."""
    import h5py

    with h5py.File(path, "r") as f:
        n = int(f.attrs["count"])
        return (f["paths"].asstr()[:n].tolist(),
                {k: ds[:n] for k, ds in f["features"].items()})
