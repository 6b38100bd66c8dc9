"""Reading a folder of pictures into normalised batches on the model's device, fast.

Taught in ``notebooks/12_performance.ipynb``; used by :mod:`featlab.pipeline` (``featlab extract``).

- Threads decode and resize the pictures with Pillow while the model runs: Pillow releases
  the GIL while it decodes and resizes, so threads use every core without the start-up and
  pickling costs of worker processes.
- Each picture becomes a (3, crop, crop) uint8 tensor, exactly what :class:`featlab.Preprocess`
  makes before it normalises. Batches travel as uint8 (4× fewer bytes than float32, from
  pinned memory to a GPU) and are normalised on the device.
- On a CUDA device, baseline JPEG files are decoded on the GPU in batches (nvJPEG through
  ``torchvision.io.decode_jpeg``, on the hardware decoder of an A100/H100) and resized there.
  Other files, progressive or EXIF-rotated JPEGs, and anything unusual go the Pillow way.
- On a CPU, :func:`stream_batches` runs one pipeline per core group instead: each of a few
  threads reads a whole batch and runs it through its own copy of the model, with its share
  of the cores. No thread waits for another, and nothing decodes while a parallel operation
  needs every core (which stalls it); on 2 cores this beats the model alone run with 2 threads
  (``benchmarks/README.md``).
- A picture that cannot be read is skipped with its reason; it never stops the run.
"""
from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image

from .images import ImageError, ImageLike, Preprocess, load_image

__all__ = ["IMAGE_SUFFIXES", "Batch", "list_images", "to_uint8", "normalize", "jpeg_header",
           "default_workers", "default_streams", "default_batch_size", "read_picture", "load_batches",
           "stream_batches"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def list_images(folder: str | os.PathLike) -> list[str]:
    """Image files below ``folder`` (recursively), as sorted relative POSIX paths."""
    root = Path(folder)
    if not root.is_dir():
        raise NotADirectoryError(f"'{root}' is not a folder of images.")
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_streams(device: torch.device | str) -> int:
    """Streams for :func:`stream_batches`: 2 on a CPU with 2 cores or more, else 1 (and 1 on a GPU)."""
    return 2 if torch.device(device).type == "cpu" and _cores() >= 2 else 1


def default_batch_size(device: torch.device | str, streams: int = 1) -> int:
    """Pictures per forward pass: 256 on a GPU; on a CPU 4 per PyTorch thread of a stream (4 on
    2 cores with 2 streams: the fastest of 2, 4, 8 and 16 there, ``benchmarks/README.md``)."""
    if torch.device(device).type == "cuda":
        return 256
    return 4 * max(1, _cores() // streams)


def default_workers(device: torch.device | str) -> int:
    """Decoding threads: up to 8 beside a GPU (which decodes the JPEGs itself; more threads
    mostly queue for Python's GIL); half the cores on a CPU, whose other half runs the model."""
    cores = _cores()
    return min(8, cores) if torch.device(device).type == "cuda" else max(1, cores // 2)


# --- one picture ---------------------------------------------------------------------------

def to_uint8(image: ImageLike, prep: Preprocess, fast_decode: bool = False) -> torch.Tensor:
    """One picture -> (3, crop, crop) uint8: load (RGB), resize the short side, centre-crop.

    :meth:`Preprocess.to_uint8`, the steps of ``prep`` before it normalises, so that
    ``normalize(to_uint8(p, prep)[None], prep)`` equals ``prep(p)`` exactly — unless
    ``fast_decode``: JPEGs are then decoded at reduced scale (``load_image(draft=)``).
    """
    return prep.to_uint8(image, draft=fast_decode)


def normalize(x: torch.Tensor, prep: Preprocess, channels_last: bool = False) -> torch.Tensor:
    """(N, 3, H, W) uint8 -> float32 ``(x / 255 - mean) / std`` on x's device: :meth:`Preprocess.normalize`."""
    return prep.normalize(x, channels_last)


# --- JPEG files for the GPU ----------------------------------------------------------------

@dataclass(frozen=True)
class JpegHeader:
    height: int
    width: int
    components: int    # 1 grey, 3 YCbCr, 4 CMYK
    baseline: bool     # False for progressive / lossless / arithmetic-coded files
    orientation: int   # EXIF orientation, 1 = upright, 0 = unreadable


def _exif_orientation(tiff: bytes) -> int:
    """Orientation tag (0x0112) of an EXIF block (TIFF layout); 1 if absent, 0 if unreadable."""
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 0
    at = int.from_bytes(tiff[4:8], order)
    if at + 2 > len(tiff):
        return 0
    for k in range(int.from_bytes(tiff[at:at + 2], order)):
        entry = tiff[at + 2 + 12 * k: at + 14 + 12 * k]
        if len(entry) < 12:
            return 0
        if int.from_bytes(entry[:2], order) == 0x0112:
            return int.from_bytes(entry[8:10], order)
    return 1


def jpeg_header(data: bytes) -> JpegHeader | None:
    """Size, components, coding and EXIF orientation from a JPEG's markers (no decoding).

    ``None`` unless ``data`` starts with SOI and ends with EOI (truncated files, or data
    appended after the picture, as in "motion photos") and a frame header is found.
    """
    if data[:2] != b"\xff\xd8" or data[-2:] != b"\xff\xd9":
        return None
    i, orientation = 2, 1
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\0\0":
            orientation = _exif_orientation(data[i + 10:i + 2 + length])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame
            if i + 10 > len(data):
                return None
            return JpegHeader(int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big"),
                              data[i + 9], marker in (0xC0, 0xC1), orientation)
        if marker == 0xDA:  # start of scan before any frame header
            return None
        i += 2 + length
    return None


def _fits_nvjpeg(data: bytes) -> bool:
    """Whether nvJPEG decodes this file as Pillow would: a complete baseline JPEG, grey or
    colour, upright, within Pillow's decompression-bomb limit. Anything else goes to Pillow."""
    h = jpeg_header(data)
    limit = Image.MAX_IMAGE_PIXELS
    return (h is not None and h.baseline and h.components in (1, 3) and h.orientation == 1
            and h.height > 0 and h.width > 0 and (limit is None or h.height * h.width <= limit))


def _decode_jpegs(datas: list[bytearray], prep: Preprocess, device: torch.device) -> list[torch.Tensor | None]:
    """JPEG files -> (3, crop, crop) uint8 on ``device`` each (None where decoding failed).

    Decodes in one batch (nvJPEG on CUDA), then resizes all pictures of the same size together.
    """
    from torchvision.io import ImageReadMode, decode_jpeg
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    encoded = [torch.frombuffer(d, dtype=torch.uint8) for d in datas]  # bytearrays: no copy
    try:
        images: list[torch.Tensor | None] = list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:  # one bad file fails the batch: find it
        images = []
        for e in encoded:
            try:
                images.append(decode_jpeg(e, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                images.append(None)
    out: list[torch.Tensor | None] = [None] * len(images)
    by_size: dict[tuple[int, ...], list[int]] = {}
    for k, im in enumerate(images):
        if im is not None:
            by_size.setdefault(tuple(im.shape), []).append(k)
    mode = InterpolationMode(prep.interpolation)
    for idx in by_size.values():
        x = torch.stack([images[k] for k in idx])
        x = TF.resize(x, prep.resize, interpolation=mode, antialias=True)
        x = TF.center_crop(x, [prep.crop, prep.crop])
        for k, im in zip(idx, x):
            out[k] = im
    return out


# --- the pipeline --------------------------------------------------------------------------

@dataclass
class Batch:
    """Pictures ready for the model, plus those of the same stretch that could not be read."""

    paths: list[str]                      # relative paths of the pictures in x, in order
    x: torch.Tensor                       # (N, 3, crop, crop) float32, normalised, on the device
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason


def read_picture(root: Path, rel: str, prep: Preprocess, jpeg_on_device: bool,
          fast_decode: bool = False) -> tuple[str, str, object]:
    """One file -> (rel, "jpeg", bytes) | (rel, "pixels", (3, crop, crop) uint8) | (rel, "skip", reason).

    The decoders' seam: JPEG bytes left for the GPU (``jpeg_on_device``), or Pillow's pixels,
    or the reason the file cannot be read (never an exception)."""
    path = root / rel
    try:
        if jpeg_on_device:
            with open(path, "rb") as fh:  # into a writable buffer: torch takes it without a copy
                data = bytearray(os.fstat(fh.fileno()).st_size)
                fh.readinto(data)
            if _fits_nvjpeg(data):
                return rel, "jpeg", data
        return rel, "pixels", to_uint8(path, prep, fast_decode)
    except ImageError as e:
        return rel, "skip", str(e)
    except Exception as e:  # a decoder bug must not stop a run over thousands of files
        return rel, "skip", f"'{path}' could not be read ({type(e).__name__}: {e})."


def _in_order(fn: Callable, items: Sequence, workers: int, lookahead: int, chunk: int = 1) -> Iterator:
    """``map(fn, items)`` on ``workers`` threads, in order, with about ``lookahead`` items in
    flight. Each thread takes ``chunk`` items at a time: fewer hand-overs of the GIL, which
    otherwise limit reading small files to a few thousand per second."""
    if workers == 0:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="featlab-decode")
    run = lambda part: [fn(item) for item in part]  # noqa: E731
    try:
        pending: deque = deque()
        for start in range(0, len(items), chunk):
            pending.append(pool.submit(run, items[start:start + chunk]))
            if len(pending) * chunk >= lookahead:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _assemble(entries: list[tuple[str, str, object]], root: Path, prep: Preprocess,
              device: torch.device, channels_last: bool) -> Batch:
    """Read results -> one Batch on ``device`` (GPU-decoded JPEGs that fail go to Pillow)."""
    skipped = {rel: str(p) for rel, kind, p in entries if kind == "skip"}
    entries = [e for e in entries if e[1] != "skip"]
    jpegs = [k for k, e in enumerate(entries) if e[1] == "jpeg"]
    pixels: list[torch.Tensor | None] = [p if kind == "pixels" else None for _, kind, p in entries]
    if jpegs:
        decoded = _decode_jpegs([entries[k][2] for k in jpegs], prep, device)
        for k, im in zip(jpegs, decoded):
            pixels[k] = im
    for k, im in enumerate(pixels):
        if im is None:  # nvJPEG refused it: let Pillow decide (it may read it, or say why not)
            rel, kind, payload = read_picture(root, entries[k][0], prep, jpeg_on_device=False)
            if kind == "skip":
                skipped[rel] = payload
            else:
                pixels[k] = payload
    keep = [k for k, im in enumerate(pixels) if im is not None]
    paths = [entries[k][0] for k in keep]
    if not keep:
        return Batch(paths, torch.empty(0, 3, prep.crop, prep.crop, device=device), skipped)
    on_cpu = [k for k in keep if pixels[k].device.type == "cpu"]
    if device.type != "cpu" and on_cpu:  # one copy of uint8 pixels, from pinned memory
        staged = torch.empty((len(on_cpu), 3, prep.crop, prep.crop), dtype=torch.uint8,
                             pin_memory=device.type == "cuda")
        torch.stack([pixels[k] for k in on_cpu], out=staged)
        moved = staged.to(device, non_blocking=True)
        for k, im in zip(on_cpu, moved):
            pixels[k] = im
        x = moved if len(on_cpu) == len(keep) else torch.stack([pixels[k] for k in keep])
    else:
        x = torch.stack([pixels[k] for k in keep])
    return Batch(paths, normalize(x, prep, channels_last), skipped)


def load_batches(folder: str | os.PathLike, paths: Sequence[str], prep: Preprocess, batch_size: int,
                 device: torch.device | str = "cpu", workers: int | None = None,
                 jpeg_on_device: bool | None = None, channels_last: bool = False,
                 fast_decode: bool = False) -> Iterator[Batch]:
    """Yield :class:`Batch` es of ``paths`` (relative to ``folder``) in order, ready for the model.

    Decoding runs ahead on ``workers`` threads (default :func:`default_workers`; 0 = in the
    calling thread) and batches are assembled by a background thread, so reading overlaps the
    forward pass. Each batch holds up to ``batch_size`` pictures, ``x`` (N, 3, crop, crop)
    normalised on ``device``; unreadable files come back in ``skipped`` with their reason.
    ``jpeg_on_device`` (default: on CUDA) decodes baseline JPEGs with nvJPEG on the GPU;
    ``fast_decode`` decodes large JPEGs at reduced scale with Pillow (see :func:`to_uint8`).
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}.")
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    workers = default_workers(device) if workers is None else workers
    if not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an integer >= 0 (0 = decode in this thread); got {workers!r}.")
    jpeg_on_device = device.type == "cuda" if jpeg_on_device is None else jpeg_on_device
    root = Path(folder)
    out: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item) -> None:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except queue.Full:
                pass

    def produce() -> None:
        stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        try:
            read = lambda rel: read_picture(root, rel, prep, jpeg_on_device, fast_decode)  # noqa: E731
            chunk = max(1, min(32, batch_size // max(1, workers)))
            results = _in_order(read, list(paths), workers, lookahead=2 * batch_size + workers * chunk,
                                chunk=chunk)
            with torch.cuda.stream(stream) if stream is not None else nullcontext(), torch.no_grad(), \
                    closing(results):
                entries: list = []
                n_ok = 0
                for entry in results:
                    if stop.is_set():
                        return
                    entries.append(entry)
                    n_ok += entry[1] != "skip"
                    if n_ok == batch_size or len(entries) >= 2 * batch_size:
                        put((_assemble(entries, root, prep, device, channels_last),
                             stream.record_event() if stream is not None else None))
                        entries, n_ok = [], 0
                if entries:
                    put((_assemble(entries, root, prep, device, channels_last),
                         stream.record_event() if stream is not None else None))
            put(None)
        except BaseException as e:  # hand any error to the consumer
            put(e)

    thread = threading.Thread(target=produce, name="featlab-batches", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            batch, event = item
            if event is not None:
                current = torch.cuda.current_stream(device)
                current.wait_event(event)
                batch.x.record_stream(current)
            yield batch
    finally:
        stop.set()
        thread.join()


def stream_batches(folder: str | os.PathLike, paths: Sequence[str], prep: Preprocess, batch_size: int,
                   work: Callable[[int, Batch], object], streams: int, fast_decode: bool = False,
                   channels_last: bool = False) -> Iterator[tuple[Batch, object]]:
    """CPU pipelines: yield ``(batch, work(stream, batch))`` for batches of ``paths``, in order.

    ``streams`` threads each take ``batch_size`` paths, read and normalise them (skipping
    unreadable ones with their reason), then call ``work(stream, batch)`` (the forward pass),
    with ``cores // streams`` PyTorch threads; ``stream`` (0 … streams - 1) is used by one
    thread at a time, so ``work`` may keep one model copy per stream. PyTorch's thread count
    is restored afterwards.
    """
    if not isinstance(streams, int) or isinstance(streams, bool) or streams < 1:
        raise ValueError(f"streams must be a positive integer; got {streams!r}.")
    root, device = Path(folder), torch.device("cpu")
    threads = max(1, _cores() // streams)
    free: queue.SimpleQueue = queue.SimpleQueue()
    for k in range(streams):
        free.put(k)

    def run(part: Sequence[str]) -> tuple[Batch, object]:
        torch.set_num_threads(threads)  # this thread's share (OpenMP's setting is per thread)
        k = free.get()
        try:
            batch = _assemble([read_picture(root, rel, prep, False, fast_decode) for rel in part],
                              root, prep, device, channels_last)
            return batch, work(k, batch)
        finally:
            free.put(k)

    before = torch.get_num_threads()
    parts = [list(paths[i:i + batch_size]) for i in range(0, len(paths), batch_size)]
    try:
        yield from _in_order(run, parts, streams, lookahead=2 * streams)
    finally:
        torch.set_num_threads(before)
