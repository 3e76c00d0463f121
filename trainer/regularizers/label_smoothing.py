"""Label smoothing, in the shape of transformers' ``LabelSmoother``: a small callable."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LabelSmoother:
    """Cross-entropy against (1 - epsilon) one-hot + epsilon uniform over the classes.
    Labels equal to ``ignore_index`` are left out of the mean."""

    epsilon: float = 0.1
    ignore_index: int = -100

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon < 1.0:
            raise ValueError("epsilon must lie in [0, 1)")

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        keep = labels != self.ignore_index
        log_probs = F.log_softmax(logits[keep].float(), dim=-1)
        target = labels[keep]
        nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        uniform = -log_probs.mean(dim=-1)
        return ((1.0 - self.epsilon) * nll + self.epsilon * uniform).mean()
