"""Checks for ``exercises/07_*.ipynb`` (embeddings and retrieval; notebook ``notebooks/07_*``)."""
from __future__ import annotations

from ._common import ExerciseError, _close, _ok, _tensor  # noqa: F401

__all__: list[str] = []
