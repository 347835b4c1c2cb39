"""Classification losses for imbalanced data: weighted cross-entropy and focal loss."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from src.training.config import ImbalanceSettings


def class_weights(counts: list[int]) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (absent classes get weight 0)."""
    counts_t = torch.tensor(counts, dtype=torch.float32)
    weights = torch.where(counts_t > 0, counts_t.sum() / counts_t.clamp(min=1), 0.0)
    present = (counts_t > 0).sum().clamp(min=1)
    return weights * present / weights.sum().clamp(min=1e-12)


class FocalLoss(nn.Module):
    """Multi-class focal loss (Lin et al. 2017): CE scaled by (1 - p_t)^gamma.

    alpha (binary convention) weights the positive class (index 1) by alpha and the others
    by 1 - alpha; per-class `weight` (e.g. inverse frequency) multiplies on top.
    """

    def __init__(self, gamma: float = 2.0, alpha: float | None = None,
                 weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha
        self.register_buffer("weight", weight if weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits, dim=1)
        log_pt = log_p.gather(1, target[:, None]).squeeze(1)
        loss = -((1 - log_pt.exp()) ** self.gamma) * log_pt
        if self.alpha is not None:
            loss = loss * torch.where(target == 1, self.alpha, 1 - self.alpha)
        if self.weight is not None:
            loss = loss * self.weight.to(logits.device)[target]
        return loss.mean()


def build_loss(settings: ImbalanceSettings, train_counts: list[int]) -> nn.Module:
    """The loss an ImbalanceSettings asks for, given the training split's class counts."""
    weight = class_weights(train_counts) if settings.class_weights else None
    if settings.focal_loss:
        return FocalLoss(settings.focal_gamma, settings.focal_alpha, weight)
    return nn.CrossEntropyLoss(weight=weight)


def describe_loss(settings: ImbalanceSettings) -> str:
    """The loss in words, for reports."""
    name = (f"focal loss (gamma={settings.focal_gamma}, alpha={settings.focal_alpha})"
            if settings.focal_loss else "cross-entropy")
    if settings.class_weights:
        name += " weighted by inverse class frequency"
    return name
