"""Figures used across the notebooks: feature-map grids and heat-map overlays.

Taught in ``notebooks/05_feature_maps.ipynb`` (grids) and ``06_grad_cam.ipynb`` (overlays).
"""
from __future__ import annotations

import numpy as np
import torch

from .images import ImageLike, load_image

__all__ = ["top_channels", "feature_grid", "overlay", "show_images"]


def top_channels(fmap: torch.Tensor, k: int = 16) -> list[int]:
    """Indices of the ``k`` channels of a (C, H, W) or (1, C, H, W) map with the largest mean."""
    f = fmap[0] if fmap.ndim == 4 else fmap
    if f.ndim != 3:
        raise ValueError(f"expected a feature map (C, H, W); got shape {tuple(fmap.shape)}.")
    return f.float().mean(dim=(1, 2)).topk(min(k, f.shape[0])).indices.tolist()


def feature_grid(fmap: torch.Tensor, k: int = 16, channels: list[int] | None = None,
                 ncols: int = 8, title: str | None = None, cmap: str = "viridis", ax_size: float = 1.3):
    """Plot ``k`` channels of a (C, H, W) map (the strongest by mean, or ``channels``) as a grid.

    Each panel is scaled on its own; its title is the channel index. Returns the figure.
    """
    import matplotlib.pyplot as plt

    f = (fmap[0] if fmap.ndim == 4 else fmap).detach().float().cpu()
    channels = channels if channels is not None else top_channels(f, k)
    nrows = int(np.ceil(len(channels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * ax_size, nrows * ax_size + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, c in zip(axes.flat, channels):
        ax.imshow(f[c].numpy(), cmap=cmap)
        ax.set_title(str(c), fontsize=7)
    if title:
        fig.suptitle(f"{title}  {tuple(f.shape)}", fontsize=9)
    fig.tight_layout()
    return fig


def overlay(image: ImageLike | torch.Tensor, heatmap: torch.Tensor | np.ndarray, alpha: float = 0.5,
            cmap: str = "jet", ax=None, title: str | None = None):
    """Draw ``heatmap`` (H', W') over a picture, resized to the picture's size. Returns the axes.

    ``image`` may be a picture or a (3, H, W) tensor with values in [0, 1].
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    if isinstance(image, torch.Tensor):
        img = image.detach().float().cpu().permute(1, 2, 0).clamp(0, 1).numpy()
    else:
        img = np.asarray(load_image(image), dtype=np.float32) / 255.0
    h = heatmap.detach().float().cpu().numpy() if isinstance(heatmap, torch.Tensor) else np.asarray(heatmap, float)
    h = np.squeeze(h)
    if h.ndim != 2:
        raise ValueError(f"heatmap must be 2-D (H, W); got shape {h.shape}.")
    if h.shape != img.shape[:2]:
        h = np.asarray(Image.fromarray(h.astype(np.float32)).resize(img.shape[1::-1], Image.BILINEAR))
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(img)
    ax.imshow(h, cmap=cmap, alpha=alpha)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def show_images(images: list, titles: list[str] | None = None, ncols: int = 4, size: float = 2.2):
    """A row/grid of pictures (paths, sample names, PIL images or arrays) with titles."""
    import matplotlib.pyplot as plt

    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, im) in enumerate(zip(axes.flat, images)):
        ax.imshow(load_image(im))
        if titles:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig
