"""The settings of one extraction, checked once, at the boundary.

:class:`ExtractSettings` holds everything that decides how pictures become stored vectors: the
model's name, layers, pooling, batch size, compute precision, memory layout, decoding, storage
dtype, streams, decoding threads and device. The command line (``featlab extract``),
:func:`featlab.extract_folder` and :mod:`featlab.scale` build one and everything after
trusts it. A bad setting raises :class:`SettingsError`, one line that names the setting, what
was expected, what was received and how to fix it (scikit-learn's habit).

:meth:`ExtractSettings.resolved` fills the defaults that depend on the device;
:meth:`ExtractSettings.file_attrs` is what a feature file records, and
:meth:`ExtractSettings.from_file_attrs` reads it back, so that ``featlab search`` embeds its
queries exactly as the stored rows were made.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import torch

from .store import DTYPES  # storage types: the store decides them

__all__ = ["SettingsError", "ExtractSettings", "POOLINGS", "DTYPES", "PRECISIONS"]

POOLINGS = ("avg", "max", "none")
PRECISIONS = ("float32", "bfloat16")


class SettingsError(ValueError):
    """A setting of an extraction is wrong; the message names it and says how to fix it."""


def _fail(name: str, expected: str, got, fix: str) -> SettingsError:
    return SettingsError(f"{name} must be {expected}; got {got!r}. {fix}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _last(value: str) -> str:
    """The most recent of a file's comma-separated values (a file resumed elsewhere lists several)."""
    parts = [p for p in str(value).split(",") if p]
    return parts[-1] if parts else ""


@dataclass(frozen=True)
class ExtractSettings:
    """How one extraction runs. ``None`` means "featlab's default for the device" (see
    :meth:`resolved`).

    ``model``: the registry name (``fl.model_names()``), or a name of your own for a model you
    built (it is recorded in the file). ``layers``: names or aliases. ``pooling``: ``avg``,
    ``max`` or ``none`` (flattened). ``batch_size``: pictures per forward pass.
    ``precision``: ``float32`` or ``bfloat16`` (autocast). ``channels_last``: NHWC layout
    (on a copy of the model). ``fast_decode``: JPEGs decoded at reduced scale (Pillow's draft
    mode). ``jpeg_on_device``: baseline JPEGs decoded by nvJPEG on the GPU. ``dtype``: storage
    type, ``float32`` or ``float16``. ``streams``: CPU pipelines side by side. ``workers``:
    decoding threads feeding one stream. ``device``: where the model runs.
    """

    model: str | None = None
    layers: tuple[str, ...] = ("head",)
    pooling: str = "avg"
    batch_size: int | None = None
    precision: str | None = None
    channels_last: bool = True
    fast_decode: bool = False
    jpeg_on_device: bool | None = None
    dtype: str = "float32"
    streams: int | None = None
    workers: int | None = None
    device: torch.device | None = None

    def __post_init__(self) -> None:
        layers = self.layers
        if isinstance(layers, str):
            layers = (layers,)
        if not isinstance(layers, Sequence) or not layers or \
                not all(isinstance(n, str) and n for n in layers):
            raise _fail("layers", "one or more layer names", self.layers,
                        "Pass e.g. layers=('head',); fl.layer_names(model) lists them.")
        object.__setattr__(self, "layers", tuple(dict.fromkeys(layers)))
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise _fail("model", "a model name", self.model, "Pass a name from fl.model_names().")
        if self.pooling not in POOLINGS:
            raise _fail("pooling", f"one of {POOLINGS}", self.pooling, "Pass pooling='avg' (the default).")
        if self.batch_size is not None and (not _is_int(self.batch_size) or self.batch_size < 1):
            raise _fail("batch_size", "a positive integer (pictures per forward pass)", self.batch_size,
                        "Pass e.g. batch_size=16, or None for featlab's default.")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise _fail("precision", f"one of {PRECISIONS}", self.precision,
                        "Pass precision='float32', or None for featlab's default (bfloat16 on CUDA).")
        for flag in ("channels_last", "fast_decode"):
            if not isinstance(getattr(self, flag), bool):
                raise _fail(flag, "True or False", getattr(self, flag), f"Pass {flag}=True or {flag}=False.")
        if self.jpeg_on_device is not None and not isinstance(self.jpeg_on_device, bool):
            raise _fail("jpeg_on_device", "True, False or None", self.jpeg_on_device,
                        "Pass None for featlab's default (on with CUDA).")
        if self.dtype not in DTYPES:
            raise _fail("dtype", f"one of {DTYPES}", self.dtype, "Pass dtype='float32' (or 'float16': half the size).")
        if self.streams is not None and (not _is_int(self.streams) or self.streams < 1):
            raise _fail("streams", "a positive integer (pipelines side by side)", self.streams,
                        "Pass e.g. streams=2, or None for featlab's default.")
        if self.workers is not None and (not _is_int(self.workers) or self.workers < 0):
            raise _fail("workers", "an integer >= 0 (0 = decode in this thread)", self.workers,
                        "Pass e.g. workers=2, or None for featlab's default.")
        if self.device is not None:
            try:
                device = torch.device(self.device)
            except (RuntimeError, TypeError):
                raise _fail("device", "a torch device such as 'cpu' or 'cuda'", self.device,
                            "Pass device='cpu', 'cuda' or 'cuda:N'.") from None
            object.__setattr__(self, "device", device)

    def resolved(self, device: torch.device | str | None = None) -> "ExtractSettings":
        """These settings with every default filled in for ``device`` (default: ``self.device``),
        and the settings that cannot go together on it refused."""
        from . import loader

        device = torch.device(device) if device is not None else self.device
        if device is None:
            raise _fail("device", "known to resolve the settings", None, "Pass device= (e.g. the model's).")
        streams = loader.default_streams(device) if self.streams is None else self.streams
        if streams > 1 and device.type != "cpu":
            raise SettingsError(
                f"streams={streams} runs pipelines side by side on CPU cores, but the model is on "
                f"{device.type}. Pass streams=1 (a GPU runs one stream, decoding threads feed it).")
        on_cuda = device.type == "cuda"
        return replace(
            self, device=device, streams=streams,
            batch_size=loader.default_batch_size(device, streams) if self.batch_size is None else self.batch_size,
            precision=self.precision or ("bfloat16" if on_cuda else "float32"),
            jpeg_on_device=on_cuda if self.jpeg_on_device is None else self.jpeg_on_device,
            workers=loader.default_workers(device) if self.workers is None else self.workers)

    @property
    def decode(self) -> str:
        """How pictures are decoded, as the file records it: ``pillow``, ``pillow-draft``,
        ``decode_jpeg(cuda)+pillow`` (nvJPEG for baseline JPEGs, Pillow for the rest)."""
        device = self.device.type if self.device is not None else "cuda"
        return (f"decode_jpeg({device})+" if self.jpeg_on_device else "") + \
            ("pillow-draft" if self.fast_decode else "pillow")

    def file_attrs(self, preprocess) -> tuple[dict[str, str], dict[str, str]]:
        """``(meta, info)`` for a feature file: ``meta`` must match when a file is resumed
        (model, layers, pooling, storage dtype, preprocessing); ``info`` records how rows were
        made (device, precision, layout, decoding, streams, versions), kept as lists when a
        file is resumed with other settings."""
        from . import __version__

        meta = {"model": str(self.model), "layers": ",".join(self.layers), "pool": self.pooling,
                "dtype": self.dtype, "preprocess": repr(preprocess)}
        info = {"featlab_version": __version__, "torch_version": torch.__version__,
                "decode": self.decode, "layout": "channels_last" if self.channels_last else "nchw"}
        if self.precision is not None:
            info["precision"] = self.precision
        if self.device is not None:
            info["device"] = self.device.type
        if self.streams is not None:
            info["streams"] = str(self.streams)
        return meta, info

    @classmethod
    def from_file_attrs(cls, attrs: Mapping, file: str = "the file") -> "ExtractSettings":
        """The settings a feature file's rows were made with (its most recent run's, where a
        file was resumed with other ones), to embed queries the same way."""
        missing = [k for k in ("model", "layers") if k not in attrs]
        if missing:
            raise SettingsError(f"'{file}' does not record its {', '.join(missing)}; re-extract it "
                                "with `featlab extract`.")
        decode = _last(attrs.get("decode", "pillow"))
        return cls(model=str(attrs["model"]), layers=tuple(str(attrs["layers"]).split(",")),
                   pooling=str(attrs.get("pool", "avg")), dtype=str(attrs.get("dtype", "float32")),
                   precision=_last(attrs.get("precision", "")) or None,
                   channels_last=_last(attrs.get("layout", "channels_last")) != "nchw",
                   fast_decode=decode.endswith("pillow-draft"),
                   jpeg_on_device=decode.startswith("decode_jpeg"))
