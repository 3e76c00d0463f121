"""Exponential moving averages of a model's weights: Polyak averaging of the fine-tuned model
(evaluated and shipped instead of the last weights) and SMART's momentum teacher both keep one.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


def half_life_decay(half_life_steps: float) -> float:
    """The per-step decay under which a weight's share halves after ``half_life_steps``."""
    if half_life_steps <= 0:
        raise ValueError("the half-life must be positive")
    return math.pow(0.5, 1.0 / half_life_steps)


class WeightAverage:
    """``average <- decay * average + (1 - decay) * current`` after each step, on a frozen copy
    of the model in eval mode. With ``warmup`` the decay used at update n is
    ``min(decay, (1 + n) / (10 + n))``, so the first updates are not dominated by the starting
    weights. Persistent buffers are copied, not averaged."""

    def __init__(self, model: nn.Module, decay: float, warmup: bool = False) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError("the decay must lie in [0, 1)")
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        weight = 1.0 - self.current_decay()
        for avg, cur in zip(self.model.parameters(), model.parameters(), strict=True):
            avg.lerp_(cur.detach().to(avg.dtype), weight)
        for avg_b, cur_b in zip(
            _persistent_buffers(self.model), _persistent_buffers(model), strict=True
        ):
            avg_b.copy_(cur_b)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = state["updates"]


def _persistent_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [
        buffer
        for module in model.modules()
        for name, buffer in module.named_buffers(recurse=False)
        if name not in module._non_persistent_buffers_set
    ]
