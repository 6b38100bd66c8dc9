"""One feature extractor: a model, some layers and a pooling -> one vector per picture and layer.

In the spirit of torchvision's ``create_feature_extractor``: the layer names (aliases or
module paths) are resolved once, when it is made; each call runs one forward pass that stops
after the deepest layer and returns ``{layer: (N, D)}`` (or the maps themselves,
:meth:`FeatureExtractor.maps`). Folder extraction (:mod:`featlab.pipeline`), Ray's
:class:`featlab.scale.Extractor`, ``featlab search`` queries, :func:`featlab.extract`,
:func:`featlab.embed` and the widgets all go through it, so a query is embedded exactly as
the stored rows were: same preprocessing, precision, layout and pooling.

The caller's model is never changed: the extractor runs its own copy where needed, with each
batch norm that follows a convolution folded into it (``fold``, :mod:`featlab.fold`; what
:meth:`FeatureExtractor.from_settings` does for files and their queries: faster, same
features up to float rounding) and in channels_last (NHWC) layout if asked. Its hooks
live on the model only during a forward pass (on the copy, if there is one). A model that
featlab did not load (built, wrapped or compiled yourself) needs its preprocessing passed
explicitly (``preprocess=fl.Preprocess(...)``).
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .extract import Capture
from .fold import conv_bn_pairs, fold_batchnorm
from .images import ImageLike, Preprocess
from .models import model_device, model_info, model_name, preprocess_for
from .settings import POOLINGS, ExtractSettings

__all__ = ["FeatureExtractor", "pool", "bad_rows"]


def pool(f: torch.Tensor, how: str = "avg") -> torch.Tensor:
    """(N, C, H, W) -> (N, C) by global average (``avg``) or max (``max``), or (N, C·H·W) by
    flattening (``none``); an (N, D) input (a fully connected layer) passes through."""
    if how not in POOLINGS:
        raise ValueError(f"pooling (how=) must be one of {POOLINGS}; got {how!r}. Fix: how='avg'.")
    if f.ndim == 2:
        return f
    if f.ndim != 4:
        raise ValueError(f"expected an (N, C, H, W) map or (N, D) vectors; got shape {tuple(f.shape)}.")
    if how == "avg":
        return f.mean(dim=(2, 3))
    if how == "max":
        return f.amax(dim=(2, 3))
    return f.flatten(1)


def bad_rows(vectors: dict[str, np.ndarray], dtype: str = "float32") -> dict[str, np.ndarray]:
    """``{layer: (N,) bool}``: rows with NaN or infinite values, or (``dtype`` float16) values
    beyond float16's range (±65504), which storage would turn into infinities."""
    limit = np.finfo(np.float16).max if dtype == "float16" else np.inf
    return {name: ~(np.abs(v) <= limit).all(axis=1) for name, v in vectors.items()}


def _is_channels_last(model: nn.Module) -> bool:
    weights = [p for p in model.parameters() if p.ndim == 4]
    return all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


class FeatureExtractor:
    """``model`` + ``layers`` + ``pooling`` -> ``{layer: (N, D) float32}`` on the model's device.

    ``preprocess``: how pictures become the model's input; default the weights' own
    (:func:`featlab.preprocess_for`, for models from :func:`featlab.load_model`).
    ``precision``: ``float32`` or ``bfloat16`` (autocast on the model's device).
    ``channels_last``: run an NHWC copy of the model (faster convolutions on CPUs and GPUs;
    one more set of weights in memory). ``fold``: run a copy whose batch norms are folded into
    the convolutions before them (:func:`featlab.fold.fold_batchnorm`; not in training mode):
    faster, features equal up to float rounding. :meth:`from_settings` (what extraction into a
    file, Ray's stages and search queries use) folds; the default, for :func:`featlab.extract`
    and :func:`featlab.embed` in the lessons, runs the model's own arithmetic.
    A model that cannot be copied runs as it is, with a warning. Calls run under ``torch.inference_mode``.
    """

    def __init__(self, model: nn.Module, layers: str | Sequence[str], pooling: str = "avg", *,
                 preprocess: Preprocess | None = None, precision: str = "float32", channels_last: bool = False,
                 fold: bool = False):
        settings = ExtractSettings(layers=layers, pooling=pooling, precision=precision,
                                   channels_last=channels_last)  # checks each one
        self.layers, self.pooling, self.precision = settings.layers, settings.pooling, settings.precision
        if preprocess is not None and not isinstance(preprocess, Preprocess):
            raise ValueError(f"preprocess must be a fl.Preprocess; got {type(preprocess).__name__}. "
                             "Fix: preprocess=fl.Preprocess(resize=256, crop=224, mean=..., std=...).")
        self._prep = preprocess if preprocess is not None else (preprocess_for(model) if model_name(model) else None)
        self.name = model_name(model) or type(model).__name__
        self.device = model_device(model)
        self.model = model
        self._paths = paths = Capture(model, self.layers).paths  # unknown names fail here, listing valid ones
        self._info = model_info(model)  # the family's facts, read from the caller's (unfolded) model
        self.channels_last = settings.channels_last
        self.folded = 0  # batch norms folded into the convolution before them (featlab.fold)
        pairs = conv_bn_pairs(model) if fold and not model.training else []
        if pairs or (self.channels_last and not _is_channels_last(model)):
            try:
                self.model = copy.deepcopy(model)
            except Exception as e:  # e.g. a model holding a lock or an open file
                warnings.warn(f"{type(model).__name__} cannot be copied ({type(e).__name__}: {e}); featlab "
                              "runs it as it is (no batch-norm folding; its own memory layout, "
                              "channels_last off).", stacklevel=2)
                self.channels_last = self.channels_last and _is_channels_last(model)
            else:
                self.folded = fold_batchnorm(self.model, keep=paths) if pairs else 0
                if self.channels_last:
                    self.model = self.model.to(memory_format=torch.channels_last)
        self._capture = Capture(self.model, self.layers, clone=True, stop=True, paths=paths)  # resolved once

    @property
    def prep(self) -> Preprocess:
        """How pictures become this model's input (resize, crop, mean, std, interpolation)."""
        if self._prep is None:
            raise ValueError(f"featlab does not know how pictures are prepared for this {type(self.model).__name__} "
                             "(it was not made by fl.load_model). Fix: pass preprocess=fl.Preprocess(resize=..., "
                             "crop=..., mean=..., std=...) as its weights expect, or fl.preprocess_for('<name>').")
        return self._prep

    @classmethod
    def from_settings(cls, model: nn.Module, settings: ExtractSettings,
                      preprocess: Preprocess | None = None) -> "FeatureExtractor":
        return cls(model, settings.layers, settings.pooling, preprocess=preprocess,
                   precision=settings.precision or "float32", channels_last=settings.channels_last, fold=True)

    def replica(self) -> "FeatureExtractor":
        """Another extractor with its own copy of the model (for a second stream of work);
        raises whatever ``copy.deepcopy`` raises for a model that cannot be copied."""
        twin = copy.copy(self)
        twin.model = copy.deepcopy(self.model)
        twin._capture = Capture(twin.model, self.layers, clone=True, stop=True, paths=self._paths)
        return twin

    # --- the forward pass ---------------------------------------------------------------

    def maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{layer: output}`` for a normalised batch ``x`` (N, C, H, W) on the model's device
        (not checked or moved); the pass stops after the deepest layer."""
        cap = self._capture
        with torch.inference_mode(), torch.autocast(self.device.type, torch.bfloat16,
                                                    enabled=self.precision == "bfloat16"), cap:
            cap.outputs = {}
            self.model(x)
        missing = [n for n in self.layers if n not in cap.outputs]
        if missing:
            raise ValueError(f"layer(s) {missing} did not run in the forward pass of "
                             f"{type(self.model).__name__}; pick layers from fl.layer_names(model).")
        outputs, cap.outputs = cap.outputs, {}
        return outputs

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised batch -> ``{layer: (N, D) float32}`` pooled vectors on the model's device."""
        with torch.inference_mode():
            return {name: pool(t.float(), self.pooling).reshape(len(x), -1) for name, t in self.maps(x).items()}

    def from_pixels(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, 3, crop, crop) uint8 (a :meth:`featlab.Preprocess.to_uint8` stack) -> vectors."""
        x = self.prep.normalize(pixels.to(self.device), self.channels_last)
        return self(x)

    def from_pictures(self, images: Sequence[ImageLike], fast_decode: bool = False) -> dict[str, torch.Tensor]:
        """Pictures -> vectors, read and resized as the pipeline reads them (Pillow)."""
        return self.from_pixels(torch.stack([self.prep.to_uint8(im, draft=fast_decode) for im in images]))

    # --- what comes out -----------------------------------------------------------------

    def dims(self) -> dict[str, int]:
        """``{layer: D}``, the length of each layer's vector: from the model registry's facts
        (channels, stride) where it knows the layer, else from one forward pass of a blank batch."""
        info = self._info
        out: dict[str, int] = {}
        for name in self.layers:
            f = info.feature(name) if info is not None else None
            if f is not None and (self.pooling != "none" or f.reduction == 0):
                out[name] = f.channels
            elif f is not None and self.prep.crop % f.reduction == 0:
                out[name] = f.channels * (self.prep.crop // f.reduction) ** 2
        if len(out) < len(self.layers):
            blank = torch.zeros(1, 3, self.prep.crop, self.prep.crop, dtype=torch.uint8)
            out = {name: v.shape[1] for name, v in self.from_pixels(blank).items()}
        return out
