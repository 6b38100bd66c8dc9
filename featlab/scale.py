"""Beyond one machine: featlab's extraction as stages of a Ray Data job.

:func:`featlab.extract_folder` (``notebooks/12_performance.ipynb``) runs on one machine.
Here the same steps — read and preprocess a picture (:func:`featlab.loader.to_uint8`),
normalise, forward with hooks and pool (:class:`featlab.extractor.FeatureExtractor`, the same
one ``featlab extract`` runs) — are callables that ``ray.data.Dataset.map_batches`` runs on CPU
or GPU workers; Ray schedules them, streams the batches between them and across machines.
featlab does no distribution of its own.

A batch is Ray's ``dict[str, np.ndarray]``; the pictures come in one of these columns:

- ``path``: file names every worker can open (:func:`folder_dataset`), read by Pillow
  exactly as ``extract_folder`` reads them (same features, same reasons for bad files);
- ``bytes``: file contents, from ``ray.data.read_binary_files(..., include_paths=True)``
  (cloud storage; a bad file is reported, not fatal);
- ``image``: arrays from ``ray.data.read_images(..., mode="RGB")``; Ray decodes these itself,
  so EXIF rotation and transparency are not handled as featlab does, and a corrupt file stops
  ``read_images`` before featlab sees it.

Bad pictures never stop a job: their row gets NaN features and the reason in ``error``
(``""`` for good rows). :func:`write_hdf5` stores a job's rows in ``extract_folder``'s file
format (so ``fl.load_features``, ``fl.search_file`` and ``featlab search`` read it);
``ds.write_parquet(folder)`` writes Parquet, which :func:`load_parquet` reads back.

Needs Ray Data (``pip install featlab[scale]``); featlab imports it only when a function here
asks for it.
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .extractor import FeatureExtractor, bad_rows
from .images import ImageError
from .loader import list_images, read_picture, to_uint8
from .models import device as _default_device
from .models import load_model, preprocess_for
from .settings import ExtractSettings
from .store import FeatureWriter

__all__ = ["Extractor", "decode_batch", "folder_dataset", "write_hdf5", "load_parquet"]

SOURCES = ("bytes", "image", "path")  # where a row's picture comes from, first found first
RESERVED = (*SOURCES, "pixels", "error")  # columns that cannot be layer names
Batch = dict[str, np.ndarray]


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ImportError("featlab.scale needs Ray Data: pip install featlab[scale] "
                          "(it installs ray[data]).") from None
    return ray


def folder_dataset(folder: str | os.PathLike):
    """A Ray dataset with one row ``{"path": absolute file name}`` per picture below ``folder``,
    in the order (and with the file types) of :func:`featlab.extract_folder`.

    Every worker opens the files itself, so on several machines ``folder`` must be shared
    storage mounted at the same place (else read ``bytes`` with ``ray.data.read_binary_files``).
    """
    ray = _ray()
    root = Path(folder).absolute()
    return ray.data.from_items([{"path": str(root / rel)} for rel in list_images(root)])


def _rows(batch: Mapping[str, Any]) -> int:
    if not batch:
        raise ValueError("empty batch: expected a column 'path', 'bytes' or 'image'.")
    return len(next(iter(batch.values())))


def _from_bytes(data: bytes, name: str) -> Image.Image:
    """File contents -> an opened PIL image (``to_uint8`` converts it to RGB, EXIF applied)."""
    try:
        img = Image.open(io.BytesIO(bytes(data)))
        img.load()
        return img
    except Image.DecompressionBombError as e:
        raise ImageError(f"'{name}' is refused as a possible decompression bomb ({e}).") from None
    except UnidentifiedImageError:
        raise ImageError(f"'{name}' is not an image PIL can read (JPEG, PNG, BMP, TIFF, WebP, ...).") from None
    except (OSError, SyntaxError) as e:  # not an image, truncated, corrupt
        raise ImageError(f"'{name}' is not a picture Pillow can read, or is corrupt ({e}).") from None


def decode_batch(batch: Batch, model: str = "efficientnet_lite0") -> Batch:
    """Pictures of a batch -> ``pixels`` (N, 3, crop, crop) uint8, ready for :class:`Extractor`.

    The CPU stage of a two-stage job (decode on many CPU tasks, the model on few GPU actors):
    ``ds.map_batches(decode_batch, fn_kwargs={"model": name})``. Reads the ``bytes``, ``image``
    or ``path`` column (the first present), resizes and centre-crops as ``model``'s weights
    expect (:func:`featlab.loader.to_uint8`). Adds ``error`` (the reason, ``""`` if read; rows
    already in error are left as they are, with zero pixels); drops ``bytes`` and ``image``.
    """
    n = _rows(batch)
    source = next((c for c in SOURCES if c in batch), None)
    if source is None:
        raise ValueError(f"the batch has columns {sorted(batch)}; featlab.scale reads pictures from a "
                         "column 'path' (file names), 'bytes' (ray.data.read_binary_files) or 'image' "
                         "(ray.data.read_images).")
    prep = preprocess_for(model)
    pixels = np.zeros((n, 3, prep.crop, prep.crop), np.uint8)
    errors = [str(e) for e in batch["error"]] if "error" in batch else [""] * n
    paths = batch.get("path")
    for i in range(n):
        if errors[i]:
            continue
        name = str(paths[i]) if paths is not None else f"row {i} of a batch"
        if source == "path":  # exactly extract_folder's reading, reasons included
            _, kind, payload = read_picture(Path(), name, prep, jpeg_on_device=False)
        else:
            try:
                image = _from_bytes(batch["bytes"][i], name) if source == "bytes" else np.asarray(batch["image"][i])
                kind, payload = "pixels", to_uint8(image, prep)
            except ImageError as e:
                kind, payload = "skip", str(e)
            except Exception as e:  # a decoder bug must not stop a job over millions of files
                kind, payload = "skip", f"'{name}' could not be read ({type(e).__name__}: {e})."
        if kind == "skip":
            errors[i] = payload
        else:
            pixels[i] = payload.numpy()
    out = {k: v for k, v in batch.items() if k not in ("bytes", "image")}
    return {**out, "pixels": pixels, "error": np.array(errors, dtype=object)}


class Extractor:
    """Pooled features of a batch of pictures, for ``ray.data.Dataset.map_batches``.

    Ray creates one per actor and the model is loaded once there::

        ds.map_batches(Extractor, fn_constructor_kwargs={"layers": ("head",)}, batch_size=64,
                       compute=ray.data.ActorPoolStrategy(size=2))              # CPU actors
        ds.map_batches(Extractor, ..., num_gpus=1, batch_size=256,
                       compute=ray.data.ActorPoolStrategy(size=n_gpus))        # GPU actors

    ``model``: a name from ``fl.model_names()``; ``layers``: names or aliases; each map
    (N, C, H, W) is pooled by ``pooling`` (avg, max, none) and returned as an (N, D) column named
    after the layer, stored as ``dtype`` (float32 or float16). ``device``: default
    ``fl.device()`` inside the actor (the GPU Ray gave it, else the CPU); ``precision`` and
    ``channels_last`` as for ``extract_folder`` (bfloat16 autocast by default on CUDA, float32
    elsewhere; channels_last on). The settings are checked here, once
    (:class:`featlab.settings.ExtractSettings`), and the pictures go through
    :class:`featlab.extractor.FeatureExtractor`, as in ``featlab extract``.
    A call takes a batch with ``path``, ``bytes`` or ``image`` (decoded here with
    :func:`decode_batch`) or ``pixels`` (decoded by an earlier stage) and returns its other
    columns plus the features and ``error``; unreadable rows get NaN features and the reason.
    """

    def __init__(self, model: str = "efficientnet_lite0", layers: str | Sequence[str] = ("head",),
                 pooling: str = "avg", device: torch.device | str | None = None, dtype: str = "float32",
                 precision: str | None = None, channels_last: bool = True):
        device = device if device is not None else _default_device()
        self.settings = ExtractSettings(model=model, layers=layers, pooling=pooling, dtype=dtype,
                                        precision=precision, channels_last=channels_last,
                                        device=device, streams=1).resolved()
        self.layers = list(self.settings.layers)
        taken = [name for name in self.layers if name in RESERVED]
        if taken:
            raise ValueError(f"layer name(s) {taken} clash with the columns {RESERVED}; use the module path.")
        self.model_name, self.dtype, self.device = model, dtype, self.settings.device
        self.extractor = FeatureExtractor.from_settings(load_model(model, device=self.device), self.settings)
        self.prep = self.extractor.prep
        self.dims = self.extractor.dims()  # for the NaN rows of unreadable pictures

    def features(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 3, crop, crop) uint8 -> ``{layer: (N, D) float32}`` on the host."""
        vectors = self.extractor.from_pixels(torch.from_numpy(np.ascontiguousarray(pixels)))
        return {name: v.cpu().numpy() for name, v in vectors.items()}

    def __call__(self, batch: Batch) -> Batch:
        if "pixels" not in batch:
            batch = decode_batch(batch, self.model_name)
        batch = dict(batch)
        pixels = batch.pop("pixels")
        errors = [str(e) for e in batch["error"]]
        ok = [i for i, e in enumerate(errors) if not e]
        out = {name: np.full((len(errors), d), np.nan, self.dtype) for name, d in self.dims.items()}
        if ok:
            feats = self.features(pixels[ok])
            for name, bad in bad_rows(feats, self.dtype).items():
                for k in np.flatnonzero(bad):  # NaN, inf, beyond float16
                    errors[ok[k]] = errors[ok[k]] or (
                        f"layer '{name}' gave NaN, infinite or (for float16) too large features: the "
                        "model produces them (NaN weights, an overflow); try precision='float32' "
                        "or dtype='float32'.")
            keep = [k for k, i in enumerate(ok) if not errors[i]]  # the rows of all layers stay NaN
            for name, v in feats.items():
                out[name][[ok[k] for k in keep]] = v[keep].astype(self.dtype)
        return {**batch, **out, "error": np.array(errors, dtype=object)}


def _batches(rows, batch_size: int) -> Iterable[Mapping[str, Any]]:
    if hasattr(rows, "iter_batches"):  # a Ray dataset: its rows stream to this process
        return rows.iter_batches(batch_size=batch_size, batch_format="numpy")
    return rows  # already batches (dicts of columns)


def write_hdf5(rows, out: str | os.PathLike, *, model: str = "efficientnet_lite0",
               layers: str | Sequence[str] = ("head",), pooling: str = "avg", dtype: str = "float32",
               precision: str | None = None, channels_last: bool = True,
               root: str | os.PathLike | None = None, batch_size: int = 1024) -> dict:
    """Store the rows of an :class:`Extractor` job in ``extract_folder``'s HDF5 file ``out``.

    ``rows``: the Ray dataset (its batches stream to this process, which alone writes the file)
    or any iterable of batches with ``path``, ``error`` and a column per layer. ``model``,
    ``layers``, ``pooling``, ``dtype``, ``precision``, ``channels_last`` are the Extractor's
    settings, recorded as ``extract_folder`` records them (a later ``featlab extract`` of the
    same folder into ``out`` continues it, and ``featlab search`` embeds its queries with them;
    the precision is recorded only if given).
    ``root``: store paths relative to this folder, as ``extract_folder`` does. Rows with an error
    go to the file's skipped list; a path already in the file is not stored again. Rows are
    stored in the order Ray delivers them (``DataContext.execution_options.preserve_order``).

    Returns ``{"done": rows stored, "skipped": {path: reason}, "already": rows left out as
    already in the file, "total": rows in the file}``.
    """
    settings = ExtractSettings(model=model, layers=layers, pooling=pooling, dtype=dtype, precision=precision,
                               channels_last=channels_last)
    layers = list(settings.layers)
    base = None if root is None else Path(root).absolute()

    def rel(p: str) -> str:
        if base is None:
            return p
        try:
            return Path(p).relative_to(base).as_posix()
        except ValueError:
            raise ValueError(f"'{p}' is not below root '{base}'; pass the folder the paths come from, "
                             "or root=None to store them as they are.") from None

    meta, info = settings.file_attrs(preprocess_for(model))
    info["runner"] = "ray.data"
    done, already, skipped = 0, 0, {}
    with FeatureWriter(out, meta, info) as writer:
        seen = writer.stored | writer.skipped
        for batch in _batches(rows, batch_size):
            missing = [c for c in ("path", "error", *layers) if c not in batch]
            if missing:
                raise ValueError(f"the rows lack column(s) {missing} (they have {sorted(batch)}): write the "
                                 "output of featlab.scale.Extractor with the same layers, read with "
                                 "include_paths=True.")
            paths = [rel(str(p)) for p in batch["path"]]
            new = []
            for i, p in enumerate(paths):
                if p in seen:
                    already += 1
                else:
                    seen.add(p)
                    new.append(i)
            bad = [i for i in new if batch["error"][i]]
            good = [i for i in new if not batch["error"][i]]
            if bad:
                reasons = {paths[i]: str(batch["error"][i]) for i in bad}
                writer.skip(reasons)
                skipped.update(reasons)
            if good:
                writer.add([paths[i] for i in good],
                           {n: np.asarray(batch[n])[good].astype(dtype) for n in layers})
                done += len(good)
        total = writer.count
    return {"done": done, "skipped": skipped, "already": already, "total": total}


def load_parquet(path: str | os.PathLike) -> tuple[list[str], dict[str, np.ndarray], dict[str, str]]:
    """Read ``ds.write_parquet(path)`` of an :class:`Extractor` job (a folder or one file),
    without Ray: ``(paths, {layer: (N, D) array}, {path: reason})`` — the good rows, and the
    rows whose picture could not be read. Every list-valued column is taken as a layer."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("reading Parquet needs pyarrow: pip install featlab[scale]") from None
    table = pq.read_table(path)
    for column in ("path", "error"):
        if column not in table.column_names:
            raise ValueError(f"'{path}' has no '{column}' column (it has {table.column_names}); "
                             "write the output of featlab.scale.Extractor.")
    paths = [str(p) for p in table.column("path").to_pylist()]
    errors = [str(e or "") for e in table.column("error").to_pylist()]
    ok = np.array([not e for e in errors], dtype=bool)
    features = {}
    for name in table.column_names:
        array = table.column(name).combine_chunks()
        if isinstance(array, pa.ExtensionArray):  # Ray's tensor type, if Ray is imported here
            array = array.storage
        if pa.types.is_list(array.type) or pa.types.is_large_list(array.type) or \
                pa.types.is_fixed_size_list(array.type):
            values = array.flatten().to_numpy(zero_copy_only=False)
            features[name] = values.reshape(len(array), -1)[ok]
    return ([p for p, good in zip(paths, ok) if good], features,
            {p: e for p, e in zip(paths, errors) if e})
