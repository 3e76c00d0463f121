"""Post-hoc temperature scaling (Guo et al., 2017): one scalar T fitted on held-out logits by
minimising their cross-entropy; ``softmax(z / T)`` keeps every prediction and fixes the
confidence. Folding 1/T into the classifier's last linear layer makes the saved model's own
probabilities the calibrated ones."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOW, HIGH = 0.05, 20.0  # the temperatures searched


def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    return float(F.cross_entropy(logits.float() / temperature, labels))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, iterations: int = 60) -> float:
    """The T in [0.05, 20] that minimises the cross-entropy of ``logits / T``: a golden-section
    search over log T (the loss is unimodal in it), deterministic and dependency-free."""
    if not len(labels):
        return 1.0
    a, b = math.log(LOW), math.log(HIGH)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(logits, labels, math.exp(c)), nll(logits, labels, math.exp(d))
    for _ in range(iterations):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(logits, labels, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(logits, labels, math.exp(d))
    return math.exp((a + b) / 2)


def output_layer(model: nn.Module, n_classes: int) -> nn.Linear:
    """The last linear layer producing the class logits."""
    found = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == n_classes]
    if not found:
        raise ValueError("no linear output layer with one output per class")
    return found[-1]


@torch.no_grad()
def fold_temperature(model: nn.Module, n_classes: int, temperature: float) -> None:
    """Divide the output layer's weight and bias by T: the model's logits become z / T."""
    layer = output_layer(model, n_classes)
    layer.weight.div_(temperature)
    if layer.bias is not None:
        layer.bias.div_(temperature)
