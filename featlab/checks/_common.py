"""What every exercise check shares: the error type, the ✓ line and the comparisons."""
from __future__ import annotations

import functools
import math
import numbers

import numpy as np
import torch

from ..i18n import _


class ExerciseError(AssertionError):
    """The learner's answer is not right yet; the message says in what way."""


def _call(fn, what: str, *args, **kwargs):
    """Run the learner's code; an exception inside it becomes an ExerciseError (status fail) that
    names the exception and the call ``what`` that raised it. The one path by which every check
    calls learner code (through :func:`learner_check`, or directly for objects the learner returned)."""
    try:
        return fn(*args, **kwargs)
    except ExerciseError:
        raise
    except Exception as e:  # noqa: BLE001  (any mistake in the learner's code is feedback)
        text = " ".join(str(e).split())
        text = text if len(text) <= 240 else text[:237] + "..."
        raise ExerciseError(_("{what} raised {type_name}: {text} (the error is inside your function: fix it "
                              "and run the cell again).").format(
                                      what=what, type_name=type(e).__name__, text=text or _("(no message)"))) from e


def _describe(value) -> str:
    """A short, one-line description of an argument, for the call named in an error."""
    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}" if value.ndim else repr(value.item())
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    if isinstance(value, torch.nn.Module):
        return type(value).__name__
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in value.items()) + "}"
    if callable(value):
        return getattr(value, "__name__", type(value).__name__)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _arrays(args, kwargs) -> list[tuple[str, object]]:
    """The tensors and arrays among a call's arguments (also inside dicts), with a label each."""
    found = []
    for label, value in [(_("argument {i}").format(i=i + 1), a) for i, a in enumerate(args)] + list(kwargs.items()):
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for key, v in items:
            if isinstance(v, (torch.Tensor, np.ndarray)):
                found.append((label if key is None else f"{label}[{key!r}]", v))
    return found


def _copy(v):
    return v.detach().clone() if isinstance(v, torch.Tensor) else v.copy()


def _unchanged(before, after) -> bool:
    if isinstance(after, torch.Tensor):
        return tuple(before.shape) == tuple(after.shape) and bool(torch.equal(before, after.detach()))
    return before.shape == after.shape and bool(np.array_equal(before, after, equal_nan=after.dtype.kind in "fc"))


class _Learner:
    """The learner's function, called only through :func:`_call`: an exception raised inside it
    becomes an ExerciseError naming the call, e.g. ``conv_output_size(224, 3, 1, 1, 1) raised ...``;
    unless ``in_place`` is allowed, changing a tensor or array it was given is a mistake too."""

    def __init__(self, fn, name: str, in_place: bool = False):
        self.fn, self.__name__, self.in_place = fn, name, in_place
        self.__wrapped__ = fn

    def __call__(self, *args, **kwargs):
        parts = [_describe(a) for a in args] + [f"{k}={_describe(v)}" for k, v in kwargs.items()]
        what = f"{self.__name__}({', '.join(parts)})"
        given = [] if self.in_place else [(label, v, _copy(v)) for label, v in _arrays(args, kwargs)]
        out = _call(self.fn, what, *args, **kwargs)
        for label, v, before in given:
            if not _unchanged(before, v):
                raise ExerciseError(_("{what} changed its input ({label}) in place (an x /= ..., x -= ..., "
                                      "x[...] = ... or a method ending in _, such as fill_diagonal_): the "
                                      "caller's data must stay as it was, so work on a copy (x.clone(), "
                                      "x.copy()) or write x = x / ... instead.").format(what=what, label=label))
        return out


def learner_check(check=None, *, in_place: bool = False):
    """Decorator of every ``check_*``: its argument, the learner's function, is called through
    :func:`_call`, so a mistake that raises inside it is a failed check, never a crash of the check,
    and (unless ``in_place=True``) a function that changes its inputs fails too."""
    if check is None:
        return functools.partial(learner_check, in_place=in_place)
    default = check.__name__.removeprefix("check_")

    @functools.wraps(check)
    def wrapper(fn, *args, **kwargs):
        if callable(fn) and not isinstance(fn, _Learner):
            name = getattr(fn, "__name__", "")
            fn = _Learner(fn, name if name.isidentifier() else default, in_place)
        return check(fn, *args, **kwargs)

    return wrapper


def _ok(msg: str) -> None:
    print(f"✓ {msg}")


def _tensor(value, what: str) -> torch.Tensor:
    if value is None:
        raise ExerciseError(_("{what} returned None: fill in the TODO.").format(what=what))
    if not isinstance(value, torch.Tensor):
        raise ExerciseError(_("{what} should return a torch.Tensor; got {type_name}.").format(
                              what=what, type_name=type(value).__name__))
    return value


def _close(got: torch.Tensor, want: torch.Tensor, what: str, atol: float = 1e-4, rtol: float = 1e-4) -> None:
    got = _tensor(got, what)
    if tuple(got.shape) != tuple(want.shape):
        raise ExerciseError(_("{what}: shape {got_shape}, expected {want_shape}.").format(
                              what=what, got_shape=tuple(got.shape), want_shape=tuple(want.shape)))
    if not torch.allclose(got.float().cpu(), want.float().cpu(), atol=atol, rtol=rtol):
        err = (got.float().cpu() - want.float().cpu()).abs().max().item()
        raise ExerciseError(_("{what}: values differ from the reference (max abs error {err:.3g}).").format(
                              what=what, err=err))


def _same(got: torch.Tensor, want: torch.Tensor, atol: float = 1e-4) -> bool:
    """Same shape and values (float64 comparison): for testing a learner's answer against
    the right one and against plausible wrong ones."""
    return tuple(got.shape) == tuple(want.shape) and bool(
        torch.allclose(got.double().cpu(), want.double().cpu(), atol=atol, rtol=1e-4))


def _scalar(value, what: str, many_hint: str = "", nan_hint: str = "", complex_hint: str = "") -> float:
    """A learner's one number (Python/NumPy number, one-element array or tensor) -> float.

    Raises ExerciseError for None, several numbers (then ``many_hint``), a complex number
    (``complex_hint``), a non-number, NaN or infinity (``nan_hint``)."""
    if value is None:
        raise ExerciseError(_("{what} returned None: fill in the TODO.").format(what=what))
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)):
        raise ExerciseError(_("{what} should be a number (one number, a float); got a {type_name} of length "
                              "{n_value}.").format(what=what, type_name=type(value).__name__, n_value=len(value)))
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ExerciseError(_("{what} should be one number; got an array of shape {value_shape}. "
                                  "{many_hint}").format(
                                          what=what, value_shape=value.shape, many_hint=many_hint).rstrip())
        value = value.reshape(()).item()
    if isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real):
        raise ExerciseError(_("{what} is a complex number ({value:.6g}). {complex_hint}").format(
                              what=what, value=value, complex_hint=complex_hint).rstrip())
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ExerciseError(_("{what} should be a number (one number, a float); got {type_name}.").format(
                              what=what, type_name=type(value).__name__))
    value = float(value)
    if not math.isfinite(value):
        raise ExerciseError(_("{what} is {value}. {nan_hint}").format(
                              what=what, value=value, nan_hint=nan_hint).rstrip())
    return value


def _near(got: float, want: float, rtol: float, atol: float) -> bool:
    return math.isclose(got, want, rel_tol=rtol, abs_tol=atol)


def _diagnose(got: float, want: float, wrong: list[tuple[str, float]], what: str,
              rtol: float, atol: float) -> None:
    """Pass if got ≈ want; else raise the hint of the first plausible mistake ``(hint, value)``
    that got equals, or a plain 'expected' message."""
    if _near(got, want, rtol, atol):
        return
    for hint, value in wrong:
        if _near(got, value, rtol, atol):
            raise ExerciseError(_("{what} = {got:.6g}, expected {want:.6g}: {hint}").format(
                                  what=what, got=got, want=want, hint=hint))
    raise ExerciseError(_("{what} = {got:.6g}, expected {want:.6g}.").format(what=what, got=got, want=want))


def _pair(out, what: str, names: str) -> tuple:
    """A learner's two return values, e.g. ``(mu, cov)``; ExerciseError for None or anything else."""
    if out is None:
        raise ExerciseError(_("{what} returned None: fill in the TODO.").format(what=what))
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ExerciseError(_("{what} should return two things, {names}; got {type_name}.").format(
                              what=what, names=names, type_name=type(out).__name__))
    return tuple(out)


def _int(value, what: str) -> int:
    """A learner's whole number (int, NumPy integer, one-element integer tensor) -> int;
    ExerciseError for None, floats (even 224.0), bools and anything else."""
    if value is None:
        raise ExerciseError(_("{what} returned None: fill in the TODO.").format(what=what))
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0:
        value = value.item()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        raise ExerciseError(_("{what} = {value!r} is a float; return an int (use floor division //, or "
                              "int(...)).").format(what=what, value=value))
    if hasattr(value, "shape"):
        raise ExerciseError(_("{what} should be an int; got {type_name} of shape {shape}.").format(
            what=what, type_name=type(value).__name__, shape=tuple(value.shape)))
    raise ExerciseError(_("{what} should be an int; got {type_name}.").format(
                          what=what, type_name=type(value).__name__))


def _items(value) -> list | None:
    """The elements of a list, tuple, or 1-d-or-more tensor/array, as a list; None for anything else
    (a number, a 0-d tensor, a string, a dict)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim >= 1:
        return list(value)
    return None


def _bool(value, what: str) -> bool:
    """A learner's yes/no (bool, NumPy bool, one-element bool/0-1 tensor) -> bool; ExerciseError otherwise."""
    if value is None:
        raise ExerciseError(_("{what} returned None: fill in the TODO.").format(what=what))
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise ExerciseError(_("{what} should return True or False; got {given}.").format(
                          what=what, given=_describe(value)))
