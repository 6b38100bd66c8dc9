"""Automatic checks for the exercise notebooks in ``exercises/``.

Each ``check_*`` takes the learner's function (or result), compares it with featlab's own
implementation or a library reference on fresh inputs, prints a ✓ line when right, and
raises :class:`ExerciseError` (an AssertionError) saying what is wrong when not.
"""
from __future__ import annotations

import torch

__all__ = ["ExerciseError"]


class ExerciseError(AssertionError):
    """The learner's answer is not right yet; the message says in what way."""


def _ok(msg: str) -> None:
    print(f"✓ {msg}")


def _tensor(value, what: str) -> torch.Tensor:
    if value is None:
        raise ExerciseError(f"{what} returned None: fill in the TODO.")
    if not isinstance(value, torch.Tensor):
        raise ExerciseError(f"{what} should return a torch.Tensor; got {type(value).__name__}.")
    return value


def _close(got: torch.Tensor, want: torch.Tensor, what: str, atol: float = 1e-4, rtol: float = 1e-4) -> None:
    got = _tensor(got, what)
    if tuple(got.shape) != tuple(want.shape):
        raise ExerciseError(f"{what}: shape {tuple(got.shape)}, expected {tuple(want.shape)}.")
    if not torch.allclose(got.float().cpu(), want.float().cpu(), atol=atol, rtol=rtol):
        err = (got.float().cpu() - want.float().cpu()).abs().max().item()
        raise ExerciseError(f"{what}: values differ from the reference (max abs error {err:.3g}).")


# --- 05 feature maps -------------------------------------------------------------------------

def check_capture(capture) -> None:
    """``capture(model, module, x)`` must return ``module``'s output (pre-ReLU) and remove its hook."""
    from torch import nn

    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(6, 4, 3)).eval()
    x = torch.randn(2, 3, 12, 12)
    want = torch.nn.functional.conv2d(x, model[0].weight, model[0].bias, padding=1)
    got = capture(model, model[0], x)
    if model[0]._forward_hooks:
        raise ExerciseError("the hook is still registered after capture(): call handle.remove() "
                            "(in a finally: block, so it is removed after errors too).")
    got = _tensor(got, "capture(model, module, x)")
    if got.shape == want.shape and torch.allclose(got, want.clamp_min(0)) and (want < 0).any():
        raise ExerciseError("the recorded map has no negative values: the in-place ReLU rewrote it. "
                            "Store out.clone(), not out.")
    _close(got, want, "capture(model, module, x)")
    _ok("capture records the module's output and cleans up its hook")


def check_fraction_active(fraction_active) -> None:
    """``fraction_active(f)``: (N, C, H, W) -> (N,), share of entries > 0 per image."""
    torch.manual_seed(6)
    f = torch.randn(3, 5, 4, 4).clamp_min(0) * torch.tensor([1.0, 0.0, 1.0]).view(3, 1, 1, 1)
    f[2, :, :2] = 0
    _close(fraction_active(f), (f > 0).float().mean(dim=(1, 2, 3)), "fraction_active(f)")
    _ok("fraction_active is right, one value per image")


def check_top_channels(top_channels) -> None:
    """``top_channels(fmap, k)``: (C, H, W) -> the k channel indices with the largest mean."""
    from .plot import top_channels as reference

    torch.manual_seed(7)
    fmap = torch.rand(10, 6, 6) * torch.arange(10).flip(0).float().view(10, 1, 1).add(1).mul(torch.rand(10, 1, 1))
    got = top_channels(fmap, 4)
    if got is None:
        raise ExerciseError("top_channels returned None: fill in the TODO.")
    got = [int(i) for i in (got.tolist() if isinstance(got, torch.Tensor) else got)]
    want = reference(fmap, 4)
    if sorted(got) != sorted(want):
        raise ExerciseError(f"top_channels(fmap, 4) gave {got}; the 4 channels with the largest mean "
                            f"activation are {want}. Rank by fmap.mean(dim=(1, 2)).")
    _ok("top_channels picks the strongest channels")



# --- 01 convolution math ---------------------------------------------------------------------

def check_conv_output_size(conv_output_size) -> None:
    """``conv_output_size(size, kernel, stride, padding, dilation)`` -> int, vs real nn.Conv2d outputs."""
    from torch import nn

    cases = [(224, 3, 1, 1, 1), (224, 7, 2, 3, 1), (7, 3, 2, 0, 1), (10, 3, 3, 0, 1), (9, 3, 1, 2, 2),
             (13, 5, 2, 2, 2), (5, 1, 1, 0, 1), (8, 4, 4, 0, 1)]
    for size, k, s, p, d in cases:
        with torch.no_grad():
            want = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, size, size)).shape[-1]
        got = conv_output_size(size, k, s, p, d)
        if got is None:
            raise ExerciseError("conv_output_size returned None: fill in the TODO.")
        if got != want:
            raise ExerciseError(
                f"conv_output_size(size={size}, kernel={k}, stride={s}, padding={p}, dilation={d}) = {got}, "
                f"but nn.Conv2d gives {want}. Hint: floor((size + 2p - d(k-1) - 1) / s) + 1.")
    _ok(f"conv_output_size matches nn.Conv2d on {len(cases)} settings")


def check_conv2d_unfold(conv2d_unfold) -> None:
    """``conv2d_unfold(x, weight, bias, stride, padding)`` (N, C_in, H, W) -> (N, C_out, H', W') vs F.conv2d."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(11)
    for (c_in, c_out, kh, kw, s, p, h, w) in [(3, 4, 3, 3, 1, 1, 6, 7), (2, 5, 1, 3, 2, 0, 7, 9),
                                              (4, 3, 2, 2, 2, 1, 8, 8)]:
        x = torch.randn(2, c_in, h, w, generator=g)
        weight = torch.randn(c_out, c_in, kh, kw, generator=g)
        bias = torch.randn(c_out, generator=g)
        want = F.conv2d(x, weight, bias, stride=s, padding=p)
        _close(conv2d_unfold(x, weight, bias, s, p), want,
               f"conv2d_unfold with kernel {kh}×{kw}, stride {s}, padding {p}")
    _ok("conv2d_unfold equals F.conv2d (non-square kernels, stride, padding)")


def check_conv1x1_matmul(conv1x1_matmul) -> None:
    """``conv1x1_matmul(x, weight, bias)``: x (N, C_in, H, W), weight (C_out, C_in) -> (N, C_out, H, W)."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(12)
    x = torch.randn(3, 5, 4, 6, generator=g)
    weight, bias = torch.randn(7, 5, generator=g), torch.randn(7, generator=g)
    want = F.conv2d(x, weight[:, :, None, None], bias)
    got = _tensor(conv1x1_matmul(x, weight, bias), "conv1x1_matmul(x, weight, bias)")
    if tuple(got.shape) == (3, 4, 6, 7):
        raise ExerciseError("the result is (N, H, W, C_out): permute it back to (N, C_out, H, W).")
    _close(got, want, "conv1x1_matmul(x, weight, bias)")
    _ok("conv1x1_matmul equals a 1×1 nn.Conv2d")



# --- 02 receptive fields ---------------------------------------------------------------------

def _rf_stacks(seed: int, n: int = 6):
    """Random layer stacks [(kernel, stride, padding, dilation), ...] for the 02 checks."""
    g = torch.Generator().manual_seed(seed)
    pick = lambda hi: int(torch.randint(1, hi + 1, (1,), generator=g))  # noqa: E731
    stacks = [[(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1)]]
    for _ in range(n):
        stacks.append([(pick(5), pick(2), pick(2) - 1, pick(2)) for _ in range(pick(4) + 1)])
    return stacks


def _rf_reference(layers, size: int = 40):
    """featlab's (R, S, P) after each layer of a conv stack, for a ``size``×``size`` input
    (enlarged when the stack needs more), and the last layer's ReceptiveField."""
    from torch import nn
    from .receptive import receptive_field

    r, s = 1, 1
    for k, st, _, d in layers:          # only to make the input large enough for the stack
        r, s = r + d * (k - 1) * s, s * st
    size = max(size, r)
    model = nn.Sequential(*[nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d) for k, s, p, d in layers])
    rfs = [receptive_field(model, str(i), size) for i in range(len(layers))]
    return [(rf.size[0], rf.stride[0], rf.padding[0]) for rf in rfs], rfs[-1]


def _as_triples(value, what: str, n: int, width: int) -> list:
    if value is None:
        raise ExerciseError(f"{what} returned None: fill in the TODO.")
    try:
        rows = [tuple(int(v) for v in row) for row in value]
    except TypeError:
        raise ExerciseError(f"{what} should return a list of {width}-tuples, one per layer; "
                            f"got {type(value).__name__}.") from None
    if len(rows) != n or any(len(r) != width for r in rows):
        raise ExerciseError(f"{what} should return {n} tuples of {width} numbers (one per layer); "
                            f"got {value!r}.")
    return rows


def check_rf_recursion(rf_recursion) -> None:
    """``rf_recursion(layers)``: [(kernel, stride), ...] -> [(R, S) after each layer]."""
    for layers in _rf_stacks(21):
        want, _ = _rf_reference([(k, s, 0, 1) for k, s, _, _ in layers])
        ks = [(k, s) for k, s, _, _ in layers]
        got = _as_triples(rf_recursion(ks), f"rf_recursion({ks})", len(ks), 2)
        for i, ((r, s), (wr, ws, _)) in enumerate(zip(got, want)):
            if (r, s) != (wr, ws):
                raise ExerciseError(
                    f"rf_recursion({ks}): after layer {i} you give R={r}, S={s}; featlab says "
                    f"R={wr}, S={ws}. Remember R grows by (k - 1) times the stride *before* the "
                    "layer, and S multiplies by the layer's stride afterwards.")
    _ok("rf_recursion gives size and stride of every layer")


def check_rf_full(rf_full) -> None:
    """``rf_full(layers)``: [(kernel, stride, padding, dilation), ...] -> [(R, S, P) per layer]."""
    for layers in _rf_stacks(22):
        want, _ = _rf_reference(layers)
        got = _as_triples(rf_full(layers), f"rf_full({layers})", len(layers), 3)
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                hint = ("the effective padding grows by p times the stride before the layer"
                        if g[:2] == w[:2] else "a dilated kernel spans d (k - 1) + 1 pixels")
                raise ExerciseError(f"rf_full({layers}): after layer {i} you give (R, S, P) = {g}; "
                                    f"featlab says {w}. Hint: {hint}.")
    _ok("rf_full gives size, stride and effective padding, with dilation")


def check_unit_span(unit_span) -> None:
    """``unit_span(R, S, P, i, n)``: the pixels [start, stop) of unit i, clipped to 0..n."""
    for layers in _rf_stacks(23):
        _, rf = _rf_reference(layers, 40)
        (r, s, p), n, units = (rf.size[0], rf.stride[0], rf.padding[0]), rf.input_size[0], rf.output_size[0]
        for i in sorted({0, units // 2, units - 1}):
            want = rf.box(i, i, clip=True)[0::2]
            got = unit_span(r, s, p, i, n)
            if got is None:
                raise ExerciseError("unit_span returned None: fill in the TODO.")
            if tuple(int(v) for v in got) != want:
                raw = rf.box(i, i)[0::2]
                if tuple(int(v) for v in got) == raw:
                    raise ExerciseError(f"unit_span(R={r}, S={s}, P={p}, i={i}, n={n}) gave {raw}: right "
                                        f"field, but clip it to the image: expected {want}.")
                raise ExerciseError(
                    f"unit_span(R={r}, S={s}, P={p}, i={i}, n={n}) gave {tuple(got)}; expected {want} "
                    f"(before clipping to the image: {raw}). Unit i starts at -P + i*S and covers R "
                    "pixels; stop is excluded.")
    _ok("unit_span locates every unit's field, clipped to the image")



# --- 03 reshape / permute --------------------------------------------------------------------

def check_to_tokens(to_tokens) -> None:
    """``to_tokens(f)``: (N, C, H, W) -> (N, H*W, C), token h*W + w = pixel (h, w)."""
    g = torch.Generator().manual_seed(31)
    f = torch.randn(2, 5, 3, 4, generator=g)
    got = _tensor(to_tokens(f), "to_tokens(f)")
    if tuple(got.shape) == (2, 12, 5) and torch.equal(got, f.reshape(2, 12, 5)):
        raise ExerciseError("to_tokens uses f.reshape(N, H*W, C): right shape, scrambled values. "
                            "Keep C together: flatten H and W, then move C last.")
    _close(got, f.flatten(2).transpose(1, 2), "to_tokens(f)", atol=0, rtol=0)
    _ok("to_tokens gives (N, H·W, C) in raster order")


def check_from_tokens(from_tokens) -> None:
    """``from_tokens(t, h, w)``: (N, H*W, C) -> (N, C, H, W), the inverse of to_tokens."""
    g = torch.Generator().manual_seed(32)
    f = torch.randn(2, 6, 3, 5, generator=g)
    tokens = f.flatten(2).transpose(1, 2)
    got = _tensor(from_tokens(tokens, 3, 5), "from_tokens(tokens, 3, 5)")
    _close(got, f, "from_tokens(tokens, 3, 5)", atol=0, rtol=0)
    _ok("from_tokens inverts to_tokens exactly")


def check_space_to_depth(space_to_depth) -> None:
    """``space_to_depth(x, r)``: (N, C, H, W) -> (N, C*r*r, H/r, W/r), equal to F.pixel_unshuffle."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(33)
    for r, shape in [(2, (2, 3, 6, 8)), (3, (1, 2, 9, 6))]:
        x = torch.randn(*shape, generator=g)
        _close(space_to_depth(x, r), F.pixel_unshuffle(x, r), f"space_to_depth(x of {shape}, r={r})",
               atol=0, rtol=0)
    _ok("space_to_depth equals F.pixel_unshuffle")



# --- 04 GAP classification and CAM -----------------------------------------------------------

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


def _call(fn, what: str, *args):
    try:
        return fn(*args)
    except Exception as e:  # the learner's code crashed: say where, keep the message
        raise ExerciseError(f"{what} raised {type(e).__name__}: {e}") from e


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
            raise ExerciseError("you summed over the positions; GAP takes their mean (divide by H·W).")
        if torch.allclose(got, want - bias, atol=1e-4):
            raise ExerciseError("the bias is missing: z = g Wᵀ + b.")
    _close(got, want, "gap_logits(fmap, weight, bias) compared with the model's logits")
    _ok("gap_logits rebuilds the model's logits from its last feature map")


def check_class_activation_map(class_activation_map) -> None:
    """``class_activation_map(fmap, weight, target)``: (N, C, H, W), (K, C), (N,) -> (N, H, W)."""
    from .cam import cam

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
        raise ExerciseError("your map has no negative values: CAM is the raw weighted sum, no ReLU.")
    _close(got, want, "class_activation_map compared with fl.cam(..., upsample=False, normalize=False)")
    rebuilt = got.mean(dim=(1, 2)) + bias[target]
    _close(rebuilt, logits.gather(1, target[:, None])[:, 0], "mean of your CAM + bias vs the logit")
    _ok("class_activation_map matches fl.cam, and its mean + bias is the logit")


def check_upsample_normalize(upsample_normalize) -> None:
    """``upsample_normalize(maps, size)``: (N, h, w) -> (N, *size), bilinear, min-max per image."""
    from .cam import cam

    model, x = _tiny_gap_net()
    raw = cam(model, x, layer="features", head="fc", upsample=False, normalize=False)      # (3, 9, 11)
    want = cam(model, x, layer="features", head="fc")                                       # (3, 20, 24)
    got = _tensor(_call(upsample_normalize, "upsample_normalize(maps, size)", raw, (20, 24)),
                  "upsample_normalize(maps, (20, 24))")
    if got.shape != want.shape:
        raise ExerciseError(f"shape {tuple(got.shape)}, expected {tuple(want.shape)}: upsample with "
                            "F.interpolate(maps[:, None], size=size, mode='bilinear', "
                            "align_corners=False)[:, 0].")
    g = got.detach().float()
    per_image_min, per_image_max = g.amin(dim=(1, 2)), g.amax(dim=(1, 2))
    if not (torch.allclose(per_image_min, torch.zeros(3), atol=1e-4)
            and torch.allclose(per_image_max, torch.ones(3), atol=1e-4)):
        raise ExerciseError(f"each map should span exactly [0, 1] on its own; per-image minima "
                            f"{[round(v, 3) for v in per_image_min.tolist()]}, maxima "
                            f"{[round(v, 3) for v in per_image_max.tolist()]}. Subtract each map's "
                            "min and divide by its (max - min), with amin/amax over dim=(1, 2).")
    _close(got, want, "upsample_normalize compared with fl.cam's default output "
                      "(bilinear, align_corners=False, then min-max)")
    _ok("upsample_normalize matches fl.cam's upsampled, normalised maps")



# --- 06 Grad-CAM -----------------------------------------------------------------------------

def check_channel_weights(channel_weights) -> None:
    """``channel_weights(grads)``: (N, K, h, w) gradients -> (N, K) Grad-CAM weights alpha."""
    torch.manual_seed(60)
    grads = torch.randn(2, 5, 3, 4)
    got = _tensor(channel_weights(grads), "channel_weights(grads)")
    want = grads.mean(dim=(2, 3))
    if tuple(got.shape) == (2, 5) and torch.allclose(got, grads.sum(dim=(2, 3))):
        raise ExerciseError("channel_weights sums the gradients; Grad-CAM averages them over (h, w).")
    if tuple(got.shape) != (2, 5):
        raise ExerciseError(f"channel_weights(grads) has shape {tuple(got.shape)}; expected (N, K) = (2, 5): "
                            "average over the two spatial dimensions (dim=(2, 3)) only.")
    _close(got, want, "channel_weights(grads)")
    _ok("channel_weights: alpha_k = mean over (h, w) of dy/dA_k")


def check_grad_cam_map(grad_cam_map) -> None:
    """``grad_cam_map(acts, grads)``: (N, K, h, w) twice -> raw (N, h, w) ReLU(sum_k alpha_k A_k)."""
    from torch import nn

    from .cam import grad_cam, layer_gradients

    torch.manual_seed(61)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4)).eval()
    x = torch.randn(3, 3, 8, 8)
    acts, grads, _ = layer_gradients(model, x, "2", target=[0, 1, 3])
    want = grad_cam(model, x, "2", target=[0, 1, 3], upsample=False, normalize=False)
    got = _tensor(grad_cam_map(acts, grads), "grad_cam_map(acts, grads)")
    if tuple(got.shape) != tuple(want.shape):
        raise ExerciseError(f"grad_cam_map gives shape {tuple(got.shape)}; expected (N, h, w) = "
                            f"{tuple(want.shape)}: weight each channel by alpha, then sum over channels.")
    if (got < 0).any():
        raise ExerciseError("the map has negative values: apply the ReLU after summing the channels.")
    unweighted = acts.sum(dim=1).clamp_min(0)
    if torch.allclose(got, unweighted, atol=1e-5) and not torch.allclose(want, unweighted, atol=1e-5):
        raise ExerciseError("the channels are summed without their weights alpha_k = mean of the gradient.")
    _close(got, want, "grad_cam_map(acts, grads)", atol=1e-5)
    _ok("grad_cam_map equals fl.grad_cam(..., upsample=False, normalize=False)")


def check_pointing_hit(pointing_hit) -> None:
    """``pointing_hit(heatmap, box)``: is the (H, W) map's maximum inside box (top, left, height, width)?"""
    torch.manual_seed(62)
    cases = []
    for peak, box in [((5, 7), (4, 6, 3, 3)), ((5, 7), (6, 6, 3, 3)), ((5, 7), (3, 5, 2, 3)),
                      ((5, 7), (3, 5, 3, 2)), ((5, 7), (5, 7, 1, 1)), ((0, 0), (0, 0, 4, 4)),
                      ((9, 2), (0, 0, 9, 9)), ((2, 9), (0, 0, 9, 9))]:
        heat = torch.rand(10, 12) * 0.5
        heat[peak] = 1.0
        r, c = peak
        top, left, h, w = box
        cases.append((heat, box, top <= r < top + h and left <= c < left + w))
    for heat, box, want in cases:
        got = pointing_hit(heat.clone(), box)
        if got is None:
            raise ExerciseError("pointing_hit returned None: fill in the TODO.")
        if isinstance(got, torch.Tensor):
            got = got.item()
        if bool(got) != want:
            r, c = divmod(int(heat.argmax()), heat.shape[1])
            raise ExerciseError(
                f"pointing_hit gave {bool(got)} for a map whose maximum is at (row {r}, col {c}) and "
                f"box (top, left, height, width) = {box}; expected {want}. The box covers rows "
                "top … top + height - 1 and columns left … left + width - 1; the row of a flat index "
                "i is i // W, the column i % W.")
    _ok("pointing_hit finds the maximum and tests it against the box (ends excluded)")
