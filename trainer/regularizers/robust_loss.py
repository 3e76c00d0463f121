"""Losses under which a model fits wrong labels late or not at all.

- Generalized cross-entropy (Zhang & Sabuncu, 2018): ``(1 - p_y^q) / q``; q -> 0 is
  cross-entropy, q = 1 the mean absolute error, which is noise-tolerant but slow to train.
- Early-learning regularization (Liu et al., 2020): cross-entropy plus
  ``weight * log(1 - <p, t>)``, with t a running average of the model's own (detached)
  predictions for the same record. Early in training the predictions follow the clean signal,
  so t stays near the true class for a mislabelled record and the term resists memorising its
  wrong label.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F


def generalized_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, q: float) -> torch.Tensor:
    if not 0.0 < q <= 1.0:
        raise ValueError("q must lie in (0, 1]")
    p_y = F.softmax(logits.float(), dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return ((1.0 - p_y.clamp(min=1e-7).pow(q)) / q).mean()


class EarlyLearning:
    """ELR's per-record targets, kept by record id (variants of a record share its target)."""

    def __init__(self, n_classes: int, beta: float = 0.7, weight: float = 3.0) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError("beta must lie in [0, 1)")
        self.n_classes = n_classes
        self.beta = beta
        self.weight = weight
        self.targets: dict[str, torch.Tensor] = {}

    def __call__(
        self, logits: torch.Tensor, labels: torch.Tensor, ids: Sequence[str]
    ) -> torch.Tensor:
        probs = F.softmax(logits.float(), dim=-1).clamp(1e-4, 1.0 - 1e-4)
        detached = (probs / probs.sum(dim=-1, keepdim=True)).detach().cpu()
        targets = []
        for record, p in zip(ids, detached, strict=True):
            previous = self.targets.get(record)
            t = p if previous is None else self.beta * previous + (1.0 - self.beta) * p
            self.targets[record] = t
            targets.append(t)
        t = torch.stack(targets).to(probs.device)
        penalty = torch.log(1.0 - (t * probs).sum(dim=-1)).mean()
        return F.cross_entropy(logits.float(), labels) + self.weight * penalty

    def state_dict(self) -> dict[str, Any]:
        ids = sorted(self.targets)
        stacked = torch.stack([self.targets[i] for i in ids]) if ids else torch.zeros(0)
        return {"ids": ids, "targets": stacked}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.targets = dict(zip(state["ids"], state["targets"], strict=True))
