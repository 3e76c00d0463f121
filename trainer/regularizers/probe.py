"""LP-FT (Kumar et al., 2022): fit the classifier head on the frozen pretrained features first
(a linear probe), then fine-tune everything from there. A random head sends large, arbitrary
gradients into the pretrained features at the start of fine-tuning and distorts them; a head
that already separates the classes does not.

The probe is multinomial logistic regression with an L2 penalty, fitted by L-BFGS on the
features the output layer sees (its input, captured with a forward hook) in eval mode."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from trainer.calibration import output_layer


@torch.no_grad()
def features(
    model: nn.Module,
    n_classes: int,
    batches: list[dict[str, torch.Tensor]],
    forward: Callable[[dict[str, torch.Tensor]], object],
) -> torch.Tensor:
    """The output layer's inputs for every row of ``batches`` (eval mode)."""
    layer = output_layer(model, n_classes)
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].detach()
        if x.dim() == 3:  # a decoder's head scores every position: keep the last (left padding)
            x = x[:, -1]
        captured.append(x.float().cpu())

    handle = layer.register_forward_pre_hook(hook)
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            forward(batch)
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(captured)


def fit_probe(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1e-2, iterations: int = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) minimising mean cross-entropy + l2/2 * |weight|^2, from zero."""
    weight = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], max_iter=iterations, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight.T + bias, y) + l2 / 2 * weight.pow(2).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    optimizer.step(closure)  # type: ignore[no-untyped-call]
    return weight.detach(), bias.detach()


@torch.no_grad()
def set_head(model: nn.Module, n_classes: int, weight: torch.Tensor, bias: torch.Tensor) -> None:
    layer = output_layer(model, n_classes)
    layer.weight.copy_(weight.to(layer.weight))
    if layer.bias is not None:
        layer.bias.copy_(bias.to(layer.bias))
