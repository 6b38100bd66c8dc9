"""The feature file: its format, its one writer and its readers.

Taught in ``notebooks/12_performance.ipynb``; written by :func:`featlab.pipeline.extract_folder`
and :func:`featlab.scale.write_hdf5`, read by :func:`load_features`, :func:`open_features`,
:func:`load_skipped`, :func:`featlab.search.search_file` and ``featlab search``.

Layout of the HDF5 file: ``paths`` (N,) image paths relative to the folder,
``features/<layer>`` (N, D) vectors (float32 or float16), attribute ``count`` = rows that are
committed. Pictures that could not be read are listed in ``skipped/paths`` and
``skipped/reasons`` (committed by ``skipped_count``). Attribute ``folder``: the absolute
folder the paths are relative to (the latest run's). Attributes record the model, layers,
pooling, preprocessing and storage dtype (a later run must match them) and, for information,
the versions, devices and precisions of every run that wrote the file.

Commits (:class:`FeatureWriter`, :class:`_JournaledFile`): HDF5 rewrites its headers in place
and has no transactions, so a write that fails half way (a full disk) leaves a file that no
longer opens. Here HDF5 writes to memory; a commit copies those writes (only the bytes that
change: a few rows of a chunk, some header fields) to a redo journal ``<file>-journal`` with a
checksum, fsyncs it and its folder, applies them to the file, fsyncs it, deletes the journal
and fsyncs the folder again. The file changes only while a complete journal exists: a commit
interrupted before is as if never made, one interrupted after is redone by the next open. What this
guarantees (tested in ``tests/test_store.py``): a kill at any moment, a full disk or a failed
write loses no committed row, and the file opens; not guaranteed: power loss on a device that
does not honour fsync, network filesystems (their locks and fsync), two machines writing.
"""
from __future__ import annotations

import errno
import fcntl
import io
import os
import shutil
import struct
import time
import zlib
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np

__all__ = ["DTYPES", "FileInUseError", "StorageError", "FeatureWriter", "FeatureFile", "open_features", "load_features",
           "load_skipped", "recorded_folder", "open_h5"]

DTYPES = ("float32", "float16")  # storage types of the features
COMMIT_EVERY = 1.0  # seconds between commits: a kill loses at most this much work


class FileInUseError(OSError):
    """The HDF5 file is open for writing elsewhere (another run, or a notebook that holds it)."""


def open_h5(path: Path, mode: str):
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


class StorageError(OSError):
    """Writing the feature file failed (disk full, I/O error); the rows committed before are
    kept. Its message is one line: the file, the cause, what to do."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else super().__str__()


# Every call by which the writer changes something on disk; the fault-injection tests
# replace one of them at a time (tests/test_store.py).
_disk = SimpleNamespace(write=os.write, pwrite=os.pwrite, fsync=os.fsync, ftruncate=os.ftruncate,
                        unlink=os.unlink)

_MAGIC = b"featlab-journal-1\n"


def journal_path(path: Path) -> Path:
    """The redo journal that sits next to ``path`` while a commit is applied."""
    return path.with_name(path.name + "-journal")


def _read_journal(path: Path) -> list[tuple[int, bytes | None]] | None:
    """The operations of a complete journal next to ``path`` ((offset, bytes) writes and
    (size, None) truncations, in order), or None if there is none or it is torn."""
    try:
        data = journal_path(path).read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < len(_MAGIC) + 12 or not data.startswith(_MAGIC):
        return None
    body, crc = data[:-4], struct.unpack("<I", data[-4:])[0]
    if zlib.crc32(body) != crc:
        return None
    ops, at = [], len(_MAGIC)
    n = struct.unpack_from("<Q", body, at)[0]
    at += 8
    for _ in range(n):
        kind, a, b = struct.unpack_from("<BQQ", body, at)
        at += 17
        if kind == 0:
            ops.append((a, body[at:at + b]))
            at += b
        else:
            ops.append((a, None))
    return ops


def _sync_dir(path: Path) -> None:
    """fsync the folder holding ``path``, so that a file created, renamed or deleted there
    stays so after a power loss (POSIX: fsync of a file does not persist its directory entry).
    Filesystems that cannot sync a folder (EINVAL, ENOTSUP) are left as they are."""
    fd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        _disk.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _apply(fd: int, ops) -> None:
    for offset, data in ops:
        if data is None:
            _disk.ftruncate(fd, offset)
        else:
            view = memoryview(data)
            while view:
                n = _disk.pwrite(fd, view, offset)
                view, offset = view[n:], offset + n
    _disk.fsync(fd)


class _JournaledFile(io.RawIOBase):
    """The feature file as HDF5 sees it (h5py's file-object driver): writes are staged in
    memory; :meth:`commit` makes them part of the file all at once, with a redo journal.

    A commit writes the staged operations to ``<file>-journal`` (with a checksum) and fsyncs
    it, then applies them to the file, fsyncs it and deletes the journal. The file changes only
    while a complete journal exists, so: killed before the journal is complete, the file is
    as the last commit left it (the torn journal is ignored and deleted); killed or failed
    while applying, the next open replays the journal. Either way every committed row stays.
    """

    def __init__(self, path: Path, writable: bool):
        self.path, self.writable_ = path, writable
        flags = (os.O_RDWR | os.O_CREAT) if writable else os.O_RDONLY
        self.fd = os.open(path, flags, 0o644)
        try:
            try:
                fcntl.flock(self.fd, (fcntl.LOCK_EX if writable else fcntl.LOCK_SH) | fcntl.LOCK_NB)
            except BlockingIOError:
                raise _in_use(path, "held by another process") from None
            journal = _read_journal(path)
            self.ops: list[tuple[int, bytes | None]] = []  # staged since the last commit
            self.size = os.fstat(self.fd).st_size
            if journal is not None and writable:  # a commit was interrupted while applied: redo it
                _apply(self.fd, journal)
                _disk.unlink(journal_path(path))
                _sync_dir(path)
                self.size = os.fstat(self.fd).st_size
            elif journal is not None:  # read as if replayed, without writing
                self.ops = journal
                for offset, data in journal:
                    self.size = offset if data is None else max(self.size, offset + len(data))
            elif writable and journal_path(path).exists():  # torn: the commit never happened
                _disk.unlink(journal_path(path))
                _sync_dir(path)
        except BaseException:
            os.close(self.fd)
            raise
        self.base_size = os.fstat(self.fd).st_size
        self.pos, self.failed = 0, None
        self.largest = 0  # bytes of the largest journal written

    # -- what h5py's file-object driver calls --
    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return self.writable_

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else self.size + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        start, end = self.pos, min(self.pos + len(buffer), self.size)
        if end <= start:
            return 0
        out = memoryview(buffer).cast("B")
        got = os.pread(self.fd, end - start, start) if start < self.base_size else b""
        out[:len(got)] = got
        out[len(got):end - start] = bytes(end - start - len(got))
        for offset, data in self.ops:  # staged writes and truncations, in order
            if data is None:
                if offset < end:
                    cut = max(offset, start)
                    out[cut - start:end - start] = bytes(end - cut)
            elif offset < end and offset + len(data) > start:
                a, b = max(offset, start), min(offset + len(data), end)
                out[a - start:b - start] = data[a - offset:b - offset]
        self.pos = end
        return end - start

    def write(self, data) -> int:
        data = bytes(data)
        if self.failed is None:
            self._stage_write(self.pos, data)
        self.pos += len(data)
        self.size = max(self.size, self.pos)
        return len(data)

    def _stage_write(self, offset: int, data: bytes) -> None:
        """Stage a write; HDF5 rewrites the same chunk or header at each flush, and only the
        last of those need be committed (when nothing staged since overlaps it)."""
        end = offset + len(data)
        for i in range(len(self.ops) - 1, -1, -1):
            o, d = self.ops[i]
            if d is None or (o < end and o + len(d) > offset):  # a truncation, or an overlap
                if d is not None and o == offset and len(d) == len(data):
                    self.ops[i] = (offset, data)  # the same bytes rewritten: keep the last
                    return
                break
        self.ops.append((offset, data))

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        if size != self.size and self.failed is None:
            self.ops.append((size, None))
        self.size = size
        return size

    def flush(self) -> None:
        pass

    # -- commits --
    def _changes(self) -> list[tuple[int, bytes | None]]:
        """The staged operations, each write cut down to the byte runs that differ from the
        file: HDF5 rewrites a whole chunk (about 1 MB) to add a few rows to it, and the journal
        then holds only those rows, so a commit needs little more free space than its rows."""
        ops, lowest = [], self.base_size  # below ``lowest`` the file's bytes are what HDF5 sees
        for offset, data in self.ops:
            if data is None:
                lowest = min(lowest, offset)
                ops.append((offset, data))
                continue
            inside = max(0, min(len(data), lowest - offset))
            if inside < 4096 or any(d is not None and o < offset + len(data) and o + len(d) > offset
                                    for o, d in ops):
                ops.append((offset, data))  # small, or rewritten within this commit: kept whole
                continue
            new = np.frombuffer(data, np.uint8, inside)
            differ = np.flatnonzero(new != np.frombuffer(os.pread(self.fd, inside, offset), np.uint8))
            if len(differ):  # runs of differing bytes, joined across gaps under 64 bytes
                cut = np.flatnonzero(np.diff(differ) > 64)
                for a, b in zip(differ[np.r_[0, cut + 1]], differ[np.r_[cut, len(differ) - 1]]):
                    ops.append((offset + int(a), data[a:b + 1]))
            if inside < len(data):
                ops.append((offset + inside, data[inside:]))
        return ops

    def commit(self) -> None:
        """Make every staged write part of the file, or none of them (see the class)."""
        if self.failed is not None:
            raise self.failed
        if not self.ops:
            return
        self.ops = self._changes()
        journal = journal_path(self.path)
        parts = [_MAGIC, struct.pack("<Q", len(self.ops))]
        for offset, data in self.ops:
            parts.append(struct.pack("<BQQ", 0 if data is not None else 1, offset,
                                     0 if data is None else len(data)))
            if data is not None:
                parts.append(data)
        body = b"".join(parts)
        body += struct.pack("<I", zlib.crc32(body))
        self.largest = max(self.largest, len(body))
        need = len(body) + max(0, self.size - self.base_size)
        free = shutil.disk_usage(self.path.parent).free
        if free < need + (64 << 10):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(body)
            while view:
                view = view[_disk.write(fd, view):]
            _disk.fsync(fd)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(journal)  # torn: never part of the file; give its space back
            except OSError:
                pass
            raise
        os.close(fd)
        _sync_dir(self.path)  # the journal's name (and a new file's) survive a power loss
        # from here on the commit has happened: if applying it fails, the next open redoes it
        _apply(self.fd, self.ops)
        _disk.unlink(journal)
        _sync_dir(self.path)  # the deletion too: a stale journal would be replayed over later commits
        self.ops, self.base_size = [], os.fstat(self.fd).st_size

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def recorded_folder(path: str | os.PathLike, attrs=None) -> str | None:
    """The folder a feature file was extracted from (its paths are relative to it), as its
    latest run recorded it; None for files that record none (written by older versions of
    featlab, or by :func:`featlab.scale.write_hdf5`). Raises a one-line ``FileNotFoundError``
    if that folder is gone. ``attrs``: the file's attributes, if already read."""
    if attrs is None:
        with open_features(path) as ff:
            attrs = ff.attrs
    folder = attrs.get("folder")
    if folder is None:
        return None
    folder = str(folder)
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"'{path}' was extracted from '{folder}', which no longer exists; pass the "
                                "folder where those pictures are now (--root FOLDER, or root=).")
    return folder


def _in_use(path: Path, text: str) -> FileInUseError:
    return FileInUseError(
        f"'{path}' is being written by another run (another `featlab extract`, or a "
        "notebook that still has it open): one writer at a time. Wait for "
        f"that run to finish, or close the file there, or pass another --out file. [{text}]")


def _open(out: Path, meta: dict[str, str], info: dict[str, str], retry_skipped: bool):
    """Open or create ``out`` through a journaled file; check it holds the same kind of
    features; drop uncommitted rows (of files written before the journal). Returns
    (h5py file, journaled file); the changes are committed with the first rows."""
    import h5py

    raw = _JournaledFile(out, writable=True)
    try:
        f = h5py.File(raw, "r+" if raw.size else "w")
    except BaseException as e:
        raw.close()
        if isinstance(e, OSError) and "signature" in str(e):
            raise OSError(f"'{out}' exists but is not an HDF5 file; pass another --out file.") from None
        raise
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
                if ds.shape[0] != n:
                    ds.resize(n, axis=0)  # rows of an interrupted batch (files of older featlabs)
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
            if ds.shape[0] != k:
                ds.resize(k, axis=0)
        f.attrs["skipped_count"] = k
        for key, value in {**meta, **info}.items():
            if key not in meta:
                _add_to_attr(f.attrs, key, value)
    except BaseException:
        raw.failed = raw.failed or OSError("not committed")
        f.close()
        raw.close()
        raise
    return f, raw


def _append(f, values: dict[str, np.ndarray | list[str]], commit: str) -> None:
    """Append rows to the datasets named in ``values`` (feature datasets are made on first
    use) and raise the attribute ``commit`` to the new number of rows (in memory: the
    journaled file commits them)."""
    n = int(f.attrs[commit])
    m = len(next(iter(values.values())))
    for key, v in values.items():
        if key not in f:  # features/<layer>, (0, D), in chunks of about 1 MB (a commit rewrites its last one)
            rows = max(1, min(1024, (1 << 20) // max(1, v.shape[1] * v.itemsize)))
            f.create_dataset(key, (0, v.shape[1]), maxshape=(None, v.shape[1]), dtype=v.dtype,
                             chunks=(rows, v.shape[1]))
        ds = f[key]
        ds.resize(n + m, axis=0)
        ds[n:] = v
    f.attrs[commit] = n + m


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.1f} GB"


class FeatureWriter:
    """The one writer of a feature file: ``with FeatureWriter(out, meta, info) as w:`` then
    ``w.add(paths, {layer: (m, D) array})`` and ``w.skip({path: reason})``.

    Rows are committed together at most ``commit_every`` seconds apart (default
    :data:`COMMIT_EVERY`, 1 s; and on closing): a
    commit puts all of its rows in the file or none of them, whether the process is killed,
    the disk fills up or a write fails (:class:`_JournaledFile`); so a kill loses at most the
    rows of the last ``commit_every`` seconds, which the next run extracts again.

    ``meta``: the settings a file is made with (model, layers, pool, dtype, preprocess); a
    file made with others is refused. ``info``: recorded for information (versions, devices),
    each key keeps the list of values every run used. ``retry_skipped``: forget the pictures
    earlier runs skipped. ``w.stored`` and ``w.skipped`` are the paths in the file, ``w.count``
    its rows of features (committed or about to be), ``w.committed`` the rows committed.
    ``w.remaining`` (set by the caller: pictures still to come) sizes the disk-full message.
    ``folder``: the absolute folder the paths are relative to, recorded as attribute ``folder``
    (the latest run's; read by :func:`recorded_folder`).
    A failed commit raises :class:`StorageError` (one line: the file, the cause, what to do)
    and the writer refuses further rows.
    """

    def __init__(self, path: str | os.PathLike, meta: dict[str, str], info: dict[str, str],
                 retry_skipped: bool = False, commit_every: float | None = None, folder: str | None = None):
        self.path = Path(path)
        self.remaining: int | None = None
        self.commit_every = COMMIT_EVERY if commit_every is None else commit_every
        self.committed = 0
        try:
            self._f, self._raw = _open(self.path, meta, info, retry_skipped)
        except OSError as e:
            if e.errno is None or isinstance(e, FileInUseError):
                raise
            raise self._error(e, opened=False) from None
        self.count = self.committed = int(self._f.attrs["count"])
        if folder is not None:  # where the paths are relative to: this run's folder (committed with its rows)
            self._f.attrs["folder"] = str(folder)
        self._last = time.monotonic()
        try:  # the file's creation, or this run's settings, are committed with the first rows
            self.stored: set[str] = set(self._f["paths"].asstr()[:].tolist())
            self.skipped: set[str] = set(self._f["skipped/paths"].asstr()[:].tolist())
        except BaseException:
            self._raw.failed = OSError("not committed")
            self.close()
            raise

    def _error(self, e: OSError, opened: bool = True) -> StorageError:
        cause = e.strerror or str(e)
        kept = (f"the {self.committed if opened else ''} rows committed before are kept".replace("  ", " ")
                if self.committed or not opened else "no row had been committed yet")
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            need = ""
            if self.remaining is not None and opened:
                left = self.remaining + self.count - self.committed
                need = f" (the {left} pictures left need about {_megabytes(self._space_needed(left))})"
            error = StorageError(f"cannot write '{self.path}': the disk is full ({cause}); {kept}. Free "
                                 f"space on {self.path.parent.absolute()}{need}, then run the same command "
                                 "again: it continues where it stopped.")
        else:
            error = StorageError(f"cannot write '{self.path}': {cause}; {kept}. Check the disk (or move the "
                                 "file to another one), then run the same command again: it continues where "
                                 "it stopped.")
        error.errno, error.filename = e.errno or errno.EIO, str(self.path)
        return error

    def _space_needed(self, rows: int) -> int:
        """Bytes ``rows`` more rows take: their features and path, the chunks they open, and
        room for the journal of a commit (rewrites of the last chunks, headers)."""
        per_row, chunks = 256, 0  # a path in HDF5's heap, with its reference
        for ds in self._f["features"].values():
            row = ds.shape[1] * ds.dtype.itemsize
            per_row += row
            chunks += row * ds.chunks[0]
        return rows * per_row + 2 * chunks + max(self._raw.largest, 1 << 20)

    def _commit(self) -> None:
        try:
            self._f.flush()
            self._raw.commit()
        except OSError as e:
            self._raw.failed = self._error(e)
            raise self._raw.failed from None
        self.committed, self._last = self.count, time.monotonic()

    def _stage(self, values: dict, commit: str, rows: int) -> None:
        if self._raw.failed is not None:
            raise self._raw.failed
        try:
            _append(self._f, values, commit)
        except OSError as e:  # reading the file failed
            self._raw.failed = self._error(e)
            raise self._raw.failed from None
        if commit == "count":
            self.count += rows
        if self.remaining is not None:
            self.remaining = max(0, self.remaining - rows)
        if time.monotonic() - self._last >= self.commit_every:
            self._commit()

    def add(self, paths: list[str], features: dict[str, np.ndarray]) -> None:
        """Append one row per path: ``features`` maps each layer to an (m, D) array of the
        file's dtype. All of them are committed together."""
        self._stage({"paths": list(paths), **{f"features/{k}": v for k, v in features.items()}}, "count",
                    len(paths))
        self.stored.update(paths)

    def skip(self, reasons: dict[str, str]) -> None:
        """Record pictures that could not be read, with their reason. Committed together."""
        self._stage({"skipped/paths": list(reasons), "skipped/reasons": list(reasons.values())},
                    "skipped_count", len(reasons))
        self.skipped.update(reasons)

    def commit(self) -> None:
        """Commit now what was added since the last commit."""
        if self._raw.failed is not None:
            raise self._raw.failed
        self._commit()

    def close(self) -> None:
        """Commit what is left (unless a commit failed) and close the file."""
        try:
            if self._raw.failed is None:
                self._commit()
                self._f.close()
                try:
                    self._raw.commit()  # what HDF5 writes on closing (the file was complete before)
                except OSError as e:
                    self._raw.failed = self._error(e)
                    raise self._raw.failed from None
        finally:
            if self._f.id.valid:
                self._raw.failed = self._raw.failed or OSError("closed")  # its writes are dropped
                self._f.close()
            self._raw.close()
            if not self._raw.base_size and self.path.is_file() and not self.path.stat().st_size:
                self.path.unlink()  # made by this writer, nothing committed

    def __enter__(self) -> "FeatureWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def _read_h5(path: Path):
    """Open a feature file for reading; a commit interrupted while applied is read as done."""
    import h5py

    if _read_journal(path) is None:
        with open_h5(path, "r") as f:
            yield f
        return
    with _JournaledFile(path, writable=False) as raw, h5py.File(raw, "r") as f:
        yield f


def load_features(path: str | os.PathLike) -> tuple[list[str], dict[str, np.ndarray]]:
    """Read a feature file: (paths, {layer: (N, D) array}), the arrays in the file's dtype
    (float32, or float16 if stored so)."""
    with _read_h5(Path(path)) as f:
        n = int(f.attrs["count"])
        return (f["paths"].asstr()[:n].tolist(),
                {k: ds[:n] for k, ds in f["features"].items()})


def load_skipped(path: str | os.PathLike) -> dict[str, str]:
    """Pictures a file's runs could not read: {relative path: reason}."""
    with _read_h5(Path(path)) as f:
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
        if _read_journal(path) is None and not h5py.is_hdf5(path):
            raise ValueError(f"'{path}' is not an HDF5 file, so not a featlab feature file "
                             "(`featlab extract FOLDER --out FILE.h5` makes one).")
        self.path = path
        self._stack = ExitStack()
        self._f = self._stack.enter_context(_read_h5(path))
        if "count" not in self._f.attrs or "features" not in self._f or "paths" not in self._f:
            self._stack.close()
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
        self._stack.close()

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
