"""Checks for ``exercises/09_*.ipynb`` (Fisher criterion; notebook ``notebooks/09_*``)."""
from __future__ import annotations

from ._common import ExerciseError, _close, _ok, _tensor  # noqa: F401

__all__: list[str] = []
