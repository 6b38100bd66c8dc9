"""ArcFace: an additive angular margin on the target class, for embeddings that cluster by angle.

Taught in ``notebooks/08_arcface.ipynb``. Deng et al., "ArcFace: Additive Angular Margin Loss
for Deep Face Recognition", CVPR 2019.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ArcFace"]


class ArcFace(nn.Module):
    """Logits ``s·cos(θ_y + m)`` for the target class and ``s·cos θ_j`` for the others.

    ``weight``: (num_classes, in_features), one class centre per row, as in ``nn.Linear``.
    ``forward(embeddings (N, in_features), labels (N,) or None) -> logits (N, num_classes)``
    for ``F.cross_entropy``. cos θ_j is the cosine between the L2-normalised embedding and the
    L2-normalised row j. The target class gets ``s·cos(θ_y + m)`` while ``θ_y + m ≤ π``, else
    ``s·(cos θ_y − m·sin m)``, which keeps the logit decreasing in θ_y (a plain cos(θ + m) would
    rise again past π); at θ_y = π − m it steps down by ``s·(cos m + m·sin m − 1)`` (7.51 for
    s=64, m=0.5). ``easy_margin=True`` adds the margin only where cos θ_y > 0.
    ``labels=None`` (inference) gives ``s·cos θ`` for every class.
    """

    def __init__(self, in_features: int, num_classes: int, s: float = 64.0, m: float = 0.5,
                 easy_margin: bool = False):
        super().__init__()
        if in_features < 1 or num_classes < 2:
            raise ValueError(f"need in_features >= 1 and num_classes >= 2; got {in_features}, {num_classes}.")
        if s <= 0 or not 0 <= m < math.pi / 2:
            raise ValueError(f"need s > 0 and 0 <= m < π/2 (radians); got s={s}, m={m}.")
        self.in_features, self.num_classes = in_features, num_classes
        self.s, self.m, self.easy_margin = float(s), float(m), easy_margin
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.xavier_uniform_(self.weight)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, num_classes={self.num_classes}, s={self.s}, "
                f"m={self.m}, easy_margin={self.easy_margin}")

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(N, in_features) -> (N, num_classes) cosines between embeddings and class centres."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.in_features:
            raise ValueError(f"embeddings must be (N, {self.in_features}); got {tuple(embeddings.shape)}.")
        return F.linear(F.normalize(embeddings), F.normalize(self.weight))

    def margin(self, cos: torch.Tensor) -> torch.Tensor:
        """cos θ -> cos(θ + m) with the fallback above (elementwise, no scale)."""
        # sin θ = sqrt(1 - cos²) >= 0 for θ in [0, π]; its derivative is infinite at cos = ±1,
        # so take the root only where it is positive (the other branch's gradient is then 0)
        sin_sq = 1.0 - cos * cos
        sin = torch.where(sin_sq > 0, sin_sq.clamp_min(1e-30).sqrt(), torch.zeros_like(sin_sq))
        shifted = cos * math.cos(self.m) - sin * math.sin(self.m)
        if self.easy_margin:
            return torch.where(cos > 0, shifted, cos)
        # θ + m <= π  <=>  cos θ >= cos(π - m)
        return torch.where(cos >= math.cos(math.pi - self.m), shifted, cos - self.m * math.sin(self.m))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cos = self.cosine(embeddings)
        if labels is None:
            return self.s * cos
        labels = torch.as_tensor(labels, device=cos.device).long()
        if labels.shape != (cos.shape[0],):
            raise ValueError(f"labels must be ({cos.shape[0]},), one class per embedding; got {tuple(labels.shape)}.")
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must lie in 0 … {self.num_classes - 1}; got {labels.min()} … {labels.max()}.")
        target = F.one_hot(labels, self.num_classes).bool()
        return self.s * torch.where(target, self.margin(cos), cos)
