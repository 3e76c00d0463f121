"""Decoupled weight decay without decay on biases and norm weights, and L2-SP: decay toward the
pretrained weights instead of toward zero (Li et al., 2018), applied decoupled like AdamW's."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from trainer.regularizers.layers import depth, n_layers

NORMS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.RMSNorm)
FUSED_DEVICES = ("cpu", "cuda")  # where torch has a fused AdamW kernel


def adamw(params: list[Any], lr: float, weight_decay: float = 0.01) -> torch.optim.AdamW:
    """AdamW on ``params`` (tensors, or groups as ``param_groups`` makes them), with its fused
    kernel where their device has one, as the Trainer's default does: on CPU a MiniLM update
    takes 18 ms instead of the per-tensor loop's 80 (see docs/benchmarks.md)."""
    first = params[0]["params"][0] if isinstance(params[0], dict) else params[0]
    fused = first.device.type in FUSED_DEVICES
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


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


def param_groups(
    model: nn.Module, weight_decay: float, learning_rate: float, layer_decay: float = 1.0
) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim.AdamW`` (decoupled decay). With ``layer_decay`` < 1
    a parameter at depth d of L layers gets ``learning_rate * layer_decay ** (L + 1 - d)``
    (the embeddings are depth 0, the head L + 1): lower layers, which hold the most general
    features, move least."""
    decay, _ = decayed_parameters(model)
    decayed = {id(p) for p in decay}
    layers = n_layers(model)
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        d = depth(name, layers) if layer_decay != 1.0 else layers + 1
        key = (d, id(param) in decayed)
        if key not in groups:
            groups[key] = {
                "params": [],
                "weight_decay": weight_decay if key[1] else 0.0,
                "lr": learning_rate * layer_decay ** (layers + 1 - d),
            }
        groups[key]["params"].append(param)
    return [groups[key] for key in sorted(groups)]


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
