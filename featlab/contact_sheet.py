"""Contact sheets of search results: each query, its k hits with their scores and similarity
maps, as one offline HTML file (PNGs embedded) or one PNG picture.

Used by ``featlab search F.h5 QUERY… -k 5 --html results.html`` (or ``--png results.png``);
taught in ``notebooks/16_search_your_photos.ipynb``.
"""
from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .images import load_image

__all__ = ["Hit", "Result", "results", "write_html", "write_png"]

THUMB = 160  # pixels, the long side of each picture on the sheet


@dataclass
class Hit:
    path: str                       # as stored in the feature file
    score: float                    # cosine, as fl.search_file gives it
    picture: Image.Image
    map: np.ndarray | None = None   # (H, W) similarity map over the whole picture


@dataclass
class Result:
    query: str
    picture: Image.Image
    hits: list[Hit] = field(default_factory=list)


def results(features: str | os.PathLike, queries, k: int = 5, layer: str | None = None,
            root: str | os.PathLike | None = None, maps: bool = True, backend: str = "torch") -> list[Result]:
    """Search ``features`` (a file of ``featlab extract``) for each query file, as ``featlab
    search`` does (:func:`featlab.query_features` + :func:`featlab.search_file`), and load each
    hit from ``root`` (the folder the file's paths are relative to; default: the folder the
    file records it was extracted from, :func:`featlab.store.recorded_folder`, or ``.`` for
    files that record none) with its similarity map (:func:`featlab.similarity_map`, the
    file's layer and pooling; none for ``pooling='none'``)."""
    from .models import load_model
    from .search import query_features, search_file
    from .settings import ExtractSettings
    from .similarity import similarity_map
    from .store import open_features, recorded_folder

    with open_features(features) as ff:
        layer, attrs = ff.layer(layer), ff.attrs
    if root is None:
        root = recorded_folder(features, attrs) or "."
    settings = ExtractSettings.from_file_attrs(attrs, str(features))
    q = query_features(features, queries, layer=layer)
    scores, _, paths = search_file(features, q, layer=layer, k=k, backend=backend)
    model = load_model(settings.model) if maps and settings.pooling in ("avg", "max") else None
    out = []
    for query, qv, row_s, row_p in zip(queries, q, scores, paths):
        res = Result(str(query), load_image(str(query)))
        for s, p in zip(row_s, row_p):
            file = Path(root) / p
            if not file.exists():
                raise ValueError(f"hit '{p}' is not under {Path(root).resolve()}; pass the folder that was "
                                 "extracted (--root FOLDER).")
            pic = load_image(str(file))
            m = similarity_map(model, qv.numpy(), pic, layer=layer, pooling=settings.pooling) if model else None
            res.hits.append(Hit(p, float(s), pic, m))
        out.append(res)
    return out


def _overlay(picture: Image.Image, smap: np.ndarray | None) -> Image.Image:
    """The picture, with the map (cosine -1..1) blended over it in the 'jet' colours."""
    pic = picture.convert("RGB")
    if smap is not None:
        from matplotlib import colormaps

        colours = (colormaps["jet"]((np.clip(smap, -1, 1) + 1) / 2)[..., :3] * 255).astype(np.uint8)
        pic = Image.blend(pic, Image.fromarray(colours).resize(pic.size), 0.45)
    pic.thumbnail((THUMB, THUMB))
    return pic


def _png(picture: Image.Image) -> str:
    buf = io.BytesIO()
    picture.save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def write_html(res: list[Result], path: str | os.PathLike, title: str = "featlab search") -> Path:
    """One self-contained HTML file (every picture an embedded PNG): per query a row of its
    picture and its hits, each ``<figure class="hit" data-rank data-score data-path>`` with the
    score printed under it."""
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>"
             "body{font-family:sans-serif} .query{display:flex;gap:8px;margin:12px 0} "
             "figure{margin:0;text-align:center;font-size:12px} .q img{outline:3px solid #444}"
             "</style></head><body>", f"<h1>{esc(title)}</h1>",
             "<p>Each hit shows its similarity map: red where it resembles the query most (cosine, -1..1).</p>"]
    for r in res:
        parts.append(f"<section class='query' data-query='{esc(r.query)}'>")
        parts.append(f"<figure class='q'><img src='data:image/png;base64,{_png(_overlay(r.picture, None))}' "
                     f"alt='query'><figcaption>query<br>{esc(Path(r.query).name)}</figcaption></figure>")
        for rank, h in enumerate(r.hits, 1):
            parts.append(f"<figure class='hit' data-rank='{rank}' data-score='{h.score!r}' data-path='{esc(h.path)}'>"
                         f"<img src='data:image/png;base64,{_png(_overlay(h.picture, h.map))}' alt='{esc(h.path)}'>"
                         f"<figcaption>{rank}. {esc(h.path)}<br><span class='score'>{h.score:.4f}</span>"
                         "</figcaption></figure>")
        parts.append("</section>")
    parts.append("</body></html>")
    out = Path(path)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out


def write_png(res: list[Result], path: str | os.PathLike) -> Path:
    """One PNG: a row per query (the query, then its hits with rank, score and similarity map)."""
    import matplotlib

    matplotlib.use("agg", force=False)
    import matplotlib.pyplot as plt

    cols = 1 + max(len(r.hits) for r in res)
    fig, axes = plt.subplots(len(res), cols, figsize=(2.0 * cols, 2.2 * len(res)), squeeze=False)
    for row, r in zip(axes, res):
        row[0].imshow(_overlay(r.picture, None)), row[0].set_title(f"query\n{Path(r.query).name[:24]}", fontsize=7)
        for rank, (a, h) in enumerate(zip(row[1:], r.hits), 1):
            a.imshow(_overlay(h.picture, h.map)), a.set_title(f"{rank}. {h.path[:20]}\n{h.score:.4f}", fontsize=7)
    for a in axes.flat:
        a.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)
