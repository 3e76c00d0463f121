"""Domain-adversarial training (Ganin & Lempitsky, 2015): a gradient reversal layer in front of
a domain classifier on the pooled representation, with the usual lambda schedule."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lam * grad, None


def reverse_gradient(x: torch.Tensor, lam: float) -> torch.Tensor:
    """Identity forward; backward multiplies the gradient by -lam."""
    out: torch.Tensor = _Reverse.apply(x, lam)  # type: ignore[no-untyped-call]
    return out


def dann_lambda(progress: float) -> float:
    """2 / (1 + exp(-10 p)) - 1 for training progress p in [0, 1]: 0 at the start, -> 1."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


class DomainClassifier(nn.Module):
    """A small MLP telling the task domain from the auxiliary one, behind a GRL."""

    def __init__(self, hidden: int, width: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, 2)
        )

    def forward(self, pooled: torch.Tensor, lam: float) -> torch.Tensor:
        return self.net(reverse_gradient(pooled, lam))  # type: ignore[no-any-return]
