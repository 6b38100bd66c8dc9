"""featlab.cam: CAM and Grad-CAM against independent references.

References: pytorch_grad_cam.GradCAM (PyPI grad-cam), hand-computed numbers on a tiny network,
the model's own logits (CAM's spatial mean + bias), and F.conv2d with the classifier as a 1×1
convolution.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import featlab as fl

TABBY = 281


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


@pytest.fixture(scope="module")
def lite0():
    return fl.load_model("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="module")
def chelsea(lite0):
    return fl.preprocess("chelsea", lite0)


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return fl.load_model("resnet18", pretrained=False, device="cpu")


def reference_grad_cam(model, x, module, classes):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model=model, target_layers=[module]) as ref:
        out = ref(input_tensor=x, targets=[ClassifierOutputTarget(int(k)) for k in classes])
    model.zero_grad(set_to_none=True)  # the reference leaves .grad on the weights
    return torch.from_numpy(out)


# --- Grad-CAM against pytorch_grad_cam --------------------------------------------------------

@pytest.mark.parametrize("layer", ["head", "block6"])
def test_grad_cam_matches_pytorch_grad_cam_pretrained(lite0, chelsea, layer):
    ours = fl.grad_cam(lite0, chelsea, layer, target=TABBY)
    module = dict(lite0.named_modules())[fl.resolve_layer(lite0, layer)]
    ref = reference_grad_cam(lite0, chelsea, module, [TABBY])
    assert ours.shape == ref.shape == (1, 224, 224)
    assert corr(ours, ref) >= 0.99


@pytest.mark.parametrize("layer", ["layer4", "layer3"])
def test_grad_cam_matches_pytorch_grad_cam_random_resnet(resnet, layer):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 96, 96)
    top1 = resnet(x).argmax(1)
    ours = fl.grad_cam(resnet, x, layer)                      # target None = top-1
    ref = reference_grad_cam(resnet, x, dict(resnet.named_modules())[layer], top1)
    assert ours.shape == ref.shape == (2, 96, 96)
    for i in range(2):
        assert corr(ours[i], ref[i]) >= 0.99


# --- the arithmetic, by hand ------------------------------------------------------------------

class Tiny(nn.Module):
    """x (1, 1, 2, 2) -> A = conv1x1 (2 channels) -> in-place ReLU -> flatten -> Linear(8, 2)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(8, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.conv.bias.copy_(torch.tensor([0.0, 5.0]))      # A0 = x, A1 = 5 - x
            v = torch.zeros(2, 2, 2, 2)                         # (class, channel, h, w)
            v[0, 0] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])    # alpha_00 = 0.5
            v[0, 1] = torch.tensor([[-2.0, -2.0], [0.0, 0.0]])  # alpha_01 = -1
            v[1, 0] = torch.tensor([[0.0, 0.0], [4.0, 0.0]])    # alpha_10 = 1
            v[1, 1] = torch.tensor([[0.0, 0.0], [0.0, 2.0]])    # alpha_11 = 0.5
            self.fc.weight.copy_(v.reshape(2, 8))

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).flatten(1))


def test_grad_cam_unnormalised_equals_hand_computed_numbers():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
    model = Tiny()
    raw = lambda k: fl.grad_cam(model, x, "conv", target=k, upsample=False, normalize=False)[0]
    # class 0: ReLU(0.5 * x - 1 * (5 - x)) = ReLU([[-3.5, -2], [-0.5, 1]])
    assert torch.equal(raw(0), torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    # class 1: ReLU(1 * x + 0.5 * (5 - x)) = [[3, 3.5], [4, 4.5]]
    assert torch.equal(raw(1), torch.tensor([[3.0, 3.5], [4.0, 4.5]]))
    # layer_gradients: A is the conv output (before the in-place ReLU), dA the fc weights
    acts, grads, t = fl.layer_gradients(model, x, "conv", target=1)
    assert torch.equal(acts[0, 1], torch.tensor([[4.0, 3.0], [2.0, 1.0]]))
    assert torch.equal(grads[0], model.fc.weight[1].detach().view(2, 2, 2))
    assert t.tolist() == [1]
    # normalised: min-max to [0, 1]
    norm = fl.grad_cam(model, x, "conv", target=1, upsample=False)[0]
    assert torch.allclose(norm, torch.tensor([[0.0, 1 / 3], [2 / 3, 1.0]]))


def test_in_place_ops_after_the_layer_do_not_change_the_map():
    torch.manual_seed(0)

    def net(inplace: bool):
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=inplace),
                             nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=inplace),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5)).eval()

    x = torch.randn(3, 3, 12, 12)
    a = fl.grad_cam(net(True), x, "2", normalize=False)
    b = fl.grad_cam(net(False), x, "2", normalize=False)
    assert torch.allclose(a, b, atol=1e-6) and a.abs().sum() > 0
    # and the activations are those of the conv, negatives included (before the ReLU)
    acts, _, _ = fl.layer_gradients(net(True), x, "2")
    assert (acts < 0).any()


# --- CAM ----------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["lite0", "resnet"])
def test_cam_mean_plus_bias_is_the_logit_and_equals_1x1_conv(which, lite0, chelsea, resnet):
    model = lite0 if which == "lite0" else resnet
    x = chelsea if which == "lite0" else torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    layer, head = fl.gap_head(model)
    fc = dict(model.named_modules())[head]
    with torch.no_grad():
        logits = model(x)
        feats = fl.extract(model, x, layer)[layer]
    k = logits.argmax(1)
    raw = fl.cam(model, x, upsample=False, normalize=False)
    assert torch.allclose(raw.mean(dim=(1, 2)) + fc.bias[k].detach(), logits.gather(1, k[:, None])[:, 0],
                          atol=1e-4, rtol=1e-4)
    as_conv = F.conv2d(feats, fc.weight.detach()[:, :, None, None])          # (N, classes, h, w)
    want = torch.stack([as_conv[i, k[i]] for i in range(len(k))])
    assert torch.allclose(raw, want, atol=1e-4, rtol=1e-4)


def test_cam_default_is_upsampled_and_normalised(lite0, chelsea):
    m = fl.cam(lite0, chelsea, target=TABBY)
    assert m.shape == (1, 224, 224)
    assert m.min().item() == 0.0 and abs(m.max().item() - 1.0) < 1e-6
    raw = fl.cam(lite0, chelsea, target=TABBY, upsample=False)
    assert raw.shape == (1, 7, 7) and abs(raw.max().item() - 1.0) < 1e-6


@pytest.mark.parametrize("which", ["lite0", "resnet"])
def test_grad_cam_at_gap_input_is_relu_cam_up_to_positive_scale(which, lite0, chelsea, resnet):
    model = lite0 if which == "lite0" else resnet
    x = chelsea if which == "lite0" else torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    layer, _ = fl.gap_head(model)
    g = fl.grad_cam(model, x, layer, upsample=False, normalize=False)
    c = fl.cam(model, x, upsample=False, normalize=False).relu()
    hw = g.shape[1] * g.shape[2]
    assert torch.allclose(g * hw, c, atol=1e-4, rtol=1e-3)     # alpha_c = W[k, c] / (h w)
    assert c.amax() > 0


def test_cam_errors(lite0, chelsea):
    vgg = fl.load_model("vgg16", pretrained=False, device="cpu")
    with pytest.raises(ValueError, match="grad_cam"):
        fl.cam(vgg, torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="does not feed"):       # right width, wrong layer
        fl.cam(lite0, chelsea, layer="conv_head", head="classifier")
    with pytest.raises(ValueError, match="both"):
        fl.cam(lite0, chelsea, layer="head")


# --- hooks, gradients, batches, targets -----------------------------------------------------

def n_hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks)
               for m in model.modules())


def test_hooks_removed_also_after_exceptions(resnet):
    x = torch.randn(1, 3, 64, 64)
    before = n_hooks(resnet)
    with pytest.raises(ValueError, match=r"\[0, 999\]"):
        fl.grad_cam(resnet, x, "layer4", target=5000)
    assert n_hooks(resnet) == before
    with pytest.raises(ValueError, match="convolutional"):
        fl.grad_cam(resnet, x, "fc")
    assert n_hooks(resnet) == before
    with pytest.raises(ValueError, match="runs exactly once"):
        fl.grad_cam(resnet, x, "layer4.0.relu")                 # shared module: runs twice
    assert n_hooks(resnet) == before
    with pytest.raises(ValueError, match="unknown layer"):
        fl.grad_cam(resnet, x, "layer9")
    fl.grad_cam(resnet, x, "layer4")
    assert n_hooks(resnet) == before


def test_no_gradients_left_and_flags_restored(resnet):
    frozen = [p for n, p in resnet.named_parameters() if n.startswith("layer1")]
    for p in frozen:
        p.requires_grad_(False)
    try:
        flags = [p.requires_grad for p in resnet.parameters()]
        x = torch.randn(2, 3, 64, 64)
        fl.grad_cam(resnet, x, "layer3")
        with pytest.raises(ValueError):
            fl.grad_cam(resnet, x, "layer3", target=[1, 2, 3])
        assert [p.requires_grad for p in resnet.parameters()] == flags
        assert all(p.grad is None for p in resnet.parameters())
        assert not resnet.training
    finally:
        for p in frozen:
            p.requires_grad_(True)


def test_works_inside_inference_mode(resnet):
    x = torch.randn(1, 3, 64, 64)
    want = fl.grad_cam(resnet, x, "layer4")
    with torch.inference_mode():
        got = fl.grad_cam(resnet, x, "layer4")
    assert torch.allclose(got, want)


@pytest.mark.parametrize("fn", ["grad_cam", "cam"])
def test_batch_equals_per_image(resnet, fn):
    torch.manual_seed(4)
    x = torch.randn(3, 3, 64, 64)
    targets = [7, 123, 999]
    run = (lambda xx, t: fl.grad_cam(resnet, xx, "layer3", target=t)) if fn == "grad_cam" else \
          (lambda xx, t: fl.cam(resnet, xx, target=t))
    batch = run(x, targets)
    single = torch.cat([run(x[i:i + 1], targets[i]) for i in range(3)])
    assert torch.allclose(batch, single, atol=1e-5)


def test_target_handling(resnet):
    torch.manual_seed(5)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        top1 = resnet(x).argmax(1)
    _, _, t = fl.layer_gradients(resnet, x, "layer4")
    assert torch.equal(t, top1)
    _, _, t = fl.layer_gradients(resnet, x, "layer4", target=3)
    assert t.tolist() == [3, 3]
    _, _, t = fl.layer_gradients(resnet, x, "layer4", target=torch.tensor([4, 9]))
    assert t.tolist() == [4, 9]
    none = fl.grad_cam(resnet, x, "layer4")
    explicit = fl.grad_cam(resnet, x, "layer4", target=top1.tolist())
    assert torch.allclose(none, explicit)
    other = fl.grad_cam(resnet, x, "layer4", target=[int(top1[0]) + 1, int(top1[1]) + 1])
    assert not torch.allclose(none, other)
    with pytest.raises(ValueError, match="one per image"):
        fl.grad_cam(resnet, x, "layer4", target=[1, 2, 3])
    with pytest.raises(ValueError, match=r"\[0, 999\]"):
        fl.cam(resnet, x, target=-1)


def test_images_as_pictures(lite0):
    m = fl.grad_cam(lite0, ["chelsea", "coffee"], "head")
    assert m.shape == (2, 224, 224)
    assert np.isclose(m.amax(dim=(1, 2)).numpy(), 1.0).all() and m.min() >= 0


# --- exercise 06 checks reject typical mistakes ---------------------------------------------

def test_exercise_checks_reject_typical_mistakes():
    from featlab.checks import (ExerciseError, check_channel_weights, check_grad_cam_map,
                                check_pointing_hit)

    alpha = lambda g: g.mean(dim=(2, 3))
    check_channel_weights(alpha)
    for wrong in (lambda g: g.sum(dim=(2, 3)), lambda g: g.mean(dim=(1, 2, 3)), lambda g: g.mean(dim=1)):
        with pytest.raises(ExerciseError):
            check_channel_weights(wrong)

    right = lambda a, g: (alpha(g)[:, :, None, None] * a).sum(dim=1).relu()
    check_grad_cam_map(right)
    for wrong in (lambda a, g: (alpha(g)[:, :, None, None] * a).sum(dim=1),        # no ReLU
                  lambda a, g: a.sum(dim=1).relu(),                                 # no weights
                  lambda a, g: (g * a).sum(dim=1).relu()):                          # gradient, not alpha
        with pytest.raises(ExerciseError):
            check_grad_cam_map(wrong)

    def hit(h, box, end=0):                                   # box = (x0, y0, x1, y1), x = column
        x0, y0, x1, y1 = box
        r, c = divmod(int(h.argmax()), h.shape[1])
        return y0 <= r < y1 + end and x0 <= c < x1 + end
    check_pointing_hit(hit)
    for wrong in (lambda h, b: hit(h, b, end=1),                                    # ends included
                  lambda h, b: hit(h.T.contiguous(), b)):                               # rows and columns swapped
        with pytest.raises(ExerciseError):
            check_pointing_hit(wrong)
