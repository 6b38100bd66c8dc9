"""Similarity maps: where in a picture does it resemble the query? ("why this match")

Taught in ``notebooks/16_search_your_photos.ipynb``.

A search compares one pooled vector per picture. To see *why* a picture matched, compare the
query's pooled vector ``q`` (C,) with the feature vector ``f[:, i, j]`` (C,) at every position
of the hit's feature map (C, h, w): the cosine

    S[i, j] = q · f[:, i, j] / (|q| |f[:, i, j]|)

is high where that part of the picture looks like the query as a whole. The (h, w) map is
upsampled (bilinear) to the picture's size. Like CAM (notebook 04) it weighs the channels of
one layer's map by a vector — here the query's, not a class's weights; unlike Grad-CAM
(notebook 06) it needs no gradient.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .extractor import FeatureExtractor
from .images import ImageLike, Preprocess, load_image

__all__ = ["similarity_map", "whole_picture"]

_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
             "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS}


def whole_picture(prep: Preprocess, picture: ImageLike) -> torch.Tensor:
    """The WHOLE picture (no crop) as a normalised (1, 3, h, w) tensor: its short side resized
    to ``prep.resize`` (the scale the stored centre crops were taken at), aspect ratio kept,
    normalised with the model's mean and std."""
    img = load_image(picture)
    width, height = img.size
    scale = prep.resize / min(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    img = img.resize(size, _RESAMPLE[prep.interpolation])
    x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)[None]
    return prep.normalize(x)


def similarity_map(model: nn.Module, query, picture: ImageLike, layer: str = "head",
                   pooling: str = "avg", preprocess: Preprocess | None = None) -> np.ndarray:
    """(H, W) float32 map over the whole ``picture`` (H, W = its height and width in pixels):
    the cosine between the query's pooled vector and the feature vector at each position of
    ``layer``'s map, upsampled bilinearly. Values in [-1, 1].

    ``query``: a picture, pooled exactly as stored rows are (the model's preprocessing with
    its centre crop, ``layer``, ``pooling``: ``avg`` or ``max``), or its (C,) vector already
    (e.g. a row of a feature file with that layer and pooling). ``picture``: resized as a
    whole, no crop (:func:`whole_picture`). ``preprocess``: for a model not from
    ``fl.load_model``. Taught in ``notebooks/16_search_your_photos.ipynb``.
    """
    if pooling not in ("avg", "max"):
        raise ValueError(f"pooling must be 'avg' or 'max' for a similarity map (one vector per position); "
                         f"got {pooling!r}. Fix: pooling='avg'.")
    extractor = FeatureExtractor(model, layer, pooling, preprocess=preprocess)
    name = extractor.layers[0]
    if isinstance(query, (np.ndarray, torch.Tensor)) and np.ndim(query) == 1:
        q = torch.as_tensor(np.asarray(query, dtype=np.float32))
    else:
        q = extractor.from_pictures([query])[name][0].float().cpu()
    picture = load_image(picture)
    x = whole_picture(extractor.prep, picture).to(extractor.device)
    f = extractor.maps(x)[name].float().cpu()                            # (1, C, h, w)
    if f.ndim != 4:
        raise ValueError(f"layer {layer!r} gives a vector {tuple(f.shape)}, not a map; pick a "
                         "convolutional layer (e.g. 'head', 'block6').")
    if q.shape[0] != f.shape[1]:
        raise ValueError(f"the query vector has {q.shape[0]} values but layer {layer!r} has "
                         f"{f.shape[1]} channels; use the query's own layer and pooling.")
    q = q / q.norm().clamp_min(1e-12)
    f = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
    s = torch.einsum("c,nchw->nhw", q, f)[:, None]                     # (1, 1, h, w)
    width, height = picture.size
    s = F.interpolate(s, size=(height, width), mode="bilinear", align_corners=False)
    return s[0, 0].numpy().astype(np.float32)
