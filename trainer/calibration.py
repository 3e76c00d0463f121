"""Post-hoc temperature scaling (Guo et al., 2017): one scalar T fitted on held-out logits by
minimising their cross-entropy; ``softmax(z / T)`` keeps every prediction and fixes the
confidence. With a bias per class as well (bias-corrected temperature scaling, BCTS:
Alexandari et al., 2020), ``z / T + b`` also moves the class priors the training set left in
the model to the held-out split's, which can change predictions. Folding both into the
classifier's last linear layer makes the saved model's own probabilities the calibrated ones."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LOW, HIGH = 0.05, 20.0  # the temperatures searched
# BCTS's penalty on the squared biases, against the summed cross-entropy of the held-out
# texts (a Gaussian prior of variance 1/2 on each bias): it fixes their free constant and
# keeps them small where a few texts say little, the more so the fewer the texts
BIAS_PRIOR = 1.0


@dataclass(frozen=True)
class Scaling:
    """What post-hoc calibration does to a classifier's logits: ``z / temperature + bias``."""

    temperature: float = 1.0
    bias: tuple[float, ...] | None = None

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        scaled = logits.float() / self.temperature
        if self.bias is None:
            return scaled
        return scaled + torch.tensor(self.bias, device=logits.device)


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


def fit_scaling(logits: torch.Tensor, labels: torch.Tensor, class_bias: bool) -> Scaling:
    """The temperature alone, or with ``class_bias`` BCTS: the temperature and a bias per
    class minimising the summed cross-entropy of ``z / T + b`` plus ``BIAS_PRIOR * |b|^2``, by
    L-BFGS in float64 from the temperature alone and no bias (deterministic; T kept in
    [LOW, HIGH])."""
    temperature = fit_temperature(logits, labels)
    if not class_bias:
        return Scaling(temperature)
    if not len(labels):
        return Scaling(temperature, (0.0,) * logits.shape[-1])
    # a fit of its own, wherever it is called from (evaluation runs without autograd)
    with torch.inference_mode(False), torch.enable_grad():
        z, labels = logits.detach().cpu().double().clone(), labels.cpu().clone()
        log_t = torch.tensor(math.log(temperature), dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(z.shape[-1], dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS(
            [log_t, bias], max_iter=200, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
        )

        def objective() -> torch.Tensor:
            optimizer.zero_grad()
            # the bias is fitted with the temperature it ships with, inside [LOW, HIGH]
            t = log_t.clamp(math.log(LOW), math.log(HIGH)).exp()
            fit = F.cross_entropy(z / t + bias, labels)
            loss = fit + BIAS_PRIOR * bias.square().sum() / len(labels)
            loss.backward()  # type: ignore[no-untyped-call]
            return loss

        optimizer.step(objective)  # type: ignore[no-untyped-call]
    fitted = min(max(math.exp(float(log_t.detach())), LOW), HIGH)
    return Scaling(fitted, tuple(float(b) for b in bias.detach()))


def output_layer(model: nn.Module, n_classes: int) -> nn.Linear:
    """The last linear layer producing the class logits."""
    found = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == n_classes]
    if not found:
        raise ValueError("no linear output layer with one output per class")
    return found[-1]


@torch.no_grad()
def fold_scaling(model: nn.Module, n_classes: int, scaling: Scaling) -> None:
    """Divide the output layer's weight and bias by T and add the class bias: the model's
    logits become z / T + b."""
    layer = output_layer(model, n_classes)
    if scaling.bias is not None and layer.bias is None:
        raise ValueError("the output layer has no bias to take the class bias")
    layer.weight.div_(scaling.temperature)
    if layer.bias is not None:
        layer.bias.div_(scaling.temperature)
        if scaling.bias is not None:
            layer.bias.add_(torch.tensor(scaling.bias, dtype=layer.bias.dtype))
