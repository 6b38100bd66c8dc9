"""Checks for ``exercises/04_*.ipynb`` (GAP classification and CAM; notebook ``notebooks/04_*``)."""
from __future__ import annotations

import torch

from ..i18n import _
from ._common import ExerciseError, _call, _close, _ok, _tensor, learner_check

__all__ = ['check_gap_logits', 'check_class_activation_map', 'check_upsample_normalize']


def _tiny_gap_net():
    """A small random GAP→Linear classifier (features → mean over h, w → fc) and an input batch."""
    from torch import nn

    class TinyGapNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2), nn.ReLU())
            self.fc = nn.Linear(6, 4)

        def forward(self, x):
            return self.fc(self.features(x).mean(dim=(2, 3)))

    torch.manual_seed(4)
    model = TinyGapNet().eval()
    x = torch.randn(3, 3, 20, 24)                  # feature map (3, 6, 9, 11): H != W on purpose
    return model, x



@learner_check
def check_gap_logits(gap_logits) -> None:
    """``gap_logits(fmap, weight, bias)``: (N, C, H, W), (K, C), (K,) -> (N, K) logits."""
    model, x = _tiny_gap_net()
    with torch.no_grad():
        fmap, want = model.features(x), model(x)
    weight, bias = model.fc.weight.detach(), model.fc.bias.detach()
    got = _tensor(_call(gap_logits, "gap_logits(fmap, weight, bias)", fmap, weight, bias),
                  "gap_logits(fmap, weight, bias)")
    if got.shape == want.shape:
        if torch.allclose(got, fmap.sum(dim=(2, 3)) @ weight.T + bias, atol=1e-4):
            raise ExerciseError(_("you summed over the positions; GAP takes their mean (divide by H·W)."))
        if torch.allclose(got, want - bias, atol=1e-4):
            raise ExerciseError(_("the bias is missing: z = g Wᵀ + b."))
    _close(got, want, _("gap_logits(fmap, weight, bias) compared with the model's logits"))
    _ok(_("gap_logits rebuilds the model's logits from its last feature map"))


@learner_check
def check_class_activation_map(class_activation_map) -> None:
    """``class_activation_map(fmap, weight, target)``: (N, C, H, W), (K, C), (N,) -> (N, H, W)."""
    from ..cam import cam

    model, x = _tiny_gap_net()
    with torch.no_grad():
        fmap, logits = model.features(x), model(x)
    weight, bias = model.fc.weight.detach(), model.fc.bias.detach()
    target = torch.tensor([2, 0, 3])
    got = _tensor(_call(class_activation_map, "class_activation_map(fmap, weight, target)",
                        fmap, weight, target), "class_activation_map(fmap, weight, target)")
    want = cam(model, x, target, layer="features", head="fc", upsample=False, normalize=False)
    if got.shape == (3, 9, 11) and torch.allclose(got, torch.einsum("nc,nchw->nhw", weight[target], fmap).clamp_min(0), atol=1e-4) \
            and not torch.allclose(got, want, atol=1e-4):
        raise ExerciseError(_("your map has no negative values: CAM is the raw weighted sum, no ReLU."))
    _close(got, want, _("class_activation_map compared with fl.cam(..., upsample=False, normalize=False)"))
    rebuilt = got.mean(dim=(1, 2)) + bias[target]
    _close(rebuilt, logits.gather(1, target[:, None])[:, 0], _("mean of your CAM + bias vs the logit"))
    _ok(_("class_activation_map matches fl.cam, and its mean + bias is the logit"))


@learner_check
def check_upsample_normalize(upsample_normalize) -> None:
    """``upsample_normalize(maps, size)``: (N, h, w) -> (N, *size), bilinear, min-max per image."""
    from ..cam import cam

    model, x = _tiny_gap_net()
    raw = cam(model, x, layer="features", head="fc", upsample=False, normalize=False)      # (3, 9, 11)
    want = cam(model, x, layer="features", head="fc")                                       # (3, 20, 24)
    got = _tensor(_call(upsample_normalize, "upsample_normalize(maps, size)", raw, (20, 24)),
                  "upsample_normalize(maps, (20, 24))")
    if got.shape != want.shape:
        raise ExerciseError(_("shape {got_shape}, expected {want_shape}: upsample with F.interpolate(maps[:, "
                              "None], size=size, mode='bilinear', align_corners=False)[:, 0].").format(
                                      got_shape=tuple(got.shape), want_shape=tuple(want.shape)))
    g = got.detach().float()
    per_image_min, per_image_max = g.amin(dim=(1, 2)), g.amax(dim=(1, 2))
    if not (torch.allclose(per_image_min, torch.zeros(3), atol=1e-4)
            and torch.allclose(per_image_max, torch.ones(3), atol=1e-4)):
        raise ExerciseError(_("each map should span exactly [0, 1] on its own; per-image minima {minima}, "
                              "maxima {maxima}. Subtract each map's min and divide by its (max - min), with "
                              "amin/amax over dim=(1, 2).").format(
                                      minima=[round(v, 3) for v in per_image_min.tolist()],
                                      maxima=[round(v, 3) for v in per_image_max.tolist()]))
    _close(got, want, _("upsample_normalize compared with fl.cam's default output (bilinear, "
                        "align_corners=False, then min-max)"))
    _ok(_("upsample_normalize matches fl.cam's upsampled, normalised maps"))
