"""Extracting a folder of pictures into an HDF5 feature file that survives interruptions.

Taught in ``notebooks/12_performance.ipynb``; used by the ``featlab extract`` command line.

Layout of the file: ``paths`` (N,) image paths relative to the folder, ``features/<layer>``
(N, D) vectors (maps pooled to vectors; float32 or float16), attribute ``count`` = rows that
are complete. Rows are written batch by batch and ``count`` is raised last, so a run that is
interrupted loses at most the batch in flight; the next run drops any partial rows and
carries on with the pictures not yet done — nothing is lost or stored twice. (On a GPU the
features of one batch are written while the next one runs, so an interruption loses at most
the two batches in flight; Ctrl-C writes the finished one first.) Pictures that
could not be read are listed in ``skipped/paths`` and ``skipped/reasons`` (committed the same
way by ``skipped_count``); a rerun does not retry them unless asked (``retry_skipped``).
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

__all__ = ["IMAGE_SUFFIXES", "FileInUseError", "list_images", "pool", "extract_folder", "load_features",
           "load_skipped", "open_features", "FeatureFile"]

DTYPES = ("float32", "float16")
PRECISIONS = ("float32", "bfloat16")


class FileInUseError(OSError):
    """The HDF5 file is open for writing elsewhere (another run, or a notebook that holds it)."""


def _h5(path: Path, mode: str):
    """Open an HDF5 file, turning HDF5's raw lock error into a plain sentence."""
    import h5py

    try:
        return h5py.File(path, mode)
    except OSError as e:
        text = str(e)
        if "lock" in text or "already open" in text:
            raise FileInUseError(
                f"'{path}' is being written by another run (another `featlab extract`, or a "
                "notebook that still has it open): HDF5 lets one writer at a time in. Wait for "
                "that run to finish, or close the file there, or pass another --out file. "
                f"(On a network drive without file locks: set HDF5_USE_FILE_LOCKING=FALSE.) [{text}]"
            ) from None
        if "signature" in text:
            raise OSError(f"'{path}' exists but is not an HDF5 file; pass another --out file.") from None
        raise


def _add_to_attr(attrs, key: str, value: str) -> None:
    """Keep a comma-separated list of every value one file has seen (devices, versions...)."""
    old = [v for v in str(attrs.get(key, "")).split(",") if v]
    attrs[key] = ",".join(dict.fromkeys([*old, value]))


def _open(out: Path, meta: dict[str, str], info: dict[str, str], retry_skipped: bool):
    """Open or create ``out``; check it holds the same kind of features; drop uncommitted rows."""
    import h5py

    f = _h5(out, "a")
    try:
        if "count" in f.attrs:
            stored = {k: f.attrs[k] for k in meta if k in f.attrs}
            differ = {k: (stored[k], meta[k]) for k in stored if stored[k] != meta[k]}
            if differ:
                lines = "; ".join(f"{k}: file has {a!r}, this run {b!r}" for k, (a, b) in differ.items())
                raise ValueError(f"'{out}' holds other features ({lines}). Use another --out file, "
                                 "or the same settings as the run that made it.")
            f.attrs.update({k: v for k, v in meta.items() if k not in f.attrs})  # older files
            n = int(f.attrs["count"])
            for ds in [f["paths"], *f["features"].values()]:
                ds.resize(n, axis=0)  # drop rows of an interrupted batch
        else:
            f.attrs.update(meta)
            f.attrs["count"] = 0
            f.create_dataset("paths", (0,), maxshape=(None,), dtype=h5py.string_dtype())
            f.create_group("features")
        if "skipped" not in f:
            g = f.create_group("skipped")
            for name in ("paths", "reasons"):
                g.create_dataset(name, (0,), maxshape=(None,), dtype=h5py.string_dtype())
            f.attrs["skipped_count"] = 0
        k = 0 if retry_skipped else int(f.attrs["skipped_count"])
        for ds in f["skipped"].values():
            ds.resize(k, axis=0)
        f.attrs["skipped_count"] = k
        for key, value in {**meta, **info}.items():
            if key not in meta:
                _add_to_attr(f.attrs, key, value)
    except BaseException:
        f.close()
        raise
    return f


def _append(f, values: dict[str, np.ndarray | list[str]], commit: str) -> None:
    """Append rows to the datasets named in ``values`` (feature datasets are made on first
    use), then raise the attribute ``commit``: rows beyond it are not part of the file."""
    n = int(f.attrs[commit])
    m = len(next(iter(values.values())))
    for key, v in values.items():
        if key not in f:  # features/<layer>, (0, D), in chunks of about 1 MB
            rows = max(1, min(1024, (1 << 20) // max(1, v.shape[1] * v.itemsize)))
            f.create_dataset(key, (0, v.shape[1]), maxshape=(None, v.shape[1]), dtype=v.dtype,
                             chunks=(rows, v.shape[1]))
        ds = f[key]
        ds.resize(n + m, axis=0)
        ds[n:] = v
    f.flush()
    f.attrs[commit] = n + m  # the commit point
    f.flush()


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
    f = _open(Path(out), meta, info, retry_skipped)
    skipped: dict[str, str] = {}
    done_now = 0
    bar = None
    try:
        done = set(f["paths"].asstr()[:].tolist())
        earlier = set(f["skipped/paths"].asstr()[:].tolist())
        todo = [p for p in paths if p not in done and p not in earlier]
        n_earlier = sum(p in earlier for p in paths)  # in the folder, skipped before, not retried
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(todo), desc="featlab extract", unit="img", dynamic_ncols=True)
        pending = None  # (batch, features on their way to the host, event): written one batch late

        def write(batch, host: dict[str, torch.Tensor], event) -> None:
            nonlocal done_now
            if event is not None:
                event.synchronize()
            if batch.skipped:
                _append(f, {"skipped/paths": list(batch.skipped),
                            "skipped/reasons": list(batch.skipped.values())}, "skipped_count")
                skipped.update(batch.skipped)
            if batch.paths:
                v = {name: t.numpy() for name, t in host.items()}
                _check_features(v, batch.paths, dtype)
                _append(f, {"paths": batch.paths, **{f"features/{name}": a.astype(dtype, copy=False)
                                                     for name, a in v.items()}}, "count")
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
        total = int(f.attrs["count"])
    finally:
        if bar is not None:
            bar.close()
        f.close()
    seconds = time.perf_counter() - t0
    return {"done": done_now, "skipped": skipped, "skipped_earlier": n_earlier, "total": total,
            "seconds": seconds, "images_per_s": done_now / seconds if seconds > 0 else 0.0}


def load_features(path: str | os.PathLike) -> tuple[list[str], dict[str, np.ndarray]]:
    """Read a file written by :func:`extract_folder`: (paths, {layer: (N, D) array}), the
    arrays in the file's dtype (float32, or float16 if stored so)."""
    with _h5(Path(path), "r") as f:
        n = int(f.attrs["count"])
        return (f["paths"].asstr()[:n].tolist(),
                {k: ds[:n] for k, ds in f["features"].items()})


def load_skipped(path: str | os.PathLike) -> dict[str, str]:
    """Pictures a file's runs could not read: {relative path: reason}."""
    with _h5(Path(path), "r") as f:
        if "skipped" not in f:
            return {}
        k = int(f.attrs["skipped_count"])
        return dict(zip(f["skipped/paths"].asstr()[:k].tolist(), f["skipped/reasons"].asstr()[:k].tolist()))


class _Committed:
    """Read-only view of an HDF5 dataset limited to its first ``count`` rows (rows past it are
    an interrupted batch, not part of the file). ``view[a:b]`` reads only those rows."""

    def __init__(self, ds, count: int):
        self._ds, self.shape, self.dtype = ds, (count, *ds.shape[1:]), ds.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            key = range(self.shape[0])[key]  # negative indices count from the last committed row
            return self._ds[key]
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"read committed rows with an int or a slice view[a:b]; got {key!r}.")
        start, stop, _ = key.indices(self.shape[0])
        return self._ds[start:max(start, stop)]


class FeatureFile:
    """An open feature file, read lazily (for files larger than RAM); see :func:`open_features`."""

    def __init__(self, path: str | os.PathLike):
        import h5py

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such feature file: '{path}'. Make one with "
                                    "`featlab extract FOLDER --out FILE.h5`.")
        if not h5py.is_hdf5(path):
            raise ValueError(f"'{path}' is not an HDF5 file, so not a featlab feature file "
                             "(`featlab extract FOLDER --out FILE.h5` makes one).")
        self.path = path
        self._f = _h5(path, "r")
        if "count" not in self._f.attrs or "features" not in self._f or "paths" not in self._f:
            self._f.close()
            raise ValueError(f"'{path}' is an HDF5 file but not a featlab feature file (no 'count', "
                             "'paths' or 'features'); make one with `featlab extract`.")
        self.count = int(self._f.attrs["count"])
        self.attrs = {k: v for k, v in self._f.attrs.items()}
        self.paths: list[str] = self._f["paths"].asstr()[:self.count].tolist()
        self.features = {name: _Committed(ds, self.count) for name, ds in self._f["features"].items()}
        self.layers = list(self.features)

    def layer(self, name: str | None = None) -> str:
        """``name`` checked against the stored layers; ``None``: the only stored layer."""
        if name is None:
            if len(self.layers) == 1:
                return self.layers[0]
            raise ValueError(f"'{self.path}' holds several layers ({', '.join(self.layers)}); "
                             "pick one (layer=... / --layer).")
        if name not in self.features:
            raise ValueError(f"unknown layer '{name}' in '{self.path}'; it holds: {', '.join(self.layers)}.")
        return name

    def iter_chunks(self, layer: str, rows: int = 65536):
        """Yield ``(start, (m, D) array)`` blocks of at most ``rows`` committed rows."""
        view = self.features[self.layer(layer)]
        for start in range(0, len(view), rows):
            yield start, view[start:start + rows]

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "FeatureFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_features(path: str | os.PathLike) -> FeatureFile:
    """Open a feature file lazily: ``with open_features(p) as ff:`` gives ``ff.paths`` (N,),
    ``ff.layers``, ``ff.attrs`` and ``ff.features[layer]``, an (N, D) view of the committed rows
    that reads from disk only the rows sliced (``ff.iter_chunks(layer, rows)`` walks it).
    For files larger than RAM; :func:`load_features` reads everything at once."""
    return FeatureFile(path)
