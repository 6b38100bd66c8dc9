"""Tests for featlab.visualize (activation maximisation, notebook 15)."""
import pytest
import torch
from torch import nn

from featlab.visualize import channel_activation, fourier_scale, maximize_activation

MS = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 6, 3, padding=1), nn.ReLU())


def test_objective_increases():
    model = small_model()
    for kw in [dict(param="pixel", decorrelate=False, transforms=False), dict()]:
        img, hist = maximize_activation(model, "2", 1, size=24, steps=30, **kw, **MS)
        assert img.shape == (3, 24, 24) and 0 <= img.min() and img.max() <= 1
        assert len(hist) == 30 and hist[-1] > hist[0] + 0.05
        # the returned picture's activation (no transforms) is what was optimised
        assert channel_activation(model, "2", 1, img[None], **MS).item() > hist[0]


def test_hooks_removed_and_model_untouched():
    model = small_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    maximize_activation(model, "2", 0, size=16, steps=3, **MS)
    for module in model.modules():
        assert not module._forward_hooks
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert model.training  # mode restored


def test_hooks_removed_after_error():
    model = small_model()
    with pytest.raises(ValueError, match="channel 6 does not exist"):
        maximize_activation(model, "2", 6, size=16, steps=3, **MS)
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


def test_bad_layer_and_channel():
    model = small_model()
    with pytest.raises(ValueError, match="unknown layer"):
        maximize_activation(model, "conv9", 0, size=16, steps=2, **MS)
    with pytest.raises(ValueError, match="has 6 channels"):
        maximize_activation(model, "2", -1, size=16, steps=2, **MS)
    with pytest.raises(TypeError):
        maximize_activation(model, "2", 1.5, size=16, steps=2, **MS)
    with pytest.raises(ValueError, match="param"):
        maximize_activation(model, "2", 0, size=16, steps=2, param="wavelet", **MS)
    with pytest.raises(ValueError, match="mean="):
        maximize_activation(model, "2", 0, size=16, steps=2)


def test_deterministic_for_a_seed():
    model = small_model()
    a, ha = maximize_activation(model, "2", 2, size=20, steps=5, seed=3, **MS)
    b, hb = maximize_activation(model, "2", 2, size=20, steps=5, seed=3, **MS)
    c, _ = maximize_activation(model, "2", 2, size=20, steps=5, seed=4, **MS)
    assert torch.equal(a, b) and ha == hb and not torch.equal(a, c)


def test_optimum_of_a_linear_filter_is_the_filter():
    """A channel that is one linear 5x5 filter over a 5x5 picture (no padding): its activation
    is <w, x>, so with a bounded picture the optimum is sign(w) — an independent check."""
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 2, 5, bias=False)
    model = nn.Sequential(conv)
    img, hist = maximize_activation(model, "0", 1, size=5, steps=200, lr=0.1, param="pixel",
                                    decorrelate=False, transforms=False, mean=(0, 0, 0), std=(1, 1, 1))
    w = conv.weight[1].detach()
    corr = torch.corrcoef(torch.stack([img.flatten() - 0.5, w.flatten()]))[0, 1]
    assert corr > 0.8
    assert torch.equal(img > 0.5, w > 0)  # every pixel goes to the bright side where w > 0
    assert hist[-1] > 0.9 * w.clamp_min(0).sum().item()  # near the bound sum(max(w, 0))


def test_fourier_scale_against_numpy():
    import numpy as np
    h, w = 6, 9
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    want = 1 / np.maximum(np.sqrt(fy ** 2 + fx ** 2), 1 / 9)
    got = fourier_scale(h, w)
    assert got.shape == (6, 5)
    assert np.allclose(got.numpy(), want)
