"""Class activation maps: CAM for GAP→Linear heads, and Grad-CAM for any convolutional layer.

CAM is taught in ``notebooks/04_gap_classification.ipynb``, Grad-CAM in
``notebooks/06_grad_cam.ipynb``.

Both return one map per image, shape (N, H, W). By default the map is bilinearly upsampled to
the input's (H, W) and min-max normalised to [0, 1] per image (``upsample=True,
normalize=True``); pass ``upsample=False, normalize=False`` for the raw map at the layer's
resolution, e.g. to check the arithmetic.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .extract import Capture, as_batch, resolve_layer
from .images import ImageLike
from .models import model_info

__all__ = ["gap_head", "cam", "GradientCapture", "layer_gradients", "grad_cam"]

Images = ImageLike | Sequence[ImageLike] | torch.Tensor
Target = int | Sequence[int] | torch.Tensor | None


# --- shared pieces -----------------------------------------------------------------------

def _targets(target: Target, logits: torch.Tensor) -> torch.Tensor:
    """``None`` (top-1 class per image), one class for all, or one class per image -> (N,) long."""
    n, k = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    t = torch.as_tensor(target, dtype=torch.long, device=logits.device).flatten()
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n:
        raise ValueError(f"target has {t.numel()} classes but there are {n} images; "
                         "pass one int for all images, one per image, or None for the top-1 class.")
    if (t < 0).any() or (t >= k).any():
        raise ValueError(f"target classes must lie in [0, {k - 1}]; got {t.tolist()}.")
    return t


def _finish(maps: torch.Tensor, size: tuple[int, int], upsample: bool, normalize: bool) -> torch.Tensor:
    """(N, h, w) maps -> optionally upsampled to ``size`` (bilinear) and scaled to [0, 1] per image."""
    if upsample:
        maps = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    if normalize:
        lo = maps.amin(dim=(1, 2), keepdim=True)
        hi = maps.amax(dim=(1, 2), keepdim=True)
        maps = (maps - lo) / (hi - lo).clamp_min(1e-12)  # a constant map becomes all zeros
    return maps


# --- CAM ---------------------------------------------------------------------------------

def gap_head(model: nn.Module) -> tuple[str, str]:
    """(feature layer, linear head) module paths of a GAP→Linear classifier.

    ResNet: ``("layer4", "fc")``; EfficientNet (timm): ``("bn2", "classifier")``. Other models
    raise ``ValueError``: pass ``layer=`` and ``head=`` to :func:`cam` yourself, or use
    :func:`grad_cam`, which needs no such head.
    """
    info = model_info(model)
    if info is not None and info.gap_head is not None:
        return tuple(info.aliases[a] for a in info.gap_head)
    raise ValueError(
        f"{type(model).__name__} has no global-average-pool → Linear head that featlab knows "
        "(VGG, for one, flattens a 7×7×512 map into fc6, so CAM does not apply). "
        "Pass layer='<last conv block>' and head='<linear layer>' if your model has such a head, "
        "or use fl.grad_cam(model, images, layer), which works for any convolutional layer."
    )


def cam(model: nn.Module, images: Images, target: Target = None, layer: str | None = None,
        head: str | None = None, upsample: bool = True, normalize: bool = True) -> torch.Tensor:
    """Class Activation Map of a GAP→Linear model: M_k(h, w) = Σ_c W[k, c] · y[c, h, w].

    ``images``: pictures or a normalised (N, 3, H, W) tensor. ``target``: class per image
    (``None`` = the predicted class). ``layer`` / ``head``: the layer feeding the global
    average pool and the Linear classifier (found automatically for ResNet and
    EfficientNet, see :func:`gap_head`). The classifier bias is left out (it shifts every
    pixel equally). Returns (N, H, W): by default upsampled to the input and normalised to
    [0, 1]; ``upsample=False, normalize=False`` gives the raw map at the layer's resolution,
    whose spatial mean plus the bias is the logit. Taught in ``04_gap_classification``.
    """
    if (layer is None) != (head is None):
        raise ValueError("pass both layer= and head= (or neither, to detect them).")
    if layer is None:
        layer, head = gap_head(model)
    linear = dict(model.named_modules())[resolve_layer(model, head)]
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"head '{head}' is a {type(linear).__name__}, not nn.Linear.")
    x = as_batch(model, images)
    with torch.inference_mode(), Capture(model, [layer]) as capture:
        logits = model(x)
    y = capture.outputs[layer].float()                                     # (N, C, h, w)
    if y.ndim != 4 or y.shape[1] != linear.in_features:
        raise ValueError(f"layer '{layer}' gives shape {tuple(y.shape)}; the head expects "
                         f"(N, {linear.in_features}, h, w).")
    weight = linear.weight.detach().float()
    bias = linear.bias.detach().float() if linear.bias is not None else 0.0
    rebuilt = y.mean(dim=(2, 3)) @ weight.T + bias
    if not torch.allclose(rebuilt, logits.float(), rtol=1e-3, atol=1e-3 * logits.abs().max().item()):
        raise ValueError(f"the logits are not Linear('{head}')(mean over h, w of '{layer}'): "
                         "this layer does not feed a GAP→Linear head. Use fl.grad_cam instead.")
    t = _targets(target, logits)
    maps = torch.einsum("nc,nchw->nhw", weight[t], y)                      # Σ_c W[k, c] y[c, h, w]
    return _finish(maps, tuple(x.shape[-2:]), upsample, normalize)


# --- Grad-CAM ----------------------------------------------------------------------------

class GradientCapture:
    """Context manager: a layer's output A and the gradient dS/dA reaching it in backward.

    A forward hook records A and hands the rest of the network a copy of it that starts a
    new autograd graph: ``A`` becomes a leaf with ``A.register_hook`` recording its gradient,
    so a backward pass stops at the layer instead of running down to the input (several
    times faster on CPU) and leaves nothing in the earlier layers. Module backward hooks are
    avoided on purpose: they break when an in-place op (``ReLU(inplace=True)``,
    ``out += identity``) follows the layer; the copy also keeps such ops from changing A.
    Hooks are removed on exit, also after an exception. Taught in ``06_grad_cam``.

    >>> with GradientCapture(model, "layer4") as cap:
    ...     logits = model(x)
    ...     torch.autograd.grad(logits[:, 281].sum(), cap.activation)
    >>> cap.gradient.shape   # (N, C, h, w), like cap.activation
    """

    def __init__(self, model: nn.Module, layer: str):
        self.model, self.layer = model, layer
        self.path = resolve_layer(model, layer)
        self.activation: torch.Tensor | None = None
        self.gradient: torch.Tensor | None = None
        self.calls = 0
        self._handle = None

    def _forward_hook(self, _module, _inputs, out):
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"layer '{self.layer}' returns {type(out).__name__}, not a tensor.")
        self.calls += 1
        self.activation = out.detach().requires_grad_(True)    # leaf: backward ends here
        self.activation.register_hook(self._save_gradient)
        return self.activation.clone()                          # later in-place ops change the copy

    def _save_gradient(self, grad: torch.Tensor) -> None:
        self.gradient = grad.detach().clone()

    def __enter__(self) -> "GradientCapture":
        module = dict(self.model.named_modules())[self.path]
        self._handle = module.register_forward_hook(self._forward_hook)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def layer_gradients(model: nn.Module, images: Images, layer: str,
                    target: Target = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Activations A (N, C, h, w), gradients dy_target/dA (N, C, h, w) and targets (N,).

    ``y_target`` is the logit (pre-softmax score) of each image's target class (``None`` = its
    top-1 class). The model's parameters get no ``.grad`` and their ``requires_grad`` flags are
    restored; the model's train/eval mode is not changed. Taught in ``06_grad_cam``.
    """
    x = as_batch(model, images)
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)                     # no weight gradients: faster, nothing left behind
        with torch.inference_mode(False), torch.enable_grad(), GradientCapture(model, layer) as capture:
            logits = model(x.detach().clone())
            if logits.ndim != 2:
                raise ValueError(f"the model should return logits (N, classes); got {tuple(logits.shape)}.")
            t = _targets(target, logits.detach())
            if capture.calls != 1:
                raise ValueError(f"layer '{layer}' ran {capture.calls} times in one forward pass; "
                                 "pick a layer that runs exactly once (a shared module such as "
                                 "ResNet's block-level relu runs twice).")
            if capture.activation.ndim != 4:
                raise ValueError(f"Grad-CAM needs a convolutional layer with output (N, C, h, w); "
                                 f"'{layer}' gives {tuple(capture.activation.shape)}.")
            score = logits.gather(1, t[:, None]).sum()  # images are independent: one backward for all
            if not score.requires_grad:
                raise RuntimeError(f"the logits do not depend on layer '{layer}'.")
            torch.autograd.grad(score, capture.activation)
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
    return capture.activation.detach(), capture.gradient, t


def grad_cam(model: nn.Module, images: Images, layer: str, target: Target = None,
             upsample: bool = True, normalize: bool = True) -> torch.Tensor:
    """Grad-CAM: map = ReLU(Σ_k α_k A_k) with α_k = mean over (h, w) of dy_target/dA_k.

    ``images``: pictures or a normalised (N, 3, H, W) tensor; ``layer``: module path or alias
    (``"layer4"``, ``"block6"``, ``"conv5_3"``); ``target``: class per image (``None`` = top-1).
    Returns (N, H, W) in [0, 1] at the input's resolution; ``upsample=False, normalize=False``
    gives the raw ReLU(Σ_k α_k A_k) at the layer's resolution. Taught in ``06_grad_cam``.
    """
    x = as_batch(model, images)
    acts, grads, _ = layer_gradients(model, x, layer, target)
    alpha = grads.float().mean(dim=(2, 3))                                  # (N, C)
    maps = torch.einsum("nc,nchw->nhw", alpha, acts.float()).relu()         # (N, h, w)
    return _finish(maps, tuple(x.shape[-2:]), upsample, normalize)
