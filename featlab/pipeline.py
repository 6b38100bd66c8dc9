"""Running one extraction job: a folder of pictures -> a feature file, resumable.

Taught in ``notebooks/12_performance.ipynb``; run by the ``featlab extract`` command line.

Who does what: :class:`featlab.settings.ExtractSettings` holds the job's settings, checked
once; :mod:`featlab.loader` turns files into batches (decoding threads, or one pipeline per
core group on a CPU); :class:`featlab.extractor.FeatureExtractor` turns a batch into pooled
vectors; :mod:`featlab.store` writes them to the HDF5 file. Rows are committed at most a
second apart, each commit all or nothing (a redo journal, :mod:`featlab.store`): a killed run
loses at most its last second of work, a full disk or a failed write stops it with a one-line
error and loses nothing committed, and a rerun resumes with each picture exactly once.
Ctrl-C commits the finished batches first.

Speed (``benchmarks/extract_speed.py``, figures in ``benchmarks/README.md``): decoding runs
on threads ahead of the model, pixels travel as uint8 and are normalised on the device; the
model runs channels_last (a copy of it: the caller's model is left as it was). On CUDA it
runs in bfloat16 autocast, baseline JPEGs are decoded on the GPU, and feature copies back
overlap the next batch. On a CPU, two pipelines run side by side, each reading its own
batches and running them through its own copy of the model on half the cores (``streams``).
"""
from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .extractor import FeatureExtractor, bad_rows
from .images import Preprocess
from .loader import list_images, load_batches, stream_batches
from .models import model_device
from .settings import ExtractSettings, SettingsError
from .store import FeatureWriter

__all__ = ["extract_folder", "run"]


def _check_features(v: dict[str, np.ndarray], paths: list[str], dtype: str) -> None:
    for name, bad in bad_rows(v, dtype).items():
        if not bad.any():
            continue
        if np.isfinite(v[name]).all():
            raise ValueError(f"layer '{name}' has features beyond float16's range (±65504); "
                             "store them with --dtype float32.")
        raise ValueError(
            f"layer '{name}' gave NaN or infinite features for some of {paths[:4]}"
            f"{' ...' if len(paths) > 4 else ''}: the model itself produces them (NaN weights, "
            "or an overflow). Nothing of this batch was written. Check the model, or try "
            "--precision float32.")


def extract_folder(model: nn.Module, folder: str | os.PathLike, layers: str | Sequence[str],
                   out: str | os.PathLike, batch_size: int | None = None, pooling: str = "avg",
                   progress: bool = True, *, workers: int | None = None, dtype: str = "float32",
                   precision: str | None = None, channels_last: bool | None = None,
                   jpeg_on_device: bool | None = None, retry_skipped: bool = False,
                   fast_decode: bool = False, streams: int | None = None,
                   preprocess: Preprocess | None = None) -> dict:
    """Pooled features of every picture in ``folder`` into the HDF5 file ``out``; resumable.

    ``layers``: names or aliases; each map (N, C, H, W) is pooled by ``pooling`` (avg, max,
    none = flattened) and stored as ``dtype`` (float32 or float16). ``batch_size`` defaults to
    256 on a GPU, and on a CPU 4 per PyTorch thread of a stream (:func:`featlab.loader.default_batch_size`;
    4 on 2 cores); ``workers`` decoding threads to :func:`featlab.loader.default_workers`.
    ``precision``: ``bfloat16`` (autocast, the default on CUDA; with nvJPEG decoding the head
    features of pretrained Lite0 stay within cosine 0.98 of the CPU's float32 + Pillow ones —
    0.989 at worst measured on an H100 — as the tests check) or ``float32`` (the default on a
    CPU; cosine > 0.9999 on the GPU). ``bfloat16`` on a CPU is opt-in: several times faster
    where the CPU has native bf16 (avx512_bf16, AMX; see benchmarks/README.md), slower where it
    does not; the tests check cosine > 0.99 to float32.
    ``channels_last`` (NHWC layout, on a copy of the model) defaults to on: on a 2-core CPU it
    gave the float32 forward pass of Lite0 1.7× the speed of NCHW, on an H100 bfloat16 1.4×
    (``benchmarks/README.md``); features equal within float rounding. ``jpeg_on_device``
    (baseline JPEGs decoded by nvJPEG, resized on the GPU) defaults to on CUDA.
    ``fast_decode`` (CPU decoding, opt-in): large JPEGs decoded at 1/2–1/8 scale by Pillow's
    draft mode, sides still at least the resize size; features within cosine 0.99 of the exact decode
    (tested), for a fraction of the decoding time (``benchmarks/README.md``).
    ``streams`` (CPU only; default :func:`featlab.loader.default_streams`, 2 where there are
    2 cores or more): pipelines run side by side, each reading its own batch and running it
    through its own copy of the model (one more copy of the weights in memory per stream) on
    its share of the cores (:func:`featlab.loader.stream_batches`); ``workers`` is then not
    used. ``streams=1``: one model, decoding threads ahead of it (:func:`featlab.loader.load_batches`).
    ``preprocess``: for a model you built, wrapped or compiled yourself (featlab knows the
    preprocessing of the models of :func:`featlab.load_model` only).
    Unreadable pictures are skipped with their reason, recorded in the file and not retried
    by later runs unless ``retry_skipped``. The caller's model is not changed.

    Returns ``{"done": n_new, "skipped": {path: reason} (this run), "skipped_earlier": n,
    "total": rows in file, "seconds": s, "images_per_s": done / s}``.
    """
    settings = ExtractSettings(layers=layers, pooling=pooling, batch_size=batch_size, precision=precision,
                               channels_last=True if channels_last is None else channels_last,
                               fast_decode=fast_decode, jpeg_on_device=jpeg_on_device, dtype=dtype,
                               streams=streams, workers=workers)
    return run(model, folder, out, settings, preprocess=preprocess, progress=progress, retry_skipped=retry_skipped)


def run(model: nn.Module, folder: str | os.PathLike, out: str | os.PathLike, settings: ExtractSettings, *,
        preprocess: Preprocess | None = None, progress: bool = True, retry_skipped: bool = False) -> dict:
    """:func:`extract_folder` with its settings as one :class:`ExtractSettings` (what the
    command line builds). ``settings.device``, if given, must be the model's device."""
    t0 = time.perf_counter()
    device = model_device(model)
    if settings.device is not None and settings.device.type != device.type:
        raise SettingsError(f"device is {settings.device}, but the model is on {device}. Fix: move the "
                            f"model there (model.to('{settings.device}')) or pass device=None.")
    s = settings.resolved(device)
    extractor = FeatureExtractor.from_settings(model, s, preprocess)  # checks the layers; copies the model
    extractors = [extractor]  # one per stream, each with its own copy of the model
    if s.streams > 1:
        try:
            extractors += [extractor.replica() for _ in range(s.streams - 1)]
        except Exception as e:  # e.g. a model holding a lock or an open file
            warnings.warn(f"{type(model).__name__} cannot be copied ({type(e).__name__}: {e}), so the "
                          "pictures go through one stream (streams=1).", stacklevel=2)
            extractors = [extractor]
    s = replace(s, model=s.model or extractor.name, streams=len(extractors),
                channels_last=extractor.channels_last)
    prep = extractor.prep
    root = Path(folder)
    paths = list_images(root)
    meta, info = s.file_attrs(prep)
    on_cuda = device.type == "cuda"
    writer = FeatureWriter(out, meta, info, retry_skipped, folder=str(root.resolve()))
    skipped: dict[str, str] = {}
    done_now = 0
    bar = None
    try:
        done, earlier = set(writer.stored), set(writer.skipped)
        todo = [p for p in paths if p not in done and p not in earlier]
        n_earlier = sum(p in earlier for p in paths)  # in the folder, skipped before, not retried
        writer.remaining = len(todo)  # sizes the message if the disk fills up
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(todo), desc="featlab extract", unit="img", dynamic_ncols=True)
        pending = None  # (batch, features on their way to the host, event): written one batch late

        def write(batch, host: dict[str, torch.Tensor], event) -> None:
            nonlocal done_now
            if event is not None:
                event.synchronize()
            if batch.skipped:
                writer.skip(dict(batch.skipped))
                skipped.update(batch.skipped)
            if batch.paths:
                v = {name: t.numpy() for name, t in host.items()}
                _check_features(v, batch.paths, s.dtype)
                writer.add(batch.paths, {name: a.astype(s.dtype, copy=False) for name, a in v.items()})
                done_now += len(batch.paths)
            if bar is not None:
                bar.update(len(batch.paths) + len(batch.skipped))

        def vectors(k: int, batch) -> dict[str, torch.Tensor]:
            """Pooled features of a batch by stream ``k``'s extractor, on their way to the host."""
            if not batch.paths:
                return {}
            return {name: v.to("cpu", non_blocking=on_cuda) for name, v in extractors[k](batch.x).items()}

        with ExitStack() as stack:
            if on_cuda:
                stack.enter_context(torch.backends.cudnn.flags(
                    enabled=True, benchmark=True, deterministic=torch.backends.cudnn.deterministic,
                    allow_tf32=torch.backends.cudnn.allow_tf32))
            if len(extractors) > 1:
                results = stream_batches(root, todo, prep, s.batch_size, vectors, len(extractors),
                                         s.fast_decode, s.channels_last)
            else:
                results = ((b, vectors(0, b))
                           for b in load_batches(root, todo, prep, s.batch_size, device, s.workers,
                                                 s.jpeg_on_device, s.channels_last, s.fast_decode))
            try:
                for batch, host in results:
                    event = None
                    if on_cuda and batch.paths:
                        event = torch.cuda.Event()
                        event.record()
                    if pending is not None:
                        write(*pending)  # the previous batch, while the GPU runs this one
                        pending = None
                    if on_cuda:
                        pending = (batch, host, event)
                    else:
                        write(batch, host, event)
            except BaseException:
                if pending is not None:  # keep what was computed before an interruption
                    write(*pending)
                raise
            if pending is not None:
                write(*pending)
        total = writer.count
    finally:
        if bar is not None:
            bar.close()
        writer.close()
    seconds = time.perf_counter() - t0
    return {"done": done_now, "skipped": skipped, "skipped_earlier": n_earlier, "total": total,
            "seconds": seconds, "images_per_s": done_now / seconds if seconds > 0 else 0.0}
