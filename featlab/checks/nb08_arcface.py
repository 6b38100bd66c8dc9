"""Checks for ``exercises/08_*.ipynb`` (ArcFace; notebook ``notebooks/08_*``)."""
from __future__ import annotations

from ._common import ExerciseError, _close, _ok, _tensor  # noqa: F401

__all__: list[str] = []
