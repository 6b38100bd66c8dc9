"""Checks for ``exercises/16_*.ipynb`` (search your photos; notebook ``notebooks/16_*``)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..i18n import _
from ._common import ExerciseError, _call, _close, _ok, _same, _scalar, _tensor, learner_check

__all__ = ["check_similarity_map", "check_search_recall", "check_contact_sheet"]


# --- 1. the similarity map ---------------------------------------------------------------------

def _map_reference(q: torch.Tensor, fmap: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    s = F.cosine_similarity(fmap, q[:, None, None], dim=0)                       # (h, w)
    return F.interpolate(s[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


@learner_check
def check_similarity_map(similarity_map) -> None:
    """``similarity_map(q, fmap, size)``: q (C,), fmap (C, h, w), size (H, W) -> (H, W) cosines
    of q with every position of fmap, upsampled bilinearly (align_corners=False)."""
    torch.manual_seed(160)
    q = torch.randn(6) * 3.0
    fmap = torch.randn(6, 3, 4) * torch.linspace(0.2, 5.0, 12).view(1, 3, 4)   # positions of very different lengths
    size = (9, 14)
    want = _map_reference(q, fmap, size)
    got = _tensor(similarity_map(q.clone(), fmap.clone(), size), "similarity_map(q, fmap, (9, 14))")
    got = got.detach().cpu().float()
    if tuple(got.shape) == (14, 9):
        raise ExerciseError(_("the map has shape (W, H) = (14, 9); expected (H, W) = (9, 14): size is (height, "
                              "width), as F.interpolate's size=."))
    if tuple(got.shape) == (3, 4):
        raise ExerciseError(_("the map is still (h, w) = (3, 4), the feature map's size: upsample it to size "
                              "with F.interpolate(..., mode='bilinear', align_corners=False)."))
    if tuple(got.shape) != size:
        raise ExerciseError(_("the map has shape {got_shape}; expected (H, W) = {size}: one value per pixel of "
                              "the picture.").format(got_shape=tuple(got.shape), size=size))
    dot = torch.einsum("c,chw->hw", q, fmap)
    up = lambda s, **kw: F.interpolate(s[None, None], size=size, **kw)[0, 0]  # noqa: E731
    if _same(got, up(dot, mode="bilinear", align_corners=False)):
        raise ExerciseError(_("these are dot products, not cosines: divide by |q| and by the length of the "
                              "vector at each position (its norm over the channels, dim=0)."))
    if _same(got, up(dot / fmap.norm(dim=0), mode="bilinear", align_corners=False)):
        raise ExerciseError(_("the query is not normalised: divide q by its length too."))
    if _same(got, up(dot / q.norm(), mode="bilinear", align_corners=False)):
        raise ExerciseError(_("the positions' vectors are not normalised: divide each by its length over the "
                              "channels, fmap.norm(dim=0)."))
    per_channel = fmap / fmap.flatten(1).norm(dim=1).view(-1, 1, 1)
    if _same(got, up(torch.einsum("c,chw->hw", q / q.norm(), per_channel), mode="bilinear", align_corners=False)):
        raise ExerciseError(_("each channel was normalised over the positions; normalise each position's "
                              "vector over the channels (dim=0) instead."))
    cos = F.cosine_similarity(fmap, q[:, None, None], dim=0)
    if _same(got, up(cos, mode="nearest")):
        raise ExerciseError(_("nearest-neighbour upsampling: use mode='bilinear' (and align_corners=False)."))
    if _same(got, up(cos, mode="bilinear", align_corners=True)):
        raise ExerciseError(_("align_corners=True: featlab and the notebook use align_corners=False (pixel "
                              "centres, as torchvision resizes pictures)."))
    if got.abs().max() > 1 + 1e-4:
        raise ExerciseError(_("a value of {got:.3g} is outside [-1, 1]: a cosine never is.").format(
                              got=got.abs().max().item()))
    _close(got, want, "similarity_map(q, fmap, size)", atol=1e-5)
    _ok(_("similarity_map: cosine per position, upsampled bilinearly to (H, W)"))


# --- 2. recall@k from search results -------------------------------------------------------------

@learner_check
def check_search_recall(search_recall) -> None:
    """``search_recall(indices, right, k)``: indices (Q, K) hits best first (as fl.search returns),
    right (Q,) the right row of each query -> share of queries whose right row is in the first k."""
    rng = np.random.default_rng(16)
    q_count, big_k = 40, 6
    indices = np.stack([rng.permutation(30)[:big_k] for __ in range(q_count)])
    right = np.where(rng.random(q_count) < 0.7, indices[np.arange(q_count), rng.integers(0, big_k, q_count)],
                     rng.integers(30, 40, q_count))                     # some right rows never found
    for k in (1, 3, 5):
        want = float(np.mean([right[i] in indices[i, :k] for i in range(q_count)]))
        out = search_recall(indices.copy(), right.copy(), k)
        if isinstance(out, (np.ndarray, torch.Tensor)) and np.size(out) == q_count:
            raise ExerciseError(_("search_recall(indices, right, {k}) returned one value per query; return "
                                  "their mean, the share of queries with a hit (a single number).").format(k=k))
        got = _scalar(out, f"search_recall(indices, right, {k})", many_hint=_("Average over the queries."))
        wrong = {
            float(np.mean([right[i] in indices[i] for i in range(q_count)])): _("all K columns were used, not the first "
                                                                                "k: indices[:, :k]."),
            float(np.mean([right[i] in indices[i, :k + 1] for i in range(q_count)])): _("off by one: this is recall@(k + 1); "
                                                                                        "take indices[:, :k]."),
            float(np.mean([right[i] in indices[i, :k - 1] for i in range(q_count)])) if k > 1 else -1.0:
                _("off by one: this is recall@(k - 1); take indices[:, :k]."),
            float(np.mean(indices[:, k - 1] == right)): _("only the k-th column was compared: a hit anywhere "
                                                          "in the first k counts."),
            float(np.sum([right[i] in indices[i, :k] for i in range(q_count)])): _("this is the number of queries with a "
                                                                                   "hit; divide by the number of queries."),
        }
        for value, hint in wrong.items():
            if value != want and abs(got - value) < 1e-9:
                raise ExerciseError(_("search_recall(indices, right, {k}) = {got:.4g}, expected {want:.4g}: "
                                      "{hint}").format(k=k, got=got, want=want, hint=hint))
        if abs(got - want) > 1e-9:
            raise ExerciseError(_("search_recall(indices, right, {k}) = {got:.4g}; expected {want:.4g}, the "
                                  "share of queries whose right row is among indices[:, :{k}].").format(
                                          k=k, got=got, want=want))
    _ok(_("search_recall: share of queries with their right row in the first k hits"))


# --- 3. the contact sheet ------------------------------------------------------------------------

def _sheet_reference(thumbs: list[np.ndarray], cols: int, fill: int = 255, by_rows: bool = True) -> np.ndarray:
    h, w, __ = thumbs[0].shape
    rows = -(-len(thumbs) // cols)
    sheet = np.full((rows * h, cols * w, 3), fill, np.uint8)
    for n, t in enumerate(thumbs):
        r, c = divmod(n, cols) if by_rows else (n % rows, n // rows)
        sheet[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    return sheet


@learner_check
def check_contact_sheet(contact_sheet) -> None:
    """``contact_sheet(thumbs, cols)``: a list of (h, w, 3) uint8 pictures -> one (rows·h, cols·w, 3)
    uint8 sheet, laid out row by row, the empty cells of the last row white (255)."""
    rng = np.random.default_rng(61)
    thumbs = [rng.integers(0, 200, (5, 7, 3), dtype=np.uint8) for __ in range(7)]
    cols, rows, h, w = 4, 2, 5, 7
    want = _sheet_reference(thumbs, cols)
    # named by hand: the default description of a list of arrays would print every pixel
    out = _call(getattr(contact_sheet, "fn", contact_sheet), f"{getattr(contact_sheet, '__name__', 'contact_sheet')}"
                f"(thumbs=[7 arrays of (5, 7, 3)], cols={cols})", [t.copy() for t in thumbs], cols)
    try:
        got = np.asarray(out.detach().cpu() if isinstance(out, torch.Tensor) else out)
    except (ValueError, TypeError):
        got = np.zeros(0)
    if got.dtype == object or got.ndim != 3:
        raise ExerciseError(_("contact_sheet(thumbs, {cols}) returned {type_name} of shape {got_shape}; "
                              "expected one (rows·h, cols·w, 3) uint8 array.").format(
                                      cols=cols, type_name=type(out).__name__, got_shape=got.shape))
    if got.shape == (cols * h, rows * w, 3):
        raise ExerciseError(_("rows and columns are swapped: cols is the number of pictures across."))
    if got.shape == ((rows - 1) * h, cols * w, 3):
        raise ExerciseError(_("the sheet has {rows} row for 7 pictures in {cols} columns: the last, "
                              "part-filled row is missing: rows = ceil(n / cols) = -(-n // cols).").format(
                                      rows=rows - 1, cols=cols))
    if got.shape != want.shape:
        raise ExerciseError(_("the sheet has shape {got_shape}; expected {want_shape} = (rows·h, cols·w, 3) "
                              "for 7 pictures of (5, 7, 3) in {cols} columns.").format(
                                      got_shape=got.shape, want_shape=want.shape, cols=cols))
    if got.dtype != np.uint8:
        raise ExerciseError(_("the sheet is {dtype}; expected uint8 like the pictures (0..255).").format(
                              dtype=got.dtype))
    if np.array_equal(got, _sheet_reference(thumbs, cols, by_rows=False)):
        raise ExerciseError(_("the pictures run down the columns: lay them out row by row (picture n at row n "
                              "// cols, column n % cols)."))
    if np.array_equal(got, _sheet_reference(thumbs, cols, fill=0)):
        raise ExerciseError(_("the empty cells are black: fill the sheet with 255 (white) first."))
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)[0]
        raise ExerciseError(_("the sheet differs from the expected one first at (row, col) = ({row}, {col}): "
                              "picture n goes to rows (n // cols)·h..+h, columns (n % cols)·w..+w.").format(
                                      row=bad[0], col=bad[1]))
    _ok(_("contact_sheet: pictures row by row, empty cells white"))
