"""The checks of exercise 16 pass the solution and fail the skeleton and plausible wrong answers."""
import numpy as np
import torch
import torch.nn.functional as F

from featlab.checks import check_contact_sheet, check_search_recall, check_similarity_map
from helpers import SKELETON, fails


# --- the solutions, as written in the master exercises/src/16_search_your_photos.py -----------

from solutions import solution  # noqa: E402

similarity_map = solution(16).similarity_map
search_recall = solution(16).search_recall
contact_sheet = solution(16).contact_sheet


def test_solutions_pass(capsys):
    check_similarity_map(similarity_map)
    check_search_recall(search_recall)
    check_contact_sheet(contact_sheet)
    assert capsys.readouterr().out.count("✓") == 3


def test_other_right_answers_pass(capsys):
    check_similarity_map(lambda q, f, size: F.interpolate(
        F.cosine_similarity(f, q[:, None, None], dim=0)[None, None], size=size, mode="bilinear")[0, 0].double())
    check_search_recall(lambda i, r, k: np.mean([r[n] in i[n, :k] for n in range(len(r))]))
    check_contact_sheet(lambda t, c: torch.from_numpy(contact_sheet(t, c)))
    assert capsys.readouterr().out.count("✓") == 3


def test_skeleton_fails():
    for check in (check_similarity_map, check_search_recall, check_contact_sheet):
        fails(check, SKELETON)


def _up(s, size, **kw):
    return F.interpolate(s[None, None], size=size, **kw)[0, 0]


def test_similarity_map_mistakes():
    fails(check_similarity_map, lambda q, f, size: _up(torch.einsum("c,chw->hw", q, f), size, mode="bilinear"),
          "dot products, not cosines")
    fails(check_similarity_map, lambda q, f, size: _up(torch.einsum("c,chw->hw", q, f / f.norm(dim=0)), size,
                                                       mode="bilinear"), "query is not normalised")
    fails(check_similarity_map, lambda q, f, size: similarity_map(q, f, size).T, "(W, H)")
    fails(check_similarity_map, lambda q, f, size: F.cosine_similarity(f, q[:, None, None], dim=0), "still (h, w)")
    fails(check_similarity_map, lambda q, f, size: _up(F.cosine_similarity(f, q[:, None, None], dim=0), size,
                                                       mode="nearest"), "nearest")
    fails(check_similarity_map, lambda q, f, size: _up(F.cosine_similarity(f, q[:, None, None], dim=0), size,
                                                       mode="bilinear", align_corners=True), "align_corners=True")
    fails(check_similarity_map, lambda q, f, size: _up(torch.einsum(
        "c,chw->hw", q / q.norm(), f / f.flatten(1).norm(dim=1).view(-1, 1, 1)), size, mode="bilinear"),
        "each channel was normalised")


def test_search_recall_mistakes():
    fails(check_search_recall, lambda i, r, k: float((i == r[:, None]).any(1).mean()), "all K columns")
    fails(check_search_recall, lambda i, r, k: float((i[:, :k + 1] == r[:, None]).any(1).mean()), "recall@(k + 1)")
    fails(check_search_recall, lambda i, r, k: float((i[:, :max(k - 1, 1)] == r[:, None]).any(1).mean()),
          "recall@(k - 1)")
    fails(check_search_recall, lambda i, r, k: float((i[:, k - 1] == r).mean()), "only the k-th column")
    fails(check_search_recall, lambda i, r, k: float((i[:, :k] == r[:, None]).any(1).sum()), "number of queries")
    fails(check_search_recall, lambda i, r, k: (i[:, :k] == r[:, None]).any(1), "one value per query")


def test_contact_sheet_mistakes():
    def by_columns(t, c):
        h, w, _ = t[0].shape
        rows = -(-len(t) // c)
        sheet = np.full((rows * h, c * w, 3), 255, np.uint8)
        for n, x in enumerate(t):
            sheet[(n % rows) * h:(n % rows + 1) * h, (n // rows) * w:(n // rows + 1) * w] = x
        return sheet

    def black(t, c):
        h, w, _ = t[0].shape
        sheet = np.zeros((-(-len(t) // c) * h, c * w, 3), np.uint8)
        for n, x in enumerate(t):
            sheet[n // c * h:(n // c + 1) * h, n % c * w:(n % c + 1) * w] = x
        return sheet

    def floor_rows(t, c):
        return contact_sheet(t[:len(t) // c * c], c)

    def swapped(t, c):
        rows = -(-len(t) // c)
        return contact_sheet(t, rows)

    def float_sheet(t, c):
        return contact_sheet(t, c).astype(np.float32)

    fails(check_contact_sheet, by_columns, "down the columns")
    fails(check_contact_sheet, black, "black")
    fails(check_contact_sheet, floor_rows, "part-filled row is missing")
    fails(check_contact_sheet, swapped, "swapped")
    fails(check_contact_sheet, float_sheet, "uint8")
