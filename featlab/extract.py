"""Naming layers and pulling their outputs out of a model with forward hooks.

Taught in ``notebooks/05_feature_maps.ipynb``.
"""
from __future__ import annotations

import difflib
from collections.abc import Sequence

import torch
from torch import nn

from .images import ImageLike
from .models import as_batch, in_channels, model_device, model_info  # re-exported: cam, receptive use them from here

__all__ = ["aliases", "resolve_layer", "layer_names", "Capture", "forward_layers", "extract", "as_batch",
           "in_channels", "model_device"]


# --- layer names -------------------------------------------------------------------------

def aliases(model: nn.Module) -> dict[str, str]:
    """Lesson-friendly names -> module paths for the models of the course.

    VGG: ``conv1_1 … conv5_3`` (the convolution, before its ReLU), ``relu1_1 …``,
    ``pool1 … pool5``, ``fc6, fc7, fc8``. ResNet: ``stem`` (after the max-pool),
    ``layer1 … layer4``, ``avgpool``, ``fc``. EfficientNet-Lite0: ``stem``, ``block1 … block7``,
    ``head`` (last 1×1 conv + BN + ReLU6), ``avgpool``, ``fc``. Other models: none. The facts
    (with channels and stride) live in the model registry, :func:`featlab.models.model_info`.
    """
    info = model_info(model)
    return info.aliases if info is not None else {}


def resolve_layer(model: nn.Module, layer: str) -> str:
    """Alias or module path -> module path; unknown names raise an error listing valid ones."""
    paths = [n for n, _ in model.named_modules() if n]
    if layer in paths:
        return layer
    al = aliases(model)
    if layer in al:
        return al[layer]
    close = difflib.get_close_matches(layer, list(al) + paths, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    alias_text = f" Aliases: {', '.join(al)}." if al else ""
    shown = ", ".join(paths[:12]) + (f", … ({len(paths)} in all)" if len(paths) > 12 else "")
    raise ValueError(  # one line: the command line prints it as it is
        f"unknown layer '{layer}' for {type(model).__name__}.{hint}{alias_text} Module paths: {shown}. "
        "Fix: pass one of these; fl.layer_names(model) lists every layer with its output shape.")


@torch.inference_mode()
def layer_names(model: nn.Module, input_size: int = 224) -> dict[str, tuple[int, ...]]:
    """Every module path that runs in ``model``'s forward, in call order, -> its output shape.

    Shapes are per image, e.g. ``(64, 112, 112)`` for (C, H, W), for a
    ``input_size × input_size`` input. Aliases (see :func:`aliases`) are accepted wherever a
    layer name is.
    """
    order: list[str] = []
    shapes: dict[str, tuple[int, ...]] = {}
    named = [(n, m) for n, m in model.named_modules() if n]

    def pre(name):
        def hook(_m, _inp):
            if name not in order:
                order.append(name)
        return hook

    def post(name):
        def hook(_m, _inp, out):
            if isinstance(out, torch.Tensor) and name not in shapes:
                shapes[name] = tuple(out.shape[1:])
        return hook

    handles = [m.register_forward_pre_hook(pre(n)) for n, m in named]
    handles += [m.register_forward_hook(post(n)) for n, m in named]
    try:
        x = torch.zeros(1, in_channels(model), input_size, input_size, device=model_device(model))
        model(x)
    finally:
        for h in handles:
            h.remove()
    return {n: shapes[n] for n in order if n in shapes}


# --- capturing outputs -------------------------------------------------------------------

class _Done(Exception):
    """Raised inside a hook to end the forward pass once every wanted layer was seen."""


class Capture:
    """Context manager: record the outputs of some layers during forward passes.

    >>> with Capture(model, ["layer3", "layer4"]) as cap:
    ...     model(x)
    >>> cap.outputs["layer4"].shape   # (N, C, H, W)

    Hooks are removed on exit, also after an exception. ``clone=True`` copies each output,
    so a later in-place op (``ReLU(inplace=True)``) cannot change what was recorded.
    ``stop=True`` ends the forward pass as soon as all layers were recorded (the ``with``
    block then ends quietly, without the model's output); a module that runs twice in one pass then keeps its
    first output, as torchvision's feature extraction names it. Otherwise each pass
    overwrites the previous one.
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], clone: bool = True, stop: bool = False,
                 paths: Sequence[str] | None = None):
        self.model, self.layers = model, list(layers)
        # ``paths``: the layers' module paths, resolved beforehand (on the model this one was copied from)
        self.paths = list(paths) if paths is not None else [resolve_layer(model, name) for name in self.layers]
        self.clone, self.stop = clone, stop
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def _hook(self, name: str):
        def hook(_m, _inp, out):
            if not isinstance(out, torch.Tensor):
                raise TypeError(f"layer '{name}' returns {type(out).__name__}, not a tensor.")
            if self.stop and name in self.outputs:
                return  # a module run twice in one pass (ResNet's shared relu): keep the first
            self.outputs[name] = out.clone() if self.clone else out
            if self.stop and len(self.outputs) == len(self.layers):
                raise _Done
        return hook

    def __enter__(self) -> "Capture":
        modules = dict(self.model.named_modules())
        for name, path in zip(self.layers, self.paths):
            self._handles.append(modules[path].register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return exc_type is _Done  # the early stop of stop=True is not an error


def forward_layers(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """``{layer: output}`` of one forward pass of the ready batch ``x`` (N, C, H, W), which is
    not checked or moved; the pass stops after the deepest layer. Layers that never ran raise."""
    with Capture(model, layers, clone=True, stop=True) as cap:
        model(x)
    missing = [n for n in layers if n not in cap.outputs]
    if missing:
        raise ValueError(f"layer(s) {missing} did not run in the forward pass of "
                         f"{type(model).__name__}; pick layers from fl.layer_names(model).")
    return cap.outputs


def extract(model: nn.Module, images: ImageLike | Sequence[ImageLike] | torch.Tensor,
            layers: str | Sequence[str], batch_size: int | None = None,
            progress: bool = False) -> dict[str, torch.Tensor]:
    """Outputs of ``layers`` for a batch of images: ``{layer: (N, C, H, W) tensor}``.

    ``images``: pictures (preprocessed for the model) or a normalised (N, C, H, W) tensor.
    ``layers``: module paths or aliases, e.g. ``"layer3"``, ``"features.28"``, ``"conv5_3"``.
    Runs under ``torch.inference_mode``; the forward pass stops after the deepest requested
    layer. ``batch_size`` splits large inputs (with a tqdm bar if ``progress``). Results stay
    on the model's device.
    """
    layers = [layers] if isinstance(layers, str) else list(dict.fromkeys(layers))
    x = as_batch(model, images)
    chunks = [x] if batch_size is None else list(x.split(batch_size))
    if progress:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="extract", unit="batch")
    from .extractor import FeatureExtractor

    extractor = FeatureExtractor(model, layers, pooling="none")
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in extractor.layers}
    for chunk in chunks:
        outputs = extractor.maps(chunk)
        for name in extractor.layers:
            parts[name].append(outputs[name])
    return {name: torch.cat(p) if len(p) > 1 else p[0] for name, p in parts.items()}
