"""fl.widgets.search_explorer: the controls change the ranking; an uploaded picture becomes the query."""
import datetime
import io

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

import featlab as fl


@pytest.fixture(scope="module")
def lite0():
    return fl.load_model("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    d = tmp_path_factory.mktemp("gallery")
    for name in ["chelsea", "coffee", "astronaut", "rocket", "china", "flower"]:
        fl.load_image(name).save(d / f"{name}.jpg")
    return d


def test_controls_change_the_ranking_and_upload_sets_the_query(lite0, gallery):
    box = fl.widgets.search_explorer(lite0, gallery, layers=("block5", "head"), k=3)
    (query, layer), (how, k), upload, out = box.children[0].children, box.children[1].children, *box.children[2:]
    assert [f for f, _ in box.hits][0] != str(gallery / query.value)  # the query is not its own hit
    first = box.hits
    picture = box.picture                                # the static fallback: what it shows now
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and "image/png" in box._repr_mimebundle_()
    scores = [s for _, s in first]
    assert len(first) == 3 and scores == sorted(scores, reverse=True)
    layer.value = "block5"
    assert box.hits != first and box.picture != picture
    after_layer = box.hits
    how.value = "max"
    assert box.hits != after_layer
    k.value = 2
    assert len(box.hits) == 2
    # an uploaded cat: its best hit is the cat in the gallery, with the score fl.search gives
    buf = io.BytesIO()
    fl.load_image("chelsea").crop((50, 0, 350, 300)).save(buf, "PNG")
    upload.value = ({"name": "cat.png", "type": "image/png", "size": len(buf.getvalue()),
                     "content": memoryview(buf.getvalue()), "last_modified": datetime.datetime(2026, 1, 1)},)
    assert query.value == "uploaded: cat.png"
    assert box.hits[0][0].endswith("chelsea.jpg")
    files = sorted(str(p) for p in gallery.glob("*.jpg"))
    rows = fl.FeatureExtractor(lite0, "block5", "max").from_pictures(files)["block5"].numpy()
    q = fl.FeatureExtractor(lite0, "block5", "max").from_pictures([Image.open(buf).convert("RGB")])["block5"].numpy()
    s, i = fl.search(rows, q, k=2)
    assert [files[j] for j in i[0]] == [f for f, _ in box.hits]
    np.testing.assert_allclose(s[0], [v for _, v in box.hits], atol=1e-5)
    plt.close("all")
