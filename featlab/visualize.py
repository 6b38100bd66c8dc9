"""What does a channel want? Activation maximisation: optimise an input picture so that one
channel of one layer responds as strongly as possible.

Taught in ``notebooks/15_activation_maximisation.ipynb``. The readable-picture tricks follow
Lucid (Olah et al., "Feature Visualization", Distill 2017) and its PyTorch port Lucent:
a Fourier-space parameterisation scaled by 1/frequency, colour decorrelation with a fixed
3×3 matrix, and random jitter/scale/rotation of the picture at every step.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .extract import Capture, resolve_layer
from .models import model_device, preprocess_for

__all__ = ["maximize_activation", "channel_activation", "fourier_scale", "COLOR_CORRELATION"]

#: Lucid's ImageNet colour correlation, square root of the RGB covariance of ImageNet pixels
#: (``lucid/optvis/param/color.py``: ``color_correlation_svd_sqrt``). Its columns are the
#: directions luminance, red–cyan and yellow–blue, scaled by their spread.
COLOR_CORRELATION = torch.tensor([[0.26, 0.09, 0.02],
                                  [0.27, 0.00, -0.05],
                                  [0.27, -0.09, 0.03]])


def fourier_scale(h: int, w: int, decay_power: float = 1.0) -> torch.Tensor:
    """(h, w // 2 + 1) weights 1 / f^decay_power of the real-FFT frequencies of an h×w picture.

    ``f = sqrt(fy² + fx²)`` in cycles per pixel (``torch.fft.fftfreq`` rows,
    ``torch.fft.rfftfreq`` columns); the zero frequency uses ``1 / max(h, w)`` instead of 0,
    the lowest frequency the picture can hold.
    """
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    f = torch.sqrt(fy ** 2 + fx ** 2)
    return 1.0 / f.clamp_min(1.0 / max(h, w)) ** decay_power


def _mean_std(model: nn.Module, mean, std) -> tuple[torch.Tensor, torch.Tensor]:
    if mean is None or std is None:
        try:
            p = preprocess_for(model)
        except ValueError as e:
            raise ValueError("pass mean=… and std=… (the input normalisation of the model): "
                             f"{e}") from None
        mean = p.mean if mean is None else mean
        std = p.std if std is None else std
    dev = model_device(model)
    return (torch.as_tensor(mean, dtype=torch.float32, device=dev).reshape(1, -1, 1, 1),
            torch.as_tensor(std, dtype=torch.float32, device=dev).reshape(1, -1, 1, 1))


def _layer_output(model: nn.Module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """Output of ``layer`` for the batch ``x`` (differentiable); the pass stops there."""
    with Capture(model, [layer], clone=False, stop=True) as cap:
        model(x)
    if layer not in cap.outputs:
        raise ValueError(f"layer '{layer}' did not run in the forward pass of {type(model).__name__}.")
    out = cap.outputs[layer]
    if out.dim() != 4:
        raise ValueError(f"layer '{layer}' gives a {out.dim()}-d output {tuple(out.shape)}; "
                         "activation maximisation needs a convolutional (N, C, H, W) map.")
    return out


def channel_activation(model: nn.Module, layer: str, channel: int, images: torch.Tensor,
                       mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                       batch_size: int = 32) -> torch.Tensor:
    """(N,) mean activation of ``channel`` of ``layer`` for pictures ``images`` (N, 3, H, W) in [0, 1].

    The pictures are normalised with the model's ``mean``/``std`` (from ``fl.preprocess_for``
    when not given). This is the objective :func:`maximize_activation` maximises.
    """
    resolve_layer(model, layer)
    m, s = _mean_std(model, mean, std)
    was_training = model.training
    model.eval()
    outs = []
    try:
        with torch.no_grad():
            for chunk in images.split(batch_size):
                a = _layer_output(model, layer, (chunk.to(m.device) - m) / s)
                _check_channel(a, layer, channel)
                outs.append(a[:, channel].mean(dim=(1, 2)).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outs)


def _check_channel(a: torch.Tensor, layer: str, channel: int) -> None:
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise TypeError(f"channel must be an int; got {type(channel).__name__}.")
    if not 0 <= channel < a.shape[1]:
        raise ValueError(f"channel {channel} does not exist: layer '{layer}' has {a.shape[1]} channels "
                         f"(0 … {a.shape[1] - 1}).")


# --- picture parameterisations ------------------------------------------------------------

class _Picture:
    """Parameters -> an RGB picture (1, 3, H, W) in [0, 1]."""

    def __init__(self, size: int, param: str, decorrelate: bool, gen: torch.Generator, device):
        self.size, self.param, self.decorrelate = size, param, decorrelate
        if param == "pixel":
            self.p = (torch.randn(1, 3, size, size, generator=gen) * 0.01).to(device)
        elif param == "fourier":
            self.p = (torch.randn(1, 3, size, size // 2 + 1, 2, generator=gen) * 0.01).to(device)
            self.scale = fourier_scale(size, size).to(device)
        else:
            raise ValueError(f"param must be 'pixel' or 'fourier'; got {param!r}.")
        self.p.requires_grad_(True)
        c = COLOR_CORRELATION.to(device)
        self.color = c / c.norm(dim=0).max()

    def __call__(self) -> torch.Tensor:
        if self.param == "fourier":
            spectrum = torch.view_as_complex(self.p) * self.scale
            x = torch.fft.irfftn(spectrum, s=(self.size, self.size), norm="ortho") / 4.0
        else:
            x = self.p
        if self.decorrelate:
            x = torch.einsum("ij,njhw->nihw", self.color, x)
        return torch.sigmoid(x)


def _transform(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Lucent's standard transforms at a small size: pad, jitter, scale, rotate, jitter."""
    size = x.shape[-1]
    j1, j2 = max(1, round(8 * size / 224)), max(1, round(4 * size / 224))
    pad = max(2, round(12 * size / 224))
    x = F.pad(x, (pad,) * 4, mode="constant", value=0.5)

    def jitter(x, d):
        dy, dx = torch.randint(0, d + 1, (2,), generator=gen).tolist()
        return x[..., dy:x.shape[-2] - d + dy, dx:x.shape[-1] - d + dx]

    x = jitter(x, j1)
    scale = 1 + (int(torch.randint(0, 11, (1,), generator=gen)) - 5) / 50
    angle = math.radians(int(torch.randint(-10, 11, (1,), generator=gen)))
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    theta = torch.tensor([[[cos, -sin, 0.0], [sin, cos, 0.0]]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5
    return jitter(x, j2)


# --- the optimisation -----------------------------------------------------------------------

def maximize_activation(model: nn.Module, layer: str, channel: int, size: int = 128, steps: int = 64,
                        lr: float = 0.05, param: str = "fourier", decorrelate: bool = True,
                        transforms: bool = True, seed: int = 0, mean: Sequence[float] | None = None,
                        std: Sequence[float] | None = None) -> tuple[torch.Tensor, list[float]]:
    """A picture that maximises the mean activation of ``channel`` in ``layer``.

    Gradient ascent (Adam, ``lr``) for ``steps`` steps on the parameters of a ``size``×``size``
    RGB picture: ``param="pixel"`` optimises the pixels themselves (before a sigmoid), ``"fourier"``
    their 2-D spectrum scaled by 1/frequency (:func:`fourier_scale`); ``decorrelate`` maps
    the three channels through Lucid's colour correlation :data:`COLOR_CORRELATION`;
    ``transforms`` randomly pads, jitters, scales and rotates the picture before every step.
    The picture is normalised with the model's ``mean``/``std`` (``fl.preprocess_for`` when
    not given). The model is put in eval mode, its weights are frozen (no ``.grad``) and the
    hook is removed, also after an error; the model's mode and ``requires_grad`` are restored.

    Returns ``(picture, history)``: the picture (3, size, size) in [0, 1] on the CPU, and the
    objective (channel mean activation of the transformed picture) before each step.
    Deterministic for a ``seed`` on a given device.
    """
    resolve_layer(model, layer)  # unknown layer -> ValueError listing the valid names
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}.")
    m, s = _mean_std(model, mean, std)
    dev = m.device
    gen = torch.Generator().manual_seed(seed)
    picture = _Picture(size, param, decorrelate, gen, dev)
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    history: list[float] = []
    try:
        with torch.enable_grad():
            opt = torch.optim.Adam([picture.p], lr=lr)
            for step in range(steps):
                x = picture()
                if transforms:
                    x = _transform(x, gen)
                a = _layer_output(model, layer, (x - m) / s)
                if step == 0:
                    _check_channel(a, layer, channel)
                objective = a[:, channel].mean()
                history.append(float(objective.detach().cpu()))
                opt.zero_grad()
                (-objective).backward()
                opt.step()
        with torch.no_grad():
            image = picture()[0].detach().cpu()
    finally:
        model.train(was_training)
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    return image, history
