"""Checks for ``exercises/10_*.ipynb`` (feature distance (FID); notebook ``notebooks/10_*``)."""
from __future__ import annotations

from ._common import ExerciseError, _close, _ok, _tensor  # noqa: F401

__all__: list[str] = []
