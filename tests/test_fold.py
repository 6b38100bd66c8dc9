"""featlab.fold: batch norms folded into the convolutions before them give the plain model's
outputs (the reference is the unfolded model's own forward pass), only where that is exact."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torchvision.models import resnet18

import featlab as fl
from featlab.fold import conv_bn_pairs, fold_batchnorm


def hooked(model, paths, x):
    """Outputs of the modules at ``paths`` in one plain forward pass of ``model``."""
    kept = {}
    handles = [dict(model.named_modules())[p].register_forward_hook(
        lambda m, i, o, p=p: kept.update({p: o.clone()})) for p in paths]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return out, kept


def test_lite0_folded_equals_the_plain_model(lite0):
    x = fl.preprocess(["chelsea", "rocket", "coffee"], lite0)
    ref, kept = hooked(lite0, ["bn2", "blocks.3"], x)
    folded = copy.deepcopy(lite0)
    assert fold_batchnorm(folded) == sum(isinstance(m, nn.BatchNorm2d) for m in lite0.modules()) == 49
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    got, got_kept = hooked(folded, ["bn2", "blocks.3"], x)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    for p in kept:
        torch.testing.assert_close(got_kept[p], kept[p], rtol=1e-4, atol=1e-4, msg=p)


def test_the_extractor_runs_a_folded_copy_with_the_plain_models_features(lite0):
    x = fl.preprocess(["chelsea", "rocket"], lite0)
    _, kept = hooked(lite0, ["bn2", "blocks.3"], x)
    for channels_last in (False, True):
        ex = fl.FeatureExtractor(lite0, ["head", "block4"], "avg", channels_last=channels_last, fold=True)
        assert ex.folded == 49 and ex.model is not lite0
        got = ex(x)
        torch.testing.assert_close(got["head"], kept["bn2"].mean(dim=(2, 3)), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got["block4"], kept["blocks.3"].mean(dim=(2, 3)), rtol=1e-4, atol=1e-4)
    assert any(isinstance(m, nn.BatchNorm2d) for m in lite0.modules())  # the caller's model: untouched
    assert fl.FeatureExtractor(lite0, ["head"]).folded == 0  # fl.extract / fl.embed: the model's own arithmetic


def test_extraction_into_a_file_folds(lite0):
    from featlab.settings import ExtractSettings
    ex = fl.FeatureExtractor.from_settings(lite0, ExtractSettings(layers=("head",)))
    assert ex.folded == 49


def test_a_convolution_read_as_a_layer_keeps_its_output():
    model = resnet18(weights=None).eval()
    with torch.no_grad():  # batch-norm statistics that are not the identity
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    _, kept = hooked(model, ["conv1", "layer1.0.conv2", "layer4"], x)
    ex = fl.FeatureExtractor(model, ["conv1", "layer1.0.conv2", "layer4"], "avg",
                             preprocess=fl.Preprocess(resize=64, crop=64, mean=(0, 0, 0), std=(1, 1, 1)), fold=True)
    assert 0 < ex.folded < 20  # 20 pairs in ResNet-18; the two read convolutions are not folded
    got = ex(x)
    for p in kept:
        torch.testing.assert_close(got[p], kept[p].mean(dim=(2, 3)), rtol=1e-4, atol=1e-4, msg=p)


def test_only_exact_folds():
    class Shared(nn.Module):  # the conv's output is read twice: the batch norm cannot absorb it
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y

    assert conv_bn_pairs(Shared().eval()) == []
    seq = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    assert conv_bn_pairs(seq) == [("0", "1")]
    assert fold_batchnorm(seq.train()) == 0  # training mode normalises with the batch's statistics
    assert isinstance(seq[1], nn.BatchNorm2d)


@pytest.mark.parametrize("bias", [False, True])
def test_fold_equals_conv_then_batchnorm(bias):
    g = torch.Generator().manual_seed(3)
    seq = nn.Sequential(nn.Conv2d(3, 5, 3, bias=bias), nn.BatchNorm2d(5, eps=1e-3)).eval()
    with torch.no_grad():
        seq[1].running_mean.copy_(torch.randn(5, generator=g))
        seq[1].running_var.copy_(torch.rand(5, generator=g) + 0.1)
        seq[1].weight.copy_(torch.randn(5, generator=g))
        seq[1].bias.copy_(torch.randn(5, generator=g))
        if bias:
            seq[0].bias.copy_(torch.randn(5, generator=g))
    x = torch.randn(2, 3, 8, 8, generator=g)
    with torch.no_grad():
        ref = seq(x)
        folded = copy.deepcopy(seq)
        assert fold_batchnorm(folded) == 1 and isinstance(folded[1], nn.Identity)
        torch.testing.assert_close(folded(x), ref, rtol=1e-5, atol=1e-5)
