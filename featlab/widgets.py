"""Interactive explorers (ipywidgets). Each returns a box of controls over one picture.

Where no kernel runs the widget (GitHub, nbviewer, the handouts of ``make handouts``), a stored
notebook shows the box's static fallback instead: the picture it showed when it was displayed
(``image/png``) and one line of text saying it is interactive.
Taught in ``notebooks/05_feature_maps.ipynb``.
"""
from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence

from torch import nn

from .extractor import FeatureExtractor
from .images import ImageLike

__all__ = ["feature_explorer", "grad_cam_explorer", "search_explorer"]

STATIC_NOTE = "interactive: run the notebook to use it"


@functools.cache
def _explorer_box():
    """The class of the explorers' boxes (ipywidgets is imported when an explorer is made)."""
    import ipywidgets as W

    class ExplorerBox(W.VBox):
        """A ``VBox`` whose display carries, besides the live widget, the picture it shows now
        (``image/png``) and a line of text for readers without a kernel. ``draw(fig)`` shows a
        matplotlib figure in the box and keeps it as that picture."""

        def __init__(self, children, title: str, out):
            super().__init__(children)
            self.title, self.out, self.picture = title, out, None

        def draw(self, fig) -> None:
            from IPython import get_ipython
            from IPython.display import Image, display

            buf = io.BytesIO()
            fig.savefig(buf, format="png", bbox_inches="tight")
            self.picture = buf.getvalue()
            if get_ipython() is None:            # plain Python (a script, a test): no Output area
                return
            with self.out:
                self.out.clear_output(wait=True)
                display(Image(data=self.picture))

        def _repr_mimebundle_(self, **kwargs):
            data = super()._repr_mimebundle_(**kwargs)
            data["text/plain"] = f"{self.title} ({STATIC_NOTE})"
            if self.picture is not None:
                data["image/png"] = base64.b64encode(self.picture).decode("ascii")
            return data

    return ExplorerBox


def feature_explorer(model: nn.Module, image: ImageLike, layers: Sequence[str]):
    """Pick a layer and a channel with sliders; see that channel's map next to the picture.

    Features of all ``layers`` are computed once, so moving the sliders is instant.
    """
    import ipywidgets as W
    from matplotlib.figure import Figure

    from .images import load_image

    extractor = FeatureExtractor(model, layers, pooling="none")
    feats = {k: v[0].float().cpu() for k, v in extractor.maps(extractor.prep([image]).to(extractor.device)).items()}
    picture = load_image(image)
    layer = W.Dropdown(options=list(layers), description="layer")
    channel = W.IntSlider(0, 0, feats[layers[0]].shape[0] - 1, description="channel")
    out = W.Output()
    box = _explorer_box()([W.HBox([layer, channel]), out], "feature explorer: pick a layer and a channel", out)

    def draw(*_):
        f = feats[layer.value]
        channel.max = f.shape[0] - 1
        fig = Figure(figsize=(6, 3))
        a, b = fig.subplots(1, 2)
        a.imshow(picture), a.axis("off"), a.set_title("input", fontsize=9)
        b.imshow(f[channel.value].numpy()), b.axis("off")
        b.set_title(f"{layer.value} ch {channel.value}  {tuple(f.shape[1:])}", fontsize=9)
        box.draw(fig)

    layer.observe(draw, "value")
    channel.observe(draw, "value")
    draw()
    return box


def grad_cam_explorer(model: nn.Module, image: ImageLike, layers: Sequence[str], topk: int = 10):
    """Pick one of the top-k classes and a layer; see the Grad-CAM overlay.

    Taught in ``notebooks/06_grad_cam.ipynb``.
    """
    import ipywidgets as W
    from matplotlib.figure import Figure

    from .cam import grad_cam
    from .models import imagenet_labels, predict, preprocess, preprocess_for
    from .plot import overlay

    labels = imagenet_labels()
    x = preprocess(image, model)
    options = [(f"{lab} ({p:.2f})", labels.index(lab)) for lab, p in predict(model, x, topk=topk)[0]]
    cls = W.Dropdown(options=options, description="class")
    lay = W.Dropdown(options=list(layers), value=list(layers)[-1], description="layer")
    out = W.Output()
    box = _explorer_box()([W.HBox([cls, lay]), out], "Grad-CAM explorer: pick a class and a layer", out)
    picture = preprocess_for(model).denormalize(x[0]).cpu()

    def draw(*_):
        heat = grad_cam(model, x, lay.value, target=cls.value)[0].cpu()
        fig = Figure(figsize=(2.6, 2.6))
        overlay(picture, heat, ax=fig.subplots(), title=f"{labels[cls.value]} @ {lay.value}")
        box.draw(fig)

    cls.observe(draw, "value")
    lay.observe(draw, "value")
    draw()
    return box


def search_explorer(model: nn.Module, pictures, queries=None, layers: Sequence[str] = ("block6", "head"),
                    poolings: Sequence[str] = ("avg", "max"), k: int = 4):
    """Search a gallery of pictures: pick a query (or upload one), a layer and a pooling; see
    the top-k hits with their cosine scores and, under each hit, its similarity map
    (:func:`featlab.similarity_map`), drawn as one picture.

    ``pictures``: a folder or a list of picture files (the gallery). ``queries``: ``{name:
    picture}`` offered in the dropdown (default: the gallery's files; a gallery picture is not
    its own hit). The returned box's ``hits`` lists the shown ``(file, score)``, best first.
    Gallery vectors of every layer and pooling are computed once (one pass);
    each redraw embeds the query once and maps the k hits. Taught in
    ``notebooks/16_search_your_photos.ipynb``.
    """
    from pathlib import Path

    import ipywidgets as W
    import torch
    from matplotlib.figure import Figure
    from PIL import Image

    from .embed import l2_normalize
    from .extractor import pool
    from .images import load_image
    from .similarity import similarity_map

    if isinstance(pictures, (str, Path)):
        folder = Path(pictures)
        if not folder.is_dir():
            raise ValueError(f"pictures must be a folder or a list of picture files; {folder} is not a folder.")
        pictures = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp", ".webp"))
    files = [str(p) for p in pictures]
    if not files:
        raise ValueError("the gallery is empty: give a folder with pictures or a list of files.")
    layers = list(layers)
    extractor = FeatureExtractor(model, layers, pooling="none")
    maps = {n: [] for n in layers}
    for start in range(0, len(files), 16):
        batch = extractor.prep(files[start:start + 16]).to(extractor.device)
        for n, f in extractor.maps(batch).items():
            maps[n].append(f.float().cpu())
    gallery = {(n, how): l2_normalize(pool(torch.cat(maps[n]), how)) for n in layers for how in poolings}
    options = dict(queries) if queries is not None else {Path(f).name: f for f in files}

    query = W.Dropdown(options=list(options), description="query")
    layer = W.Dropdown(options=layers, value=layers[-1], description="layer")
    how = W.Dropdown(options=list(poolings), description="pooling")
    hits = W.IntSlider(k, 1, min(8, len(files)), description="k")
    upload = W.FileUpload(accept="image/*", multiple=False, description="upload a query")
    out = W.Output()

    def draw(*_):
        q_pic = load_image(options[query.value])
        qv = l2_normalize(FeatureExtractor(model, layer.value, how.value).from_pictures([q_pic])[layer.value].cpu())[0]
        scores = gallery[(layer.value, how.value)] @ qv
        own = [i for i, f in enumerate(files) if options[query.value] == f]
        scores[own] = -2.0
        top = scores.argsort(descending=True)[:hits.value].tolist()
        n = len(top)
        box.hits = [(files[i], float(scores[i])) for i in top]
        fig = Figure(figsize=(1.9 * (n + 1), 3.9))
        axes = fig.subplots(2, n + 1, squeeze=False)
        axes[0, 0].imshow(q_pic), axes[0, 0].set_title("query", fontsize=8)
        axes[1, 0].text(0.5, 0.5, f"{layer.value}\n{how.value} pooling", ha="center", va="center", fontsize=8)
        for j, i in enumerate(top, start=1):
            pic = load_image(files[i])
            s = similarity_map(model, qv.numpy(), pic, layer=layer.value, pooling=how.value)
            axes[0, j].imshow(pic), axes[0, j].set_title(f"{Path(files[i]).name[:16]}\n{scores[i]:.3f}", fontsize=7)
            axes[1, j].imshow(pic), axes[1, j].imshow(s, cmap="jet", alpha=0.5, vmin=-1, vmax=1)
            axes[1, j].set_title("why: similarity map", fontsize=7)
        for a in axes.flat:
            a.axis("off")
        fig.tight_layout()
        box.draw(fig)

    def uploaded(change):
        files_up = change["new"]
        if not files_up:
            return
        item = files_up[0]
        name = f"uploaded: {item['name']}"
        options[name] = load_image(Image.open(io.BytesIO(bytes(item["content"]))))
        query.options = list(options)
        query.value = name  # redraws

    for control in (query, layer, how, hits):
        control.observe(draw, "value")
    upload.observe(uploaded, "value")
    box = _explorer_box()([W.HBox([query, layer]), W.HBox([how, hits]), upload, out],
                          "search explorer: pick or upload a query, a layer, a pooling, k", out)
    draw()
    return box
