"""Interactive explorers (ipywidgets). Each returns a widget; in a headless run it only prints.

Taught in ``notebooks/05_feature_maps.ipynb``.
"""
from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .extractor import FeatureExtractor
from .images import ImageLike

__all__ = ["feature_explorer", "grad_cam_explorer"]


def feature_explorer(model: nn.Module, image: ImageLike, layers: Sequence[str]):
    """Pick a layer and a channel with sliders; see that channel's map next to the picture.

    Features of all ``layers`` are computed once, so moving the sliders is instant.
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    from .images import load_image

    extractor = FeatureExtractor(model, layers, pooling="none")
    feats = {k: v[0].float().cpu() for k, v in extractor.maps(extractor.prep([image]).to(extractor.device)).items()}
    picture = load_image(image)
    layer = W.Dropdown(options=list(layers), description="layer")
    channel = W.IntSlider(0, 0, feats[layers[0]].shape[0] - 1, description="channel")
    out = W.Output()

    def draw(*_):
        f = feats[layer.value]
        channel.max = f.shape[0] - 1
        with out:
            out.clear_output(wait=True)
            fig, (a, b) = plt.subplots(1, 2, figsize=(6, 3))
            a.imshow(picture), a.axis("off"), a.set_title("input", fontsize=9)
            b.imshow(f[channel.value].numpy()), b.axis("off")
            b.set_title(f"{layer.value} ch {channel.value}  {tuple(f.shape[1:])}", fontsize=9)
            plt.show()

    layer.observe(draw, "value")
    channel.observe(draw, "value")
    draw()
    return W.VBox([W.HBox([layer, channel]), out])


def grad_cam_explorer(model: nn.Module, image: ImageLike, layers: Sequence[str], topk: int = 10):
    """Pick one of the top-k classes and a layer; see the Grad-CAM overlay.

    Taught in ``notebooks/06_grad_cam.ipynb``.
    """
    import ipywidgets as W
    import matplotlib.pyplot as plt

    from .cam import grad_cam
    from .models import imagenet_labels, predict, preprocess, preprocess_for
    from .plot import overlay

    labels = imagenet_labels()
    x = preprocess(image, model)
    options = [(f"{lab} ({p:.2f})", labels.index(lab)) for lab, p in predict(model, x, topk=topk)[0]]
    cls = W.Dropdown(options=options, description="class")
    lay = W.Dropdown(options=list(layers), value=list(layers)[-1], description="layer")
    out = W.Output()
    picture = preprocess_for(model).denormalize(x[0]).cpu()

    def draw(*_):
        heat = grad_cam(model, x, lay.value, target=cls.value)[0].cpu()
        with out:
            out.clear_output(wait=True)
            fig, ax = plt.subplots(figsize=(2.6, 2.6))
            overlay(picture, heat, ax=ax, title=f"{labels[cls.value]} @ {lay.value}")
            plt.show()

    cls.observe(draw, "value")
    lay.observe(draw, "value")
    draw()
    return W.VBox([W.HBox([cls, lay]), out])
