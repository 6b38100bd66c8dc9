"""Checks for ``exercises/02_*.ipynb`` (receptive fields; notebook ``notebooks/02_*``)."""
from __future__ import annotations

import functools

import torch

from ..i18n import _
from ._common import ExerciseError, _describe, _int, _items, _ok, learner_check

__all__ = ['check_rf_recursion', 'check_rf_full', 'check_unit_span']


def _rf_stacks(seed: int, n: int = 6):
    """Random layer stacks [(kernel, stride, padding, dilation), ...] for the 02 checks."""
    g = torch.Generator().manual_seed(seed)
    pick = lambda hi: int(torch.randint(1, hi + 1, (1,), generator=g))  # noqa: E731
    stacks = [[(3, 1, 1, 1), (2, 2, 0, 1), (3, 1, 1, 1)]]
    for __ in range(n):
        stacks.append([(pick(5), pick(2), pick(2) - 1, pick(2)) for __ in range(pick(4) + 1)])
    return stacks


@functools.cache
def _rf_reference_cached(layers: tuple, size: int):
    return _rf_reference_uncached(layers, size)


def _rf_reference(layers, size: int = 40):
    """featlab's (R, S, P) per layer and the last ReceptiveField (cached: the checks ask often)."""
    return _rf_reference_cached(tuple(map(tuple, layers)), size)


def _rf_reference_uncached(layers, size: int = 40):
    """featlab's (R, S, P) after each layer of a conv stack, for a ``size``×``size`` input
    (enlarged when the stack needs more), and the last layer's ReceptiveField."""
    from torch import nn
    from ..receptive import receptive_field

    r, s = 1, 1
    for k, st, __, d in layers:          # only to make the input large enough for the stack
        r, s = r + d * (k - 1) * s, s * st
    size = max(size, r)
    model = nn.Sequential(*[nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d) for k, s, p, d in layers])
    rfs = [receptive_field(model, str(i), size) for i in range(len(layers))]
    return [(rf.size[0], rf.stride[0], rf.padding[0]) for rf in rfs], rfs[-1]


def _as_triples(value, what: str, n: int, width: int) -> list:
    if value is None:
        raise ExerciseError(_("{what} returned None: fill in the TODO.").format(what=what))
    shape_error = ExerciseError(_("{what} should return a list of {n} tuples of {width} ints, one per layer; "
                                  "got {given}.").format(what=what, n=n, width=width, given=_describe(value)))
    rows = _items(value)
    if rows is None or len(rows) != n or any(_items(r) is None or len(_items(r)) != width for r in rows):
        raise shape_error
    return [tuple(_int(v, _("{what}: a value after layer {i}").format(
                            what=what, i=i)) for v in _items(row)) for i, row in enumerate(rows)]


@learner_check
def check_rf_recursion(rf_recursion) -> None:
    """``rf_recursion(layers)``: [(kernel, stride), ...] -> [(R, S) after each layer]."""
    for layers in _rf_stacks(21):
        want, __ = _rf_reference([(k, s, 0, 1) for k, s, __, __ in layers])
        ks = [(k, s) for k, s, __, __ in layers]
        got = _as_triples(rf_recursion(ks), f"rf_recursion({ks})", len(ks), 2)
        for i, ((r, s), (wr, ws, __)) in enumerate(zip(got, want)):
            if (r, s) != (wr, ws):
                raise ExerciseError(
                    _("rf_recursion({ks}): after layer {i} you give R={r}, S={s}; featlab says R={wr}, S={ws}. "
                      "Remember R grows by (k - 1) times the stride *before* the layer, and S multiplies by "
                      "the layer's stride afterwards.").format(ks=ks, i=i, r=r, s=s, wr=wr, ws=ws))
    _ok(_("rf_recursion gives size and stride of every layer"))


@learner_check
def check_rf_full(rf_full) -> None:
    """``rf_full(layers)``: [(kernel, stride, padding, dilation), ...] -> [(R, S, P) per layer]."""
    for layers in _rf_stacks(22):
        want, __ = _rf_reference(layers)
        got = _as_triples(rf_full(layers), f"rf_full({layers})", len(layers), 3)
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                hint = (_("the effective padding grows by p times the stride before the layer")
                        if g[:2] == w[:2] else _("a dilated kernel spans d (k - 1) + 1 pixels"))
                raise ExerciseError(_("rf_full({layers}): after layer {i} you give (R, S, P) = {g}; featlab "
                                      "says {w}. Hint: {hint}.").format(layers=layers, i=i, g=g, w=w, hint=hint))
    _ok(_("rf_full gives size, stride and effective padding, with dilation"))


@learner_check
def check_unit_span(unit_span) -> None:
    """``unit_span(R, S, P, i, n)``: the pixels [start, stop) of unit i, clipped to 0..n."""
    for layers in _rf_stacks(23):
        __, rf = _rf_reference(layers, 40)
        (r, s, p), n, units = (rf.size[0], rf.stride[0], rf.padding[0]), rf.input_size[0], rf.output_size[0]
        for i in sorted({0, units // 2, units - 1}):
            want = rf.box(i, i, clip=True)[0::2]                    # (x0, x1): the columns of unit i
            what = f"unit_span(R={r}, S={s}, P={p}, i={i}, n={n})"
            got = unit_span(r, s, p, i, n)
            if got is None:
                raise ExerciseError(_("unit_span returned None: fill in the TODO."))
            if _items(got) is None or len(_items(got)) != 2:
                raise ExerciseError(_("{what} should return two ints (start, stop); got {given}.").format(
                                      what=what, given=_describe(got)))
            got = tuple(_int(v, _("{what}: start or stop").format(what=what)) for v in _items(got))
            if got != want:
                raw = rf.box(i, i)[0::2]
                if got == raw:
                    raise ExerciseError(_("unit_span(R={r}, S={s}, P={p}, i={i}, n={n}) gave {raw}: right "
                                          "field, but clip it to the image: expected {want}.").format(
                                                  r=r, s=s, p=p, i=i, n=n, raw=raw, want=want))
                raise ExerciseError(
                    _("unit_span(R={r}, S={s}, P={p}, i={i}, n={n}) gave {got}; expected {want} (before "
                      "clipping to the image: {raw}). Unit i starts at -P + i*S and covers R pixels; stop is "
                      "excluded.").format(r=r, s=s, p=p, i=i, n=n, got=tuple(got), want=want, raw=raw))
    _ok(_("unit_span locates every unit's field, clipped to the image"))
