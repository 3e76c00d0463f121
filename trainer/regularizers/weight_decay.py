"""Decoupled weight decay without decay on biases and norm weights, and L2-SP: decay toward the
pretrained weights instead of toward zero (Li et al., 2018), applied decoupled like AdamW's."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

NORMS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.RMSNorm)


def decayed_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(decayed, not decayed): biases and the weights of norm layers are not decayed."""
    no_decay: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if name == "bias" or isinstance(module, NORMS):
                no_decay.add(id(param))
    decay: list[nn.Parameter] = []
    rest: list[nn.Parameter] = []
    for param in model.parameters():
        if param.requires_grad:
            (rest if id(param) in no_decay else decay).append(param)
    return decay, rest


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim.AdamW`` (decoupled decay)."""
    decay, rest = decayed_parameters(model)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


class L2SP:
    """Pulls the decayed parameters toward their values at construction (the pretrained ones):
    after each optimizer step, ``w <- w - lr * strength * (w - w0)``. Use it with
    ``param_groups(model, 0.0)`` so that nothing else decays them toward zero."""

    def __init__(self, model: nn.Module, strength: float) -> None:
        if strength < 0:
            raise ValueError("L2-SP strength must be >= 0")
        self.strength = strength
        self.params, _ = decayed_parameters(model)
        self.anchors = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def step(self, lr: float) -> None:
        for param, anchor in zip(self.params, self.anchors, strict=True):
            param.sub_(param - anchor, alpha=lr * self.strength)

    def distance(self) -> float:
        """Squared L2 distance from the pretrained weights (for reports)."""
        with torch.no_grad():
            return float(
                sum(((p - a) ** 2).sum() for p, a in zip(self.params, self.anchors, strict=True))
            )
