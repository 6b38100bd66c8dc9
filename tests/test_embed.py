"""featlab.embed against torch.nn.functional, scikit-learn and brute force."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics.pairwise import cosine_similarity as sk_cosine

import featlab as fl


@pytest.fixture
def maps():
    torch.manual_seed(0)
    return torch.randn(3, 5, 4, 6)


def test_pool_matches_functional(maps):
    assert torch.allclose(fl.pool(maps, "avg"), F.adaptive_avg_pool2d(maps, 1).flatten(1))
    assert torch.equal(fl.pool(maps, "max"), F.adaptive_max_pool2d(maps, 1).flatten(1))
    assert torch.equal(fl.pool(maps, "none"), maps.reshape(3, -1))
    v = torch.randn(3, 7)
    assert fl.pool(v, "avg") is v


def test_pool_rejects_bad_input(maps):
    with pytest.raises(ValueError, match=r"pooling \(how=\) must be one of"):
        fl.pool(maps, "mean")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        fl.pool(maps[0], "avg")


def test_l2_normalize_matches_functional(maps):
    v = maps.flatten(1)
    assert torch.allclose(fl.l2_normalize(v), F.normalize(v, dim=1))
    assert torch.equal(fl.l2_normalize(torch.zeros(2, 3)), torch.zeros(2, 3))


def test_embed_is_extract_pool_normalise(lite0):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 96, 96)
    layers = ["block3", "head", "avgpool"]
    got = fl.embed(lite0, x, layers)
    maps = fl.extract(lite0, x, layers)
    for name in layers:
        want = F.normalize(maps[name].flatten(2).mean(2) if maps[name].ndim == 4 else maps[name], dim=1)
        assert got[name].shape == want.shape
        assert torch.allclose(got[name], want, atol=1e-6), name
    raw = fl.embed(lite0, x, "head", pool="max", normalize=False)["head"]
    assert torch.allclose(raw, maps["head"].amax(dim=(2, 3)))
    # GAP of head is what the classifier's pooling computes
    assert torch.allclose(fl.embed(lite0, x, "head", normalize=False)["head"],
                          fl.embed(lite0, x, "avgpool", normalize=False)["avgpool"], atol=1e-5)
    with pytest.raises(ValueError, match="pool must be one of"):
        fl.embed(lite0, x, "head", pool="gem")


def test_fuse_concat_weights_the_per_layer_cosines():
    torch.manual_seed(2)
    e = {"a": torch.randn(6, 4) * 100, "b": torch.randn(6, 9) * 0.01, "c": torch.randn(6, 3)}
    w = {"a": 1.0, "b": 3.0, "c": 0.5}
    fused = fl.fuse(e, w)
    assert fused.shape == (6, 16)
    assert torch.allclose(fused.norm(dim=1), torch.ones(6))
    want = sum(w[k] * fl.cosine_similarity(e[k]) for k in e) / sum(w.values())
    assert torch.allclose(fl.cosine_similarity(fused), want, atol=1e-6)
    # without weights each layer counts once, whatever its scale
    eq = sum(fl.cosine_similarity(e[k]) for k in e) / 3
    assert torch.allclose(fl.cosine_similarity(fl.fuse(e)), eq, atol=1e-6)


def test_fuse_sum_and_errors():
    torch.manual_seed(3)
    e = {"a": torch.randn(4, 5), "b": torch.randn(4, 5)}
    got = fl.fuse(e, {"a": 2.0, "b": 1.0}, how="sum")
    want = F.normalize(2 * F.normalize(e["a"]) + F.normalize(e["b"]))
    assert torch.allclose(got, want, atol=1e-6)
    with pytest.raises(ValueError, match="how='concat'"):
        fl.fuse({"a": torch.randn(4, 5), "b": torch.randn(4, 6)}, how="sum")
    with pytest.raises(ValueError, match="weights must name exactly"):
        fl.fuse(e, {"a": 1.0})
    with pytest.raises(ValueError, match="not all zero"):
        fl.fuse(e, {"a": 0.0, "b": 0.0})
    with pytest.raises(ValueError, match="at least one"):
        fl.fuse({})


def test_cosine_similarity_matches_sklearn():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(5, 8)), rng.normal(size=(7, 8))
    got = fl.cosine_similarity(torch.tensor(a), torch.tensor(b)).numpy()
    assert np.allclose(got, sk_cosine(a, b), atol=1e-6)
    assert np.allclose(fl.cosine_similarity(torch.tensor(a)).numpy(), sk_cosine(a), atol=1e-6)
    with pytest.raises(ValueError, match="different length"):
        fl.cosine_similarity(torch.randn(2, 3), torch.randn(2, 4))


def test_recall_at_k_matches_brute_force():
    rng = np.random.default_rng(5)
    sim = torch.tensor(rng.normal(size=(20, 30)))
    q, g = rng.integers(0, 4, 20), rng.integers(0, 4, 30)
    for k in (1, 3, 30):
        hits = [q[i] in g[np.argsort(-sim[i].numpy())[:k]] for i in range(20)]
        assert fl.recall_at_k(sim, q, g, k) == pytest.approx(np.mean(hits))
    assert fl.recall_at_k(sim, q, g, 30) == pytest.approx(np.mean([qi in g for qi in q]))
    with pytest.raises(ValueError, match="between 1 and the gallery size"):
        fl.recall_at_k(sim, q, g, 0)
    with pytest.raises(ValueError, match="expected"):
        fl.recall_at_k(sim, q[:5], g, 1)
