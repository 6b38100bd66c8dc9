"""Folding batch normalisation into the convolution before it, for inference.

In evaluation mode a ``BatchNorm2d`` after a ``Conv2d`` is an affine map per channel,
``y = (conv(x) - mean) / sqrt(var + eps) * gamma + beta``, so it can be merged into the
convolution's weights and bias: one pass over the feature map instead of two. On a CPU,
where eager PyTorch runs each as its own kernel, this makes EfficientNet-Lite0's forward pass
markedly faster (``benchmarks/README.md``); the results equal the unfolded model's up to
float rounding (tested in ``tests/test_fold.py``).

:func:`fold_batchnorm` changes the model it is given: :class:`featlab.FeatureExtractor`
calls it on its own copy, never on the caller's model.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["conv_bn_pairs", "fold_batchnorm"]

_BN = nn.modules.batchnorm._BatchNorm


class _Tracer(torch.fx.Tracer):
    """Symbolic tracing that stops at convolutions and batch norms (and timm's ``Conv2dSame``,
    whose padding depends on the input size): only which module feeds which matters here."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, (nn.Conv2d, _BN)) or super().is_leaf_module(m, qualname)


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """``[(conv, batchnorm)]`` module paths where the batch norm's only input is the convolution
    and nothing else reads the convolution's output. Empty if the model cannot be traced
    symbolically (``torch.fx``: data-dependent control flow, compiled models)."""
    try:
        graph = _Tracer().trace(model)
    except Exception:  # not traceable: nothing is folded
        return []
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), _BN) or len(node.args) != 1:
            continue
        src = node.args[0]
        if (isinstance(src, torch.fx.Node) and src.op == "call_module" and len(src.users) == 1
                and type(modules.get(src.target)) in _CONVS):
            pairs.append((src.target, node.target))
    # a module called at two places in the graph cannot be folded for one of them
    seen = [n.target for n in graph.nodes if n.op == "call_module"]
    return [(c, b) for c, b in pairs if seen.count(c) == 1 and seen.count(b) == 1]


def _convs() -> tuple[type, ...]:
    kinds: list[type] = [nn.Conv2d]
    try:
        from timm.layers import Conv2dSame  # pads, then runs Conv2d.forward: the same linear map
        kinds.append(Conv2dSame)
    except ImportError:
        pass
    return tuple(kinds)


_CONVS = _convs()


def _after_bn(bn: nn.Module) -> nn.Module:
    """What remains of a batch norm once folded: nothing, or the activation timm's
    ``BatchNormAct2d`` applies after it (its ``drop`` and ``act``)."""
    rest = [getattr(bn, name) for name in ("drop", "act") if isinstance(getattr(bn, name, None), nn.Module)]
    rest = [m for m in rest if not isinstance(m, nn.Identity)]
    if not rest:
        return nn.Identity()
    return rest[0] if len(rest) == 1 else nn.Sequential(*rest)


def fold_batchnorm(model: nn.Module, keep: Sequence[str] = ()) -> int:
    """Fold every batch norm that directly follows a convolution into it, in place; returns how
    many were folded. Only in evaluation mode (a batch norm in training mode normalises with
    the batch's statistics: nothing is folded then). ``keep``: module paths whose output must
    stay as it is (layers whose features are read): a convolution among them, or a module
    inside a folded batch norm, keeps its pair unfolded."""
    if model.training:
        return 0
    modules = dict(model.named_modules())
    folded = 0
    for conv_name, bn_name in conv_bn_pairs(model):
        conv, bn = modules[conv_name], modules[bn_name]
        if (conv_name in keep or any(k.startswith(bn_name + ".") for k in keep) or bn.training
                or not bn.track_running_stats or bn.running_mean is None or conv.weight.shape[0] != bn.num_features):
            continue
        with torch.no_grad():
            scale = torch.rsqrt(bn.running_var.double() + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight.double()
            shift = -bn.running_mean.double() * scale
            if bn.bias is not None:
                shift = shift + bn.bias.double()
            if conv.bias is not None:
                shift = shift + conv.bias.double() * scale
            w = conv.weight
            conv.weight.copy_((w.double() * scale.view(-1, *[1] * (w.ndim - 1))).to(w.dtype))
            conv.bias = nn.Parameter(shift.to(w.dtype), requires_grad=False)
        parent, _, attr = bn_name.rpartition(".")
        setattr(modules[parent] if parent else model, attr, _after_bn(bn))
        folded += 1
    return folded
