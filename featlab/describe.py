"""A model's layers, their output shapes and parameter counts, from one dummy forward pass.

Taught in ``notebooks/13_debugging.ipynb`` (the first tool to reach for when a shape error,
such as "mat1 and mat2 shapes cannot be multiplied", appears).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from .models import model_device

__all__ = ["LayerRow", "describe"]


@dataclass(frozen=True)
class LayerRow:
    """One line of :func:`describe`: a module's path, type, output shape (N, C, H, W) and
    parameter count (its own and its children's, as ``sum(p.numel() for p in m.parameters())``).

    ``calls`` counts how often the module ran in the pass (a shared ReLU runs several times;
    ``output_shape`` is that of the first call). A module returning a tuple/list has a tuple of
    shapes; one returning something else has ``None``.
    """
    path: str
    type: str
    output_shape: tuple | None
    params: int
    calls: int = 1


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    return None


def _check_input_size(model: nn.Module, input_size) -> tuple[int, int, int]:
    first = _first_conv(model)
    expects = (f" (The first convolution, '{first[0]}' ({type(first[1]).__name__}), expects "
               f"C = {first[1].in_channels} channels.)" if first else "")
    if isinstance(input_size, int) or not isinstance(input_size, (tuple, list)):
        raise ValueError(f"input_size should be (C, H, W), e.g. (3, 224, 224); got {input_size!r}.{expects}")
    size = tuple(input_size)
    if len(size) == 2:
        raise ValueError(f"input_size={size} has 2 numbers; give (C, H, W) with the channels first, "
                         f"e.g. (3, {size[0]}, {size[1]}).{expects}")
    if len(size) == 4:
        raise ValueError(f"input_size={size} has 4 numbers; give one picture's (C, H, W) without the "
                         f"batch dimension, e.g. {size[1:]} (batch_size= sets N).{expects}")
    if len(size) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise ValueError(f"input_size should be three positive ints (C, H, W), e.g. (3, 224, 224); "
                         f"got {size}.{expects}")
    if first is not None and size[0] != first[1].in_channels:
        name, conv = first
        want = ((size[2], size[0], size[1]) if size[2] == conv.in_channels
                else (conv.in_channels, size[1], size[2]))
        order = " (this looks like (H, W, C): put the channels first)" if size[2] == conv.in_channels else ""
        raise ValueError(f"input_size={size} has C = {size[0]} channel(s), but the first convolution "
                         f"'{name}' ({type(conv).__name__}({conv.in_channels}, {conv.out_channels}, ...)) "
                         f"expects {conv.in_channels}{order}. Use input_size={want}, or change that layer "
                         "(a model for grayscale input: notebook 13).")
    return size  # type: ignore[return-value]


def _shape(out) -> tuple | None:
    if isinstance(out, torch.Tensor):
        return tuple(out.shape)
    if isinstance(out, (tuple, list)):
        return tuple(_shape(o) for o in out)
    return None


class _Recorder:
    """Forward pre/post hooks on every module: call order, first output shapes, call counts,
    and the stack of modules running (to name the one a failing pass was in)."""

    def __init__(self, model: nn.Module):
        self.named = list(model.named_modules())
        self.order: list[str] = []
        self.shapes: dict[str, tuple | None] = {}
        self.calls: dict[str, int] = {}
        self.stack: list[tuple[str, nn.Module, tuple]] = []
        self.handles: list = []

    def _pre(self, name: str):
        def hook(module, inputs):
            if name not in self.calls:
                self.order.append(name)
                self.calls[name] = 0
            self.calls[name] += 1
            self.stack.append((name, module, tuple(_shape(i) for i in inputs)))
        return hook

    def _post(self, name: str):
        def hook(_module, _inputs, out):
            self.shapes.setdefault(name, _shape(out))
            if self.stack and self.stack[-1][0] == name:
                self.stack.pop()
        return hook

    @contextmanager
    def hooked(self) -> Iterator["_Recorder"]:
        try:
            for name, m in self.named:
                self.handles.append(m.register_forward_pre_hook(self._pre(name)))
                self.handles.append(m.register_forward_hook(self._post(name)))
            yield self
        finally:
            for h in self.handles:
                h.remove()
            self.handles.clear()


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode inside the block; each module's own train/eval flag restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def _format(rows: list[LayerRow], x_shape: tuple, total: int, trainable: int) -> str:
    def shape_text(s):
        return "-" if s is None else str(s)
    w_path = max([len("layer")] + [len(r.path) for r in rows])
    w_type = max([len("type")] + [len(r.type) + (5 if r.calls > 1 else 0) for r in rows])
    w_shape = max([len("output shape"), len(str(x_shape))] + [len(shape_text(r.output_shape)) for r in rows])
    lines = [f"{'layer':{w_path}}  {'type':{w_type}}  {'output shape':{w_shape}}  {'params':>11}",
             f"{'(input)':{w_path}}  {'':{w_type}}  {str(x_shape):{w_shape}}"]
    for r in rows:
        kind = r.type + (f" (×{r.calls})" if r.calls > 1 else "")
        lines.append(f"{r.path:{w_path}}  {kind:{w_type}}  {shape_text(r.output_shape):{w_shape}}  {r.params:>11,}")
    lines = [line.rstrip() for line in lines]
    lines.append(f"total params: {total:,} (trainable {trainable:,})")
    return "\n".join(lines)


def describe(model: nn.Module, input_size=(3, 224, 224), depth: int | None = 2, *,
             batch_size: int = 1, verbose: bool = True) -> list[LayerRow]:
    """Each layer's module path, type, output shape (N, C, H, W) and parameter count.

    Runs one forward pass of a zero batch (``batch_size``, *input_size*) on the model's device
    and dtype, in eval mode and without gradients, with hooks that are always removed (also
    when the pass fails); the model's train/eval flags are restored. Rows follow the order in
    which modules run; modules that never run are left out. ``depth`` keeps module paths of at
    most that many parts (``depth=1``: ``layer1``, ``fc``; ``2``: also ``layer1.0``; ``None``: all).
    Prints the table with the total parameter count (``verbose=False``: silent) and returns
    the rows as a list of :class:`LayerRow`.

    ``input_size`` is one picture's ``(C, H, W)``; C must match the first convolution. If the
    forward pass fails (a shape error), the error names the module it failed in, the input
    shapes it received, and the last layers that did run.
    """
    if depth is not None and (not isinstance(depth, int) or depth < 1):
        raise ValueError(f"depth should be a positive int (1 = top-level layers) or None (all); got {depth!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size should be a positive int; got {batch_size!r}.")
    size = _check_input_size(model, input_size)
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    x = torch.zeros(batch_size, *size, device=model_device(model), dtype=dtype)
    rec = _Recorder(model)
    modules = dict(rec.named)
    with _eval_mode(model), torch.no_grad(), rec.hooked():
        try:
            model(x)
        except Exception as err:  # name the layer the pass failed in, then re-raise
            raise RuntimeError(_failure_text(model, rec, tuple(x.shape), err, depth)) from err
    rows = []
    for name in rec.order:
        if not name or (depth is not None and name.count(".") + 1 > depth):
            continue
        m = modules[name]
        rows.append(LayerRow(name, type(m).__name__, rec.shapes.get(name),
                             sum(p.numel() for p in m.parameters()), rec.calls[name]))
    if verbose:
        total = sum(p.numel() for p in model.parameters())
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        print(_format(rows, tuple(x.shape), total, trainable))
    return rows


def _failure_text(model: nn.Module, rec: _Recorder, x_shape: tuple, err: Exception, depth: int | None) -> str:
    if rec.stack:
        name, module, inputs = rec.stack[-1]
        text = repr(module) if not list(module.children()) else type(module).__name__
        where = (f"in '{name}' ({text})" if name else f"in {type(model).__name__}.forward itself "
                 "(a functional op between layers, e.g. torch.flatten)")
        got = ", ".join(str(s) for s in inputs)
        place = f"The forward pass of a {x_shape} batch failed {where}, whose input had shape {got}."
    else:
        place = f"The forward pass of a {x_shape} batch failed before any layer ran."
    ran = [(n, rec.shapes[n]) for n in rec.order
           if n and n in rec.shapes and (depth is None or n.count(".") < depth)][-3:]
    last = "; ".join(f"'{n}' -> {s}" for n, s in ran)
    return (f"{place}\nLast layers that ran: {last or 'none'}.\n{type(err).__name__}: {err}\n"
            "Fix: change input_size, or the layer so that it takes the shape it receives "
            "(e.g. pool before a Linear head).")
