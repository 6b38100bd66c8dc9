"""What every exercise check shares: the error type, the ✓ line and the comparisons."""
from __future__ import annotations

import torch

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
