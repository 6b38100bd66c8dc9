"""Extracting a folder of pictures into an HDF5 feature file that survives interruptions.

Taught in ``notebooks/12_performance.ipynb``; used by the ``featlab extract`` command line.

The file (format, writer and readers: :mod:`featlab.store`): ``paths`` (N,) image paths
relative to the folder, ``features/<layer>`` (N, D) vectors (maps pooled to vectors; float32
or float16), attribute ``count`` = rows. Rows are committed at most a second apart, each commit
all or nothing (a redo journal): a run that is killed loses at most the rows of its last
second, a full disk or a failed write stops it with a one-line error and loses nothing
committed; the next run carries on with the pictures not yet done — nothing is lost or stored
twice. Ctrl-C commits the finished batches first. Pictures that could not be read are listed
in ``skipped/paths`` and ``skipped/reasons`` (committed the same way); a rerun does not retry
them unless asked (``retry_skipped``).
Attributes record the model, layers, pooling, preprocessing, storage dtype (a rerun must
match them) and, for information, the featlab and torch versions, devices and precisions used.

Speed (``benchmarks/extract_speed.py``, figures in ``benchmarks/README.md``): decoding runs
on threads ahead of the model (:mod:`featlab.loader`), pixels travel as uint8 and are
normalised on the device; the model runs channels_last. On CUDA it runs in bfloat16 autocast,
baseline JPEGs are decoded on the GPU, and feature copies back overlap the next batch. On a
CPU, two pipelines run side by side, each reading its own batches and running them through
its own copy of the model on half the cores (``streams``).
"""
from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .embed import POOLS, pool
from .extract import forward_layers, resolve_layer
from .loader import (IMAGE_SUFFIXES, default_batch_size, default_streams, default_workers, list_images,
                     load_batches, stream_batches)
from .models import model_device, preprocess_for
from .store import DTYPES, FeatureFile, FeatureWriter, FileInUseError, load_features, load_skipped, open_features

__all__ = ["IMAGE_SUFFIXES", "FileInUseError", "list_images", "pool", "extract_folder", "load_features",
           "load_skipped", "open_features", "FeatureFile"]

PRECISIONS = ("float32", "bfloat16")


@contextmanager
def _channels_last(model: nn.Module):
    """Run ``model`` with channels_last weights (faster convolutions, measured on an H100 and a
    2-core CPU), then put its parameters back as they were."""
    weights = [p for p in model.parameters() if p.ndim == 4]
    if not weights or all(p.is_contiguous(memory_format=torch.channels_last) for p in weights):
        yield
        return
    model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        model.to(memory_format=torch.contiguous_format)


def _check_features(v: dict[str, np.ndarray], paths: list[str], dtype: str) -> None:
    for name, a in v.items():
        if not np.isfinite(a).all():
            raise ValueError(
                f"layer '{name}' gave NaN or infinite features for some of {paths[:4]}"
                f"{' ...' if len(paths) > 4 else ''}: the model itself produces them (NaN weights, "
                "or an overflow). Nothing of this batch was written. Check the model, or try "
                "--precision float32.")
        if dtype == "float16" and np.abs(a).max() > np.finfo(np.float16).max:
            raise ValueError(f"layer '{name}' has features beyond float16's range (±65504); "
                             "store them with --dtype float32.")


def extract_folder(model: nn.Module, folder: str | os.PathLike, layers: str | Sequence[str],
                   out: str | os.PathLike, batch_size: int | None = None, pooling: str = "avg",
                   progress: bool = True, *, workers: int | None = None, dtype: str = "float32",
                   precision: str | None = None, channels_last: bool | None = None,
                   jpeg_on_device: bool | None = None, retry_skipped: bool = False,
                   fast_decode: bool = False, streams: int | None = None) -> dict:
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
    ``channels_last`` (NHWC layout) defaults to on: on a 2-core CPU it gave the float32 forward
    pass of Lite0 1.7× the speed of NCHW, on an H100 bfloat16 1.4× (``benchmarks/README.md``);
    features equal within float rounding. ``jpeg_on_device`` (baseline JPEGs decoded by nvJPEG,
    resized on the GPU) defaults to on CUDA.
    ``fast_decode`` (CPU decoding, opt-in): large JPEGs decoded at 1/2–1/8 scale by Pillow's
    draft mode, sides still at least the resize size; features within cosine 0.99 of the exact decode
    (tested), for a fraction of the decoding time (``benchmarks/README.md``).
    ``streams`` (CPU only; default :func:`featlab.loader.default_streams`, 2 where there are
    2 cores or more): pipelines run side by side, each reading its own batch and running it
    through its own copy of the model (one more copy of the weights in memory per stream) on
    its share of the cores (:func:`featlab.loader.stream_batches`); ``workers`` is then not
    used. ``streams=1``: one model, decoding threads ahead of it (:func:`featlab.loader.load_batches`).
    Unreadable pictures are skipped with their reason, recorded in the file and not retried
    by later runs unless ``retry_skipped``.

    Returns ``{"done": n_new, "skipped": {path: reason} (this run), "skipped_earlier": n,
    "total": rows in file, "seconds": s, "images_per_s": done / s}``.
    """
    t0 = time.perf_counter()
    layers = [layers] if isinstance(layers, str) else list(dict.fromkeys(layers))
    if not layers:
        raise ValueError("give at least one layer, e.g. 'head' (fl.layer_names(model) lists them).")
    for name in layers:
        resolve_layer(model, name)  # fail early, listing valid names
    device = model_device(model)
    on_cuda = device.type == "cuda"
    streams = default_streams(device) if streams is None else streams
    if not isinstance(streams, int) or isinstance(streams, bool) or streams < 1:
        raise ValueError(f"streams must be a positive integer (pipelines side by side); got {streams!r}.")
    if streams > 1 and device.type != "cpu":
        raise ValueError(f"streams={streams} runs pipelines side by side on CPU cores; the model is on "
                         f"{device.type}. Use streams=1 (a GPU runs one stream, decoding threads feed it).")
    if batch_size is None:
        batch_size = default_batch_size(device, streams)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer (pictures per forward pass); got {batch_size!r}.")
    if pooling not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}; got {pooling!r}.")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}; got {dtype!r}.")
    precision = precision or ("bfloat16" if on_cuda else "float32")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}.")
    channels_last = True if channels_last is None else channels_last
    jpeg_on_device = on_cuda if jpeg_on_device is None else jpeg_on_device
    workers = default_workers(device) if workers is None else workers
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0 (0 = decode in this thread); got {workers!r}.")
    replicas = [model]  # one copy of the model per extra stream
    if streams > 1:
        try:
            replicas += [copy.deepcopy(model) for _ in range(streams - 1)]
        except Exception as e:  # e.g. a model holding a lock or an open file
            warnings.warn(f"{type(model).__name__} cannot be copied ({type(e).__name__}: {e}), so the "
                          "pictures go through one stream (streams=1).", stacklevel=2)
            replicas, streams = [model], 1
    model_name = getattr(model, "featlab_name", type(model).__name__)
    prep = preprocess_for(model)
    root = Path(folder)
    paths = list_images(root)
    from . import __version__

    meta = {"model": model_name, "layers": ",".join(layers), "pool": pooling, "dtype": dtype,
            "preprocess": repr(prep)}
    info = {"featlab_version": __version__, "torch_version": torch.__version__,
            "device": device.type, "precision": precision, "streams": str(streams),
            "decode": (f"decode_jpeg({device.type})+" if jpeg_on_device else "")
                      + ("pillow-draft" if fast_decode else "pillow")}
    writer = FeatureWriter(out, meta, info, retry_skipped)
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
                _check_features(v, batch.paths, dtype)
                writer.add(batch.paths, {name: a.astype(dtype, copy=False) for name, a in v.items()})
                done_now += len(batch.paths)
            if bar is not None:
                bar.update(len(batch.paths) + len(batch.skipped))

        with ExitStack() as stack:
            if channels_last:  # before inference_mode: the parameters stay normal tensors
                stack.enter_context(_channels_last(model))
                for copied in replicas[1:]:
                    copied.to(memory_format=torch.channels_last)
            stack.enter_context(torch.inference_mode())
            if on_cuda:
                stack.enter_context(torch.backends.cudnn.flags(
                    enabled=True, benchmark=True, deterministic=torch.backends.cudnn.deterministic,
                    allow_tf32=torch.backends.cudnn.allow_tf32))
            if precision == "bfloat16":
                stack.enter_context(torch.autocast(device.type, dtype=torch.bfloat16))

            def forward(m: nn.Module, batch) -> dict[str, torch.Tensor]:
                """Pooled features of a batch, on their way to the host."""
                return {name: pool(t.float(), pooling).reshape(len(batch.paths), -1).to("cpu", non_blocking=on_cuda)
                        for name, t in forward_layers(m, batch.x, layers).items()}

            if streams > 1:
                autocast = precision == "bfloat16"

                def work(k: int, batch) -> dict[str, torch.Tensor]:  # on a stream's own thread
                    if not batch.paths:
                        return {}
                    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                        return forward(replicas[k], batch)

                results = stream_batches(root, todo, prep, batch_size, work, streams, fast_decode, channels_last)
            else:
                results = ((b, forward(model, b) if b.paths else {})
                           for b in load_batches(root, todo, prep, batch_size, device, workers, jpeg_on_device,
                                                 channels_last, fast_decode))
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
