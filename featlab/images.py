"""Loading pictures and turning them into model inputs.

Taught in ``notebooks/00_setup_and_tour.ipynb`` (loading, samples) and
``notebooks/03_reshape_permute.ipynb`` (layouts).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]


class ImageError(ValueError):
    """An image could not be read or converted; the message says why and what to do."""


# --- bundled sample pictures (no download needed) -----------------------------------------

def _skimage(name: str):
    def load() -> np.ndarray:
        from skimage import data
        return getattr(data, name)()
    return load


def _sklearn(filename: str):
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image
        return load_sample_image(filename)
    return load


_SAMPLES = {
    "chelsea": ("a tabby cat (skimage)", _skimage("chelsea")),
    "coffee": ("a cup of espresso (skimage)", _skimage("coffee")),
    "astronaut": ("astronaut Eileen Collins (skimage)", _skimage("astronaut")),
    "rocket": ("a rocket on its launch pad (skimage)", _skimage("rocket")),
    "china": ("a Chinese temple (scikit-learn)", _sklearn("china.jpg")),
    "flower": ("a flower (scikit-learn)", _sklearn("flower.jpg")),
    "camera": ("the cameraman, grayscale (skimage)", _skimage("camera")),
    "brick": ("brick wall texture, grayscale (skimage)", _skimage("brick")),
    "grass": ("grass texture, grayscale (skimage)", _skimage("grass")),
    "gravel": ("gravel texture, grayscale (skimage)", _skimage("gravel")),
    "coins": ("Greek coins, grayscale (skimage)", _skimage("coins")),
    "horse": ("a horse silhouette, binary (skimage)", _skimage("horse")),
}


def sample_images() -> dict[str, str]:
    """Names (and descriptions) of the pictures that ship with the installed packages.

    Any of these names can be passed to :func:`load_image`; they work offline.
    """
    return {name: desc for name, (desc, _) in _SAMPLES.items()}


@lru_cache(maxsize=None)
def _sample_array(name: str) -> np.ndarray:
    arr = _SAMPLES[name][1]()
    arr.setflags(write=False)
    return arr


# --- conversion to RGB -------------------------------------------------------------------

def _array_to_pil(arr: np.ndarray) -> Image.Image:
    """(H, W), (H, W, 1|3|4) uint8/uint16/bool/float array -> PIL image (not yet RGB)."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        raise ImageError(
            f"array of shape {a.shape} looks channels-first (C, H, W); images are (H, W, C). "
            "Fix: pass arr.transpose(1, 2, 0)."
        )
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (3, 4)):
        raise ImageError(f"expected an image array (H, W), (H, W, 3) or (H, W, 4); got shape {a.shape}.")
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0).round().astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        bad = int(np.count_nonzero(~np.isfinite(a)))
        if bad:
            raise ImageError(
                f"float image has {bad} NaN or infinite value(s); a picture needs finite values "
                "in [0, 1]. Fix: find where they come from, or np.nan_to_num(arr, nan=0.0)."
            )
        if a.min() < 0 or a.max() > 1:
            raise ImageError(
                f"float image values must lie in [0, 1]; got [{a.min():.3g}, {a.max():.3g}]. "
                "Fix: rescale, or pass a uint8 array."
            )
        a = (a * 255).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        raise ImageError(f"unsupported image dtype {a.dtype}; use uint8, uint16, bool or float in [0, 1].")
    return Image.fromarray(np.ascontiguousarray(a))


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL image to 8-bit RGB correctly.

    EXIF orientation is applied; transparent pixels are composited on white; 16-bit and
    32-bit grayscale are scaled to 0..255 (PIL's own ``convert("RGB")`` would clip them).
    """
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if not np.isfinite(a).all():
            raise ImageError("32-bit float image has NaN or infinite pixels; it cannot be shown "
                             "as a picture. Fix: clean the file (e.g. np.nan_to_num) and save it again.")
        hi = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        if img.mode == "F" and a.max() <= 1.0:
            hi = 1.0
        a = np.clip(a / hi * 255.0, 0, 255).round().astype(np.uint8)
        img = Image.fromarray(a, mode="L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


def load_image(source: ImageLike, draft: int | None = None) -> Image.Image:
    """Load a picture as an RGB PIL image.

    ``source`` is a file path, a sample name from :func:`sample_images`, a PIL image or a
    NumPy array (H, W[, C]). Grayscale, palette, RGBA, 16-bit and EXIF-rotated inputs are
    converted to plain RGB. Raises :class:`ImageError` with the reason and the fix.
    ``draft``: a JPEG file is decoded at the smallest of 1, 1/2, 1/4, 1/8 of its size whose
    sides stay at least ``draft`` pixels (Pillow's draft mode): several times faster for
    large photos, pixels slightly different (notebook 12, ``benchmarks/README.md``).
    """
    if isinstance(source, Image.Image):
        return to_rgb(source)
    if isinstance(source, np.ndarray):
        return to_rgb(_array_to_pil(source))
    if isinstance(source, torch.Tensor):
        raise ImageError(
            "load_image takes a path, sample name, PIL image or NumPy array, not a tensor. "
            "Tensors that are already preprocessed go straight to fl.extract / the model."
        )
    if not isinstance(source, (str, os.PathLike)):
        raise ImageError(f"cannot load an image from {type(source).__name__}; pass a path or a sample name.")
    if isinstance(source, str) and source in _SAMPLES:
        return to_rgb(_array_to_pil(_sample_array(source)))
    path = Path(source).expanduser()
    if not path.exists():
        hint = "" if os.sep in str(source) or "." in str(source) else (
            f" It is not a sample name either; samples: {', '.join(_SAMPLES)}.")
        raise ImageError(f"no such image file: '{path}'.{hint}")
    if path.is_dir():
        raise ImageError(f"'{path}' is a folder; pass one image file (the CLI takes folders).")
    if path.stat().st_size == 0:
        raise ImageError(f"'{path}' is empty (0 bytes): the file was not written completely. Re-copy it.")
    try:
        with Image.open(path) as img:
            if draft is not None and img.format == "JPEG":
                img.draft("RGB", (draft, draft))
            img.load()
            return to_rgb(img)
    except Image.DecompressionBombError as e:
        raise ImageError(
            f"'{path}' is refused as a possible decompression bomb ({e}). If you trust the file, "
            "raise PIL.Image.MAX_IMAGE_PIXELS (or set it to None) before loading it."
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"'{path}' is not an image PIL can read (JPEG, PNG, BMP, TIFF, WebP, ...). "
            "Check the file type; HEIC/RAW files must be converted first."
        ) from None
    except (OSError, SyntaxError) as e:  # truncated or corrupt data
        raise ImageError(
            f"'{path}' is corrupt or truncated ({e}). Re-download or re-export the file."
        ) from None


# --- preprocessing -----------------------------------------------------------------------

_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
             "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}

@dataclass(frozen=True)
class Preprocess:
    """How a model's weights expect pictures: resize the short side, centre-crop, normalise.

    Calling it on images returns a float tensor (N, 3, crop, crop).
    """

    resize: int
    crop: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"  # or "bicubic"

    def resize_plan(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(resized width, resized height, crop left, crop top) for a width × height picture,
        with torchvision's sizes and rounding (``Resize(resize)`` + ``CenterCrop(crop)``)."""
        if width <= height:
            out_w, out_h = self.resize, int(self.resize * height / width)
        else:
            out_w, out_h = int(self.resize * width / height), self.resize
        return out_w, out_h, int(round((out_w - self.crop) / 2.0)), int(round((out_h - self.crop) / 2.0))

    def to_uint8(self, image: ImageLike, draft: bool = False) -> torch.Tensor:
        """One picture -> (3, crop, crop) uint8: loaded as RGB, resized and centre-cropped.

        Resizes only the columns the crop keeps (Pillow's ``box``; rows in full, or Pillow
        changes the order of its two passes), with the filter and sample positions of
        resize-then-crop: up to a third less work, pixels equal to torchvision's ``Resize`` +
        ``CenterCrop`` up to rounding (at most 1 of 255, on about 1 % of the pixels at worst; tested).
        ``draft``: JPEGs decoded at reduced scale, sides still >= ``resize`` (:func:`load_image`):
        faster, pixels slightly different (features within cosine 0.99, tested; notebook 12).
        """
        img = load_image(image, draft=self.resize if draft else None)
        if self.resize < self.crop:  # torchvision pads: keep its exact steps
            from torchvision.transforms import InterpolationMode
            from torchvision.transforms import functional as TF

            img = TF.resize(img, self.resize, interpolation=InterpolationMode(self.interpolation), antialias=True)
            return TF.pil_to_tensor(TF.center_crop(img, [self.crop, self.crop]))
        width, height = img.size
        out_w, out_h, left, top = self.resize_plan(width, height)
        sx = width / out_w
        img = img.resize((self.crop, out_h), _RESAMPLE[self.interpolation],
                         box=(left * sx, 0, (left + self.crop) * sx, height))
        return torch.from_numpy(np.asarray(img)[top:top + self.crop].copy()).permute(2, 0, 1)

    def image_to_tensor(self, image: ImageLike) -> torch.Tensor:
        """One picture -> (3, crop, crop) float tensor: :meth:`to_uint8`, then :meth:`normalize`."""
        return self.normalize(self.to_uint8(image)[None])[0]

    def normalize(self, x: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
        """(N, 3, H, W) uint8 -> float32 ``(x / 255 - mean) / std`` on x's device."""
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # cheaper on uint8 than on float
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return x.float().div_(255.0).sub_(mean).div_(std)

    def __call__(self, images: ImageLike | Sequence[ImageLike]) -> torch.Tensor:
        """Picture or list of pictures -> (N, 3, crop, crop)."""
        if isinstance(images, (str, os.PathLike, Image.Image, np.ndarray)):
            images = [images]
        return torch.stack([self.image_to_tensor(im) for im in images])

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) or (3, H, W) normalised tensor -> values in [0, 1] for display."""
        mean = torch.tensor(self.mean, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(-1, 1, 1)
        return (x * std + mean).clamp(0, 1)


def check_batch(x: torch.Tensor, in_channels: int = 3) -> None:
    """Raise a clear error unless ``x`` is a float (N, C, H, W) batch with ``in_channels`` channels."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor (N, C, H, W); got {type(x).__name__}.")
    if x.ndim == 3:
        raise ValueError(
            f"expected a batch (N, C, H, W); got one image of shape {tuple(x.shape)}. "
            "Fix: x.unsqueeze(0)."
        )
    if x.ndim != 4:
        raise ValueError(f"expected a 4-D batch (N, C, H, W); got shape {tuple(x.shape)}.")
    if x.shape[1] != in_channels:
        if x.shape[-1] == in_channels:
            raise ValueError(
                f"input of shape {tuple(x.shape)} looks like (N, H, W, C) = channels-last, but the "
                f"model takes (N, C, H, W) with C={in_channels}. Fix: x.permute(0, 3, 1, 2)."
            )
        raise ValueError(
            f"the model takes {in_channels} input channels; got C={x.shape[1]} in shape "
            f"{tuple(x.shape)}. Grayscale or RGBA pictures: load them with fl.load_image, "
            "which converts to RGB."
        )
    if not torch.is_floating_point(x):
        raise ValueError(
            f"expected a float tensor; got {x.dtype}. Raw uint8 pixels must be preprocessed: "
            "use fl.preprocess(images, model)."
        )
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(
            f"the batch holds {bad} NaN or infinite value(s) (shape {tuple(x.shape)}); the model "
            "would turn them into NaN features without an error. Fix the source, or "
            "torch.nan_to_num(x)."
        )
