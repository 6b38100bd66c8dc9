"""`featlab search … --html/--png`: the contact sheet holds k hits per query with fl.search_file's scores."""
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

import featlab as fl
from featlab.cli import main


class Sheet(HTMLParser):
    """Queries (data-query) and, for each, its hits (rank, score, path, whether the img is embedded)."""

    def __init__(self):
        super().__init__()
        self.queries, self.external = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.queries.append((a["data-query"], []))
        elif tag == "figure" and a.get("class") == "hit":
            self.queries[-1][1].append((int(a["data-rank"]), float(a["data-score"]), a["data-path"]))
        elif tag == "img" and not a["src"].startswith("data:image/png;base64,"):
            self.external.append(a["src"])


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    d = tmp_path_factory.mktemp("sheet")
    folder = d / "photos"
    folder.mkdir()
    for name in ["chelsea", "coffee", "astronaut", "rocket", "china", "flower"]:
        fl.load_image(name).save(folder / f"{name}.jpg")
    q1, q2 = d / "cat.png", d / "cup.png"
    fl.load_image("chelsea").crop((40, 0, 340, 300)).save(q1)
    fl.load_image("coffee").crop((100, 0, 500, 400)).save(q2)
    out = d / "f.h5"
    assert main(["extract", str(folder), "--out", str(out), "--layers", "head", "--no-progress"]) == 0
    return d, folder, out, [str(q1), str(q2)]


def test_html_sheet_has_k_hits_per_query_with_search_file_scores(indexed, capsys):
    d, folder, out, queries = indexed
    html, png = d / "results.html", d / "results.png"
    assert main(["search", str(out), *queries, "-k", "3", "--html", str(html), "--png", str(png),
                 "--root", str(folder)]) == 0
    sheet = Sheet()
    sheet.feed(html.read_text())
    scores, _, paths = fl.search_file(out, fl.query_features(out, queries), k=3)
    assert [q for q, _ in sheet.queries] == queries
    for (_, hits), row_s, row_p in zip(sheet.queries, scores, paths):
        assert [r for r, _, _ in hits] == [1, 2, 3]
        assert [p for _, _, p in hits] == row_p
        np.testing.assert_array_equal([s for _, s, _ in hits], row_s.astype(np.float64))
    assert sheet.external == []                               # offline: every picture embedded
    assert paths[0][0] == "chelsea.jpg" and paths[1][0] == "coffee.jpg"
    assert Image.open(png).size[0] > 400
    capsys.readouterr()


def test_a_wrong_root_is_a_one_line_error(indexed, tmp_path, capsys):
    _, _, out, queries = indexed
    assert main(["search", str(out), queries[0], "--html", str(tmp_path / "r.html"), "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--root FOLDER" in err and "\n" not in err


def test_the_sheet_maps_are_similarity_maps(indexed):
    _, folder, out, queries = indexed
    (res,) = fl.contact_sheet.results(out, queries[:1], k=1, root=folder)
    model = fl.load_model("efficientnet_lite0")
    want = fl.similarity_map(model, fl.query_features(out, queries[:1])[0].numpy(), res.hits[0].picture)
    np.testing.assert_allclose(res.hits[0].map, want, atol=1e-6)


def test_the_file_records_its_folder_so_search_needs_no_root(indexed, tmp_path, monkeypatch, capsys):
    d, folder, out, queries = indexed
    assert fl.store.recorded_folder(out) == str(folder.resolve())
    monkeypatch.chdir(tmp_path)  # elsewhere: the paths are not relative to the working folder
    html = tmp_path / "noroot.html"
    assert main(["search", str(out), *queries, "-k", "2", "--html", str(html)]) == 0
    sheet = Sheet()
    sheet.feed(html.read_text())
    assert [p for _, _, p in sheet.queries[0][1]][0] == "chelsea.jpg"
    capsys.readouterr()


def test_a_moved_folder_is_a_one_line_error_and_root_overrides_it(indexed, tmp_path, capsys):
    _, folder, _, queries = indexed
    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("chelsea.jpg", "coffee.jpg"):
        (pics / name).write_bytes((folder / name).read_bytes())
    out = tmp_path / "m.h5"
    assert main(["extract", str(pics), "--out", str(out), "--layers", "head", "--no-progress"]) == 0
    moved = pics.rename(tmp_path / "moved")
    capsys.readouterr()
    assert main(["search", str(out), queries[0], "-k", "1", "--html", str(tmp_path / "a.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(pics) in err and "no longer exists" in err and "--root FOLDER" in err
    assert main(["search", str(out), queries[0], "-k", "1", "--html", str(tmp_path / "b.html"),
                 "--root", str(moved)]) == 0
    capsys.readouterr()
