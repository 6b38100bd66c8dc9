"""The feature file: its format, its one writer and its readers.

Taught in ``notebooks/12_performance.ipynb``; written by :func:`featlab.cache.extract_folder`
and :func:`featlab.scale.write_hdf5`, read by :func:`load_features`, :func:`open_features`,
:func:`load_skipped`, :func:`featlab.search.search_file` and ``featlab search``.

Layout of the HDF5 file: ``paths`` (N,) image paths relative to the folder,
``features/<layer>`` (N, D) vectors (float32 or float16), attribute ``count`` = rows that are
committed. Pictures that could not be read are listed in ``skipped/paths`` and
``skipped/reasons`` (committed by ``skipped_count``). Attributes record the model, layers,
pooling, preprocessing and storage dtype (a later run must match them) and, for information,
the versions, devices and precisions of every run that wrote the file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["DTYPES", "FileInUseError", "FeatureWriter", "FeatureFile", "open_features", "load_features",
           "load_skipped", "open_h5"]

DTYPES = ("float32", "float16")  # storage types of the features


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


def _open(out: Path, meta: dict[str, str], info: dict[str, str], retry_skipped: bool):
    """Open or create ``out``; check it holds the same kind of features; drop uncommitted rows."""
    import h5py

    f = open_h5(out, "a")
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


class FeatureWriter:
    """The one writer of a feature file: ``with FeatureWriter(out, meta, info) as w:`` then
    ``w.add(paths, {layer: (m, D) array})`` and ``w.skip({path: reason})``, each a commit.

    ``meta``: the settings a file is made with (model, layers, pool, dtype, preprocess); a
    file made with others is refused. ``info``: recorded for information (versions, devices),
    each key keeps the list of values every run used. ``retry_skipped``: forget the pictures
    earlier runs skipped. ``w.stored`` and ``w.skipped`` are the paths already in the file.
    """

    def __init__(self, path: str | os.PathLike, meta: dict[str, str], info: dict[str, str],
                 retry_skipped: bool = False):
        self.path = Path(path)
        self._f = _open(self.path, meta, info, retry_skipped)
        try:
            self.stored: set[str] = set(self._f["paths"].asstr()[:].tolist())
            self.skipped: set[str] = set(self._f["skipped/paths"].asstr()[:].tolist())
        except BaseException:
            self._f.close()
            raise

    @property
    def count(self) -> int:
        """Committed rows of features."""
        return int(self._f.attrs["count"])

    def add(self, paths: list[str], features: dict[str, np.ndarray]) -> None:
        """Append one row per path: ``features`` maps each layer to an (m, D) array of the
        file's dtype. Committed all at once."""
        _append(self._f, {"paths": list(paths), **{f"features/{k}": v for k, v in features.items()}}, "count")
        self.stored.update(paths)

    def skip(self, reasons: dict[str, str]) -> None:
        """Record pictures that could not be read, with their reason. Committed all at once."""
        _append(self._f, {"skipped/paths": list(reasons), "skipped/reasons": list(reasons.values())},
                "skipped_count")
        self.skipped.update(reasons)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "FeatureWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_features(path: str | os.PathLike) -> tuple[list[str], dict[str, np.ndarray]]:
    """Read a feature file: (paths, {layer: (N, D) array}), the arrays in the file's dtype
    (float32, or float16 if stored so)."""
    with open_h5(Path(path), "r") as f:
        n = int(f.attrs["count"])
        return (f["paths"].asstr()[:n].tolist(),
                {k: ds[:n] for k, ds in f["features"].items()})


def load_skipped(path: str | os.PathLike) -> dict[str, str]:
    """Pictures a file's runs could not read: {relative path: reason}."""
    with open_h5(Path(path), "r") as f:
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
        self._f = open_h5(path, "r")
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
