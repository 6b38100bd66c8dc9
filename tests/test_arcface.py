"""fl.ArcFace: values by hand, the fallback, and the loss against pytorch-metric-learning."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import ArcFaceLoss

import featlab as fl


def unit(theta: float) -> torch.Tensor:
    return torch.tensor([[math.cos(theta), math.sin(theta)]], dtype=torch.float64)


def head(s=64.0, m=0.5, **kw) -> fl.ArcFace:
    h = fl.ArcFace(2, 3, s=s, m=m, **kw).double()
    h.weight.data = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    return h


@pytest.mark.parametrize("cos, want", [(1.0, 56.165), (0.5, 1.510), (0.0, -30.683)])
def test_target_logit_by_hand(cos, want):
    logits = head()(unit(math.acos(cos)), torch.tensor([0]))
    assert logits[0, 0].item() == pytest.approx(want, abs=5e-4)


def test_other_classes_and_inference_get_plain_scaled_cosine():
    h = head(s=10.0)
    e = unit(0.3)
    plain = 10.0 * F.normalize(e) @ F.normalize(h.weight).T
    assert torch.allclose(h(e), plain)
    with_label = h(e, torch.tensor([1]))
    assert torch.allclose(with_label[0, [0, 2]], plain[0, [0, 2]])
    assert with_label[0, 1] < plain[0, 1]                          # margin only on the target


def test_fallback_past_pi_keeps_the_logit_decreasing():
    h = head(s=1.0, m=0.5)
    thetas = torch.linspace(0, math.pi, 721, dtype=torch.float64)
    e = torch.stack([thetas.cos(), thetas.sin()], dim=1)
    target = h(e, torch.zeros(len(thetas), dtype=torch.long))[:, 0]
    assert (target.diff() <= 1e-12).all()                          # monotone with the fallback
    assert (torch.cos(thetas + 0.5).diff() > 0).any()              # plain cos(θ+m) rises again
    past = thetas + 0.5 > math.pi
    assert torch.allclose(target[past], thetas[past].cos() - 0.5 * math.sin(0.5))
    assert torch.allclose(target[~past], torch.cos(thetas[~past] + 0.5))


def test_easy_margin_only_where_cos_positive():
    h = head(s=1.0, m=0.5, easy_margin=True)
    assert h(unit(2.0), torch.tensor([0]))[0, 0].item() == pytest.approx(math.cos(2.0))
    assert h(unit(0.4), torch.tensor([0]))[0, 0].item() == pytest.approx(math.cos(0.9))


def test_weight_is_shaped_like_linear_and_scale_free():
    h = fl.ArcFace(16, 5)
    assert h.weight.shape == nn_linear_weight_shape(16, 5)
    torch.manual_seed(0)
    e, y = torch.randn(8, 16), torch.randint(0, 5, (8,))
    assert torch.allclose(h(e, y), h(e * 7.5, y), atol=1e-4)      # only angles matter


def nn_linear_weight_shape(i, o):
    return torch.nn.Linear(i, o).weight.shape


@pytest.mark.parametrize("s, m", [(64.0, 0.5), (30.0, 0.35), (16.0, 0.2)])
def test_loss_matches_pytorch_metric_learning(s, m):
    torch.manual_seed(1)
    n, d, c = 64, 12, 7
    e, y = torch.randn(n, d, dtype=torch.float64), torch.randint(0, c, (n,))
    ours = fl.ArcFace(d, c, s=s, m=m).double()
    ref = ArcFaceLoss(num_classes=c, embedding_size=d, margin=math.degrees(m), scale=s).double()
    ref.W.data = ours.weight.data.T.clone()                        # PML stores W as (D, C)
    with torch.no_grad():                                          # 8 targets nearly opposite
        e[:8] = -ours.weight[y[:8]] + 0.01 * torch.randn(8, d, dtype=torch.float64)
    want = ref(e, y)
    got = F.cross_entropy(ours(e, y), y)
    assert got.item() == pytest.approx(want.item(), rel=1e-9)
    cos_y = ours.cosine(e)[torch.arange(n), y]                    # both branches are compared
    assert (cos_y < math.cos(math.pi - m)).sum() >= 8 and (cos_y > 0).any()
    got.backward()
    want.backward()
    assert torch.allclose(ours.weight.grad, ref.W.grad.T, atol=1e-9)


def test_gradients_are_finite_at_the_extremes():
    h = head(s=64.0)
    e = torch.cat([unit(0.0), unit(math.pi), unit(math.pi / 2)]).requires_grad_(True)
    F.cross_entropy(h(e, torch.tensor([0, 0, 0])), torch.tensor([0, 0, 0])).backward()
    assert torch.isfinite(e.grad).all() and torch.isfinite(h.weight.grad).all()


def test_bad_input_is_named():
    h = fl.ArcFace(4, 3)
    with pytest.raises(ValueError, match=r"embeddings must be \(N, 4\)"):
        h(torch.randn(2, 5))
    with pytest.raises(ValueError, match="labels must lie in 0 … 2"):
        h(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="one class per embedding"):
        h(torch.randn(2, 4), torch.tensor([0]))
    with pytest.raises(ValueError, match="radians"):
        fl.ArcFace(4, 3, m=28.6)
    assert "s=64.0" in repr(h) and np.isclose(h.m, 0.5)
