"""Receptive fields: which input pixels can influence one unit of a feature map.

Taught in ``notebooks/02_receptive_fields.ipynb``.

Per spatial axis a layer's units are described by three integers, computed from the input
forwards, one operation at a time (``R_0 = 1, S_0 = 1, P_0 = 0``)::

    R_l = R_{l-1} + (d_l (k_l - 1)) S_{l-1}     size: pixels seen by one unit
    S_l = S_{l-1} s_l                            stride ("jump"): pixels between neighbours
    P_l = P_{l-1} + p_l S_{l-1}                  effective padding

so unit ``i`` sees the input pixels ``-P + i S … -P + i S + R - 1`` and its centre is
``-P + i S + (R - 1) / 2``. :func:`receptive_field` gets these numbers by running the model
once on a zero image and following every operation on the way (convolutions, pooling,
``F.pad`` as in timm's TF-"same" convolutions, additions of branches, concatenations), so it
is right for branching networks (ResNet: the union over paths) and not only for sequential
ones. :func:`empirical_receptive_field` measures the same thing with gradients.

Sizes are ``(h, w)`` tuples everywhere — also for square fields — like
``nn.Conv2d(3, 8, 3).kernel_size == (3, 3)``.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .extract import Capture, aliases, in_channels, model_device, resolve_layer

__all__ = ["ReceptiveField", "ReceptiveFieldTable", "EmpiricalReceptiveField", "receptive_field",
           "receptive_field_table", "empirical_receptive_field"]

Pair = tuple[int, int]


def _pair(v) -> Pair:
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        return int(v[0]), int(v[1])
    return int(v), int(v)


# --- the result ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of the units of one layer (all values are ``(h, w)`` pairs).

    ``size``: pixels one unit sees; ``stride``: pixels between neighbouring units (a.k.a.
    jump); ``padding``: effective padding, so unit ``(i, j)`` (row ``i``, column ``j`` of the
    map) covers rows ``-padding[0] + i * stride[0]`` to that ``+ size[0] - 1`` (columns likewise).
    ``input_size``: the image it was computed for; ``output_size``: the layer's map (H', W').
    """
    size: Pair
    stride: Pair
    padding: Pair
    input_size: Pair
    output_size: Pair

    def center(self, i: int, j: int) -> tuple[float, float]:
        """Centre (row, column) in input pixels of unit ``(i, j)``: ``-P + i S + (R - 1) / 2``."""
        return tuple(-p + u * s + (r - 1) / 2
                     for u, r, s, p in zip((i, j), self.size, self.stride, self.padding))

    def box(self, i: int, j: int, clip: bool = False) -> tuple[int, int, int, int]:
        """Pixels seen by unit ``(i, j)`` as the course's box ``(x0, y0, x1, y1)``.

        x is the column, y the row, ``x1`` and ``y1`` excluded (as ``torchvision.ops``), so
        ``img[y0:y1, x0:x1]`` is the field. Unclipped it may reach outside the image (into the
        zero padding); ``clip=True`` cuts it to the image.
        """
        y0, x0 = (-p + u * s for u, s, p in zip((i, j), self.stride, self.padding))
        y1, x1 = y0 + self.size[0], x0 + self.size[1]
        if clip:
            h, w = self.input_size
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        return x0, y0, x1, y1

    def fully_inside(self) -> tuple[range, range]:
        """Rows and columns of the units whose field lies entirely inside the image.

        Empty ranges mean every unit also sees padding (typical for deep layers).
        """
        out = []
        for n_in, n_out, r, s, p in zip(self.input_size, self.output_size, self.size, self.stride,
                                        self.padding):
            first = max(0, -(-p // s))                 # ceil(p / s)
            last = min(n_out - 1, (n_in - r + p) // s)
            out.append(range(first, last + 1) if last >= first else range(0))
        return out[0], out[1]

    def __str__(self) -> str:
        return (f"RF {_fmt(self.size)} px, stride {_fmt(self.stride)}, padding "
                f"{_fmt(self.padding)} (map {self.output_size[0]}×{self.output_size[1]})")


def _fmt(p: Pair) -> str:
    return str(p[0]) if p[0] == p[1] else f"{p[0]}×{p[1]}"


class ReceptiveFieldTable(dict):
    """``{module path: ReceptiveField or None}`` in call order, printed as an aligned table.

    ``None`` marks layers without a regular field (e.g. after squeeze-excitation gating or an
    irregular adaptive pooling).
    """

    def __init__(self, rows: dict, model: nn.Module):
        super().__init__(rows)
        rev = {v: k for k, v in aliases(model).items()}
        mods = dict(model.named_modules())
        self.alias = {k: rev.get(k, "") for k in rows}
        self.kind = {k: type(mods[k]).__name__ for k in rows}

    def __repr__(self) -> str:
        head = ("layer", "alias", "type", "map", "size", "stride", "padding")
        lines = []
        for k, rf in self.items():
            if rf is None:
                lines.append((k, self.alias[k], self.kind[k], "", "—", "—", "—"))
            else:
                lines.append((k, self.alias[k], self.kind[k], f"{rf.output_size[0]}×{rf.output_size[1]}",
                              _fmt(rf.size), _fmt(rf.stride), _fmt(rf.padding)))
        widths = [max(len(str(r[c])) for r in [head, *lines]) for c in range(len(head))]
        fmt = "  ".join(f"{{:<{w}}}" if c < 3 else f"{{:>{w}}}" for c, w in enumerate(widths))
        return "\n".join(fmt.format(*r) for r in [head, *lines])

    __str__ = __repr__


# --- following the receptive field through a forward pass -----------------------------------

@dataclass(frozen=True)
class _Desc:
    """(size, stride, padding) per axis of a tensor's units, and its spatial shape."""
    r: Pair
    s: Pair
    p: Pair
    hw: Pair


@dataclass(frozen=True)
class _Unknown:
    reason: str


def _hw(t: torch.Tensor) -> Pair:
    return (int(t.shape[-2]), int(t.shape[-1])) if t.ndim == 4 else (1, 1)


def _window(d: _Desc, kernel: Pair, stride: Pair, pad: Pair, dilation: Pair, hw: Pair) -> _Desc:
    """The recursion of the module docstring, for one sliding window (conv or pooling)."""
    r = tuple(r + dl * (k - 1) * s for r, k, s, dl in zip(d.r, kernel, d.s, dilation))
    return _Desc(r, tuple(a * b for a, b in zip(d.s, stride)),
                 tuple(p + q * s for p, q, s in zip(d.p, pad, d.s)), hw)


def _global(d: _Desc) -> _Desc:
    """All units of a map pooled into one (global pooling, flatten): a window of the map's size."""
    return _window(d, d.hw, d.hw, (0, 0), (1, 1), (1, 1))


def _union(descs: list, hw: Pair, name: str):
    """Elementwise op of several maps (branch addition, concatenation): union of the fields."""
    for d in descs:
        if isinstance(d, _Unknown):
            return d
    if any(d.hw != hw for d in descs):
        if all(d.hw in (hw, (1, 1)) for d in descs):
            return _Unknown(f"'{name}' broadcasts a 1×1 map over a {hw[0]}×{hw[1]} one (global "
                            "context, e.g. squeeze-excitation): every unit then sees the whole "
                            "input, which is no regular receptive field.")
        return _Unknown(f"'{name}' combines maps of different sizes {[d.hw for d in descs]}.")
    if len({d.s for d in descs}) > 1:
        return _Unknown(f"'{name}' combines maps with different strides {[d.s for d in descs]}.")
    p = tuple(max(d.p[a] for d in descs) for a in range(2))
    end = tuple(max(d.r[a] - d.p[a] for d in descs) for a in range(2))   # last pixel + 1
    return _Desc(tuple(e + q for e, q in zip(end, p)), descs[0].s, p, hw)


def _arg(args, kwargs, i: int, name: str, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


_POINTWISE = {
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "elu", "gelu",
    "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "hardswish", "hardsigmoid", "mish", "prelu",
    "batch_norm", "instance_norm", "group_norm", "layer_norm", "dropout", "dropout2d", "linear",
    "add", "add_", "__add__", "__radd__", "__iadd__", "sub", "sub_", "__sub__", "__rsub__",
    "mul", "mul_", "__mul__", "__rmul__", "__imul__", "div", "div_", "__truediv__", "clamp",
    "clamp_", "clone", "contiguous", "to", "float", "double", "half", "type_as", "detach",
    "abs", "neg", "exp", "pow", "__pow__", "sqrt", "softmax", "log_softmax",
}
_REDUCE = {"flatten", "view", "reshape", "mean", "sum", "amax", "amin", "max", "squeeze", "logsumexp"}
_IRREGULAR = {"interpolate", "upsample", "upsample_nearest2d", "upsample_bilinear2d", "grid_sample",
              "conv_transpose2d", "pixel_shuffle", "pixel_unshuffle", "roll", "unfold", "fold"}
_warned: set[str] = set()


class _Follow(TorchFunctionMode):
    """Attach a field descriptor to every tensor computed from the input, op by op."""

    def __init__(self):
        super().__init__()
        self.desc: dict[int, tuple[torch.Tensor, object]] = {}   # id -> (tensor kept alive, desc)

    def get(self, t):
        hit = self.desc.get(id(t)) if isinstance(t, torch.Tensor) else None
        return hit[1] if hit is not None and hit[0] is t else None

    def set(self, t: torch.Tensor, d) -> None:
        self.desc[id(t)] = (t, d)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        outs = [o for o in (out if isinstance(out, (tuple, list)) else [out]) if isinstance(o, torch.Tensor)]
        if not outs:
            return out
        flat = [a for a in args for a in (a if isinstance(a, (list, tuple)) else [a])]
        tracked = [(a, self.get(a)) for a in flat + list(kwargs.values()) if self.get(a) is not None]
        if not tracked:
            return out
        d = self._rule(getattr(func, "__name__", str(func)), args, kwargs, tracked, outs[0])
        for o in outs:
            self.set(o, d)
        return out

    def _rule(self, name: str, args, kwargs, tracked, out: torch.Tensor):
        x, d = tracked[0]
        hw = _hw(out)
        if isinstance(d, _Unknown) and name not in _POINTWISE:
            return d
        if name in ("conv2d", "max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "lp_pool2d"):
            if x.ndim != 4:
                return _Unknown(f"'{name}' on a {x.ndim}-D input is not modelled.")
            if name == "conv2d":
                kernel = tuple(_arg(args, kwargs, 1, "weight").shape[-2:])
                stride = _pair(_arg(args, kwargs, 3, "stride", 1))
                dilation = _pair(_arg(args, kwargs, 5, "dilation", 1))
                pad = _arg(args, kwargs, 4, "padding", 0)
                if isinstance(pad, str):   # 'valid' or 'same' (stride 1; extra pixel on the right)
                    pad = (0, 0) if pad == "valid" else tuple(dl * (k - 1) // 2 for k, dl in zip(kernel, dilation))
            else:
                kernel = _pair(_arg(args, kwargs, 1, "kernel_size"))
                stride = _arg(args, kwargs, 2, "stride", None)
                stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
                pad = _arg(args, kwargs, 3, "padding", 0)
                dilation = _pair(_arg(args, kwargs, 4, "dilation", 1)) if "max" in name else (1, 1)
            return _window(d, kernel, stride, _pair(pad), dilation, hw)
        if name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
            n_in = d.hw
            if any(i % o for i, o in zip(n_in, hw)):
                return _Unknown(f"'{name}' from {n_in} to {hw}: the windows are not all alike "
                                "(input size not a multiple of the output size).")
            k = tuple(i // o for i, o in zip(n_in, hw))
            return _window(d, k, k, (0, 0), (1, 1), hw)
        if name == "pad":
            pad = list(_arg(args, kwargs, 1, "pad")) + [0, 0, 0, 0]
            left, top = pad[0], pad[2]         # (left, right, top, bottom): only the start moves
            return _Desc(d.r, d.s, (d.p[0] + top * d.s[0], d.p[1] + left * d.s[1]), hw)
        if name in ("cat", "concat", "concatenate", "stack"):
            dim = _arg(args, kwargs, 1, "dim", 0)
            if out.ndim == 4 and dim in (1, -3):
                return _union([t[1] for t in tracked], hw, name)
            return _Unknown(f"'{name}' along dim {dim} mixes spatial positions.")
        if name in _IRREGULAR:
            return _Unknown(f"'{name}' has no regular receptive field (not modelled).")
        spatial_in = [t for t, _ in tracked if t.ndim == 4 and _hw(t) != (1, 1)]
        if hw == (1, 1) and spatial_in and name in _REDUCE and (out.ndim != 4 or out.shape[0] == x.shape[0]):
            return _global(d)
        same_kind = (out.ndim == 4) == (x.ndim == 4) or (hw == (1, 1) and not spatial_in)
        if all(_hw(t) in (hw, (1, 1)) for t, _ in tracked) and same_kind:
            if name not in _POINTWISE | _REDUCE and name not in _warned:
                _warned.add(name)
                warnings.warn(f"featlab.receptive: treating '{name}' as a pointwise operation.")
            return _union([t[1] for t in tracked], hw, name)
        return _Unknown(f"'{name}' changes the map from {_hw(x)} to {hw} in a way featlab does not model.")


def _as_size(input_size) -> Pair:
    return _pair(input_size)


def _blank(model: nn.Module, input_size, dtype: torch.dtype | None = None, noise: bool = False):
    """A (1, C, H, W) input for ``model`` (C from its first conv, else 1), on its device."""
    try:
        c = in_channels(model)
    except ValueError:          # e.g. a bare pooling layer: channels do not matter here
        c = 1
    p = next(model.parameters(), None)
    dtype = dtype or (p.dtype if p is not None else torch.float32)
    h, w = _as_size(input_size)
    if noise:
        x = torch.randn(1, c, h, w, generator=torch.Generator().manual_seed(0), dtype=dtype)
    else:
        x = torch.zeros(1, c, h, w, dtype=dtype)
    return x.to(model_device(model))


def _follow(model: nn.Module, input_size) -> dict[str, ReceptiveField | _Unknown]:
    """Run ``model`` once on zeros and return every module's output field, in call order.

    Only shapes and window parameters matter, so it runs as the cheap one-channel surrogate
    of :class:`_Linearized` when it can, and as the real model otherwise.
    """
    h, w = _as_size(input_size)
    mode = _Follow()
    order: dict[str, object] = {}
    named = [(n, m) for n, m in model.named_modules() if n]

    def hook(name):
        def fn(_m, _inp, out):
            o = out[0] if isinstance(out, (tuple, list)) and out else out
            d = mode.get(o)
            if name not in order and d is not None:
                order[name] = d
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in named]
    x = _blank(model, (h, w))
    mode.set(x, _Desc((1, 1), (1, 1), (0, 0), (h, w)))
    try:
        try:   # the one-channel surrogate has the same geometry and is much cheaper
            with torch.no_grad(), mode, _Linearized(pool_as_avg=False):
                model(x)
        except Exception:   # e.g. a model that reshapes with explicit channel counts
            mode.desc.clear()
            order.clear()
            mode.set(x, _Desc((1, 1), (1, 1), (0, 0), (h, w)))
            with torch.no_grad(), mode:
                model(x)
    finally:
        for hd in handles:
            hd.remove()
    return {n: (ReceptiveField(d.r, d.s, d.p, (h, w), d.hw) if isinstance(d, _Desc) else d)
            for n, d in order.items()}


def receptive_field(model: nn.Module, layer: str, input_size: int | Pair = 224) -> ReceptiveField:
    """Analytic receptive field of ``layer`` (module path or alias) for an ``input_size`` image.

    >>> rf = receptive_field(vgg16, "conv5_3")
    >>> rf.size, rf.stride, rf.padding      # ((196, 196), (16, 16), (90, 90))

    Computed by following one forward pass, so branches (ResNet), runtime "same" padding
    (timm's ``Conv2dSame``) and ceil-mode pooling are taken into account. ``input_size``
    matters when padding is computed from the input (TF-"same") or pooling is adaptive.
    """
    path = resolve_layer(model, layer)
    fields = _follow(model, input_size)
    if path not in fields:
        raise ValueError(f"layer '{layer}' ({path}) does not produce a tensor computed from the "
                         "input in the forward pass, so it has no receptive field.")
    rf = fields[path]
    if isinstance(rf, _Unknown):
        raise ValueError(f"layer '{layer}' ({path}) has no regular receptive field: {rf.reason}")
    return rf


def receptive_field_table(model: nn.Module, input_size: int | Pair = 224) -> ReceptiveFieldTable:
    """Receptive field of every module that runs, in call order (keys as :func:`fl.layer_names`).

    Returns a dict ``{module path: ReceptiveField or None}`` that prints as a table.
    """
    fields = _follow(model, input_size)
    return ReceptiveFieldTable({k: (v if isinstance(v, ReceptiveField) else None)
                                for k, v in fields.items()}, model)


# --- measuring it with gradients -------------------------------------------------------------

@dataclass(frozen=True)
class EmpiricalReceptiveField:
    """What gradients say about one unit's field.

    ``unit``: (i, j) = (row, column) in the layer's map; ``box``: (x0, y0, x1, y1), x = column,
    y = row, x1/y1 excluded, bounding box of the pixels with a non-zero gradient (as
    :meth:`ReceptiveField.box`); ``gradient``: (H, W) map of |∂ unit / ∂ input| summed over
    colour channels and averaged over the batch (CPU).
    """
    unit: Pair
    box: tuple[int, int, int, int]
    gradient: torch.Tensor


def _full(like: torch.Tensor, shape, value: float) -> torch.Tensor:
    return torch.full(tuple(shape), value, dtype=like.dtype, device=like.device)


def _avg_over_max_windows(x: torch.Tensor, kernel_size, stride=None, padding=0, dilation=1,
                          ceil_mode: bool = False) -> torch.Tensor:
    """The windows of ``F.max_pool2d`` (padding, dilation, ceil mode), averaged instead."""
    k, p, dl = _pair(kernel_size), _pair(padding), _pair(dilation)
    s = k if stride is None or stride == [] or stride == () else _pair(stride)
    hw = F.max_pool2d(x, k, s, p, dl, ceil_mode).shape[-2:]      # the output size of max-pooling
    extra = [dl[a] * (k[a] - 1) + s[a] for a in range(2)]
    xp = F.pad(x, (p[1], p[1] + extra[1], p[0], p[0] + extra[0]))
    w = _full(x, (x.shape[1], 1, *k), 1.0 / (k[0] * k[1]))
    return F.conv2d(xp, w, stride=s, dilation=dl, groups=x.shape[1])[..., :hw[0], :hw[1]]


_IDENTITY_OPS = {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_",
                 "elu", "elu_", "gelu", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "hardswish",
                 "hardsigmoid", "mish", "prelu", "batch_norm", "instance_norm", "group_norm",
                 "layer_norm", "dropout", "dropout2d"}


class _Linearized(TorchFunctionMode):
    """Run a model as its "linear, all-positive" surrogate, without copying or changing it.

    Every conv/linear averages its inputs (all weights ``1 / fan_in``, no bias);
    activations, normalisation and dropout are the identity; max-pooling averages its
    windows. Then every path from a pixel to a unit adds a positive amount and none cancels,
    so the pixels with a non-zero gradient are exactly the theoretical receptive field.
    All channels of such a network are equal, so each layer computes just one (groups are
    then irrelevant): the same gradient support, hundreds of times faster.
    """

    def __init__(self, pool_as_avg: bool = True):
        super().__init__()
        self.pool_as_avg = pool_as_avg

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _IDENTITY_OPS:
            return args[0] if args else kwargs["input"]
        if name in ("conv2d", "linear"):
            x, w = args[0], _arg(args, kwargs, 1, "weight")
            if name == "linear":
                return F.linear(x, _full(x, (1, x.shape[-1]), 1.0 / x.shape[-1]))
            w = _full(x, (1, x.shape[1], *w.shape[-2:]), 1.0 / (x.shape[1] * w[0, 0].numel()))
            rest = {k: _arg(args, kwargs, i, k) for i, k in enumerate(
                ("input", "weight", "bias", "stride", "padding", "dilation")) if i >= 3
                and _arg(args, kwargs, i, k) is not None}
            return F.conv2d(x, w, None, **rest)
        if name in ("max_pool2d", "max_pool2d_with_indices") and self.pool_as_avg:
            ret_idx = _arg(args, kwargs, 6, "return_indices", False)
            params = {k: _arg(args, kwargs, i, k) for i, k in enumerate(
                ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode")) if i >= 1
                and _arg(args, kwargs, i, k) is not None}
            y = _avg_over_max_windows(args[0], **params)
            return (y, func(*args, **kwargs)[1]) if ret_idx or name.endswith("indices") else y
        return func(*args, **kwargs)


def empirical_receptive_field(model: nn.Module, layer: str, input_size: int | Pair = 224,
                              unit: Pair | None = None, images: torch.Tensor | None = None,
                              linearize: bool = True) -> EmpiricalReceptiveField:
    """Measure the field of one unit of ``layer`` as the support of its input gradient.

    ``linearize=True`` (the check of :func:`receptive_field`): the model runs, in float64,
    as if its weights were positive averages, its nonlinearities, batch norm and dropout the
    identity and its max-pooling average pooling, so that exactly the pixels inside the
    theoretical field get a non-zero gradient. ``linearize=False`` keeps the real model: the gradient magnitude is
    the *effective* receptive field (Luo et al., 2016), averaged over ``images``, a
    normalised (N, C, H, W) batch (default: one seeded noise image of ``input_size``).
    ``unit``: (i, j) in the layer's (H', W') map; default the centre ``(H' // 2, W' // 2)``.
    The model itself is never changed.
    """
    path = resolve_layer(model, layer)
    dtype = torch.float64 if linearize else None
    if images is None:
        x = _blank(model, input_size, dtype, noise=True)
    else:
        x = images.detach().to(model_device(model), dtype or images.dtype)
    x = x.requires_grad_(True)
    surrogate = _Linearized() if linearize else contextlib.nullcontext()
    with torch.enable_grad(), surrogate, Capture(model, [path], clone=False, stop=True) as cap:
        model(x)
    y = cap.outputs[path]
    if y.ndim != 4:
        raise ValueError(f"layer '{layer}' gives shape {tuple(y.shape)}, not a (N, C, H, W) map.")
    i, j = unit if unit is not None else (y.shape[2] // 2, y.shape[3] // 2)
    if not (0 <= i < y.shape[2] and 0 <= j < y.shape[3]):
        raise ValueError(f"unit {(i, j)} is outside the {y.shape[2]}×{y.shape[3]} map of '{layer}'.")
    (g,) = torch.autograd.grad(y[:, :, i, j].sum(), x)
    mag = g.detach().abs().sum(1).mean(0).cpu()
    rows, cols = (mag > 0).any(1).nonzero().flatten(), (mag > 0).any(0).nonzero().flatten()
    if len(rows) == 0:
        box = (0, 0, 0, 0)
    else:
        box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return EmpiricalReceptiveField((int(i), int(j)), box, mag)
