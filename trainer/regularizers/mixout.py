"""Mixout (Lee et al., 2020): during training each input feature's column of a linear layer's
weight is swapped, with probability p, for the pretrained column U, rescaled so that the
expected weight is the current one:

    W~ = (M * W + (1 - M) * U - p * U) / (1 - p),   M ~ Bernoulli(1 - p) per input feature.

The mask is resampled at every forward; the bias is not mixed; evaluation uses W. Gradients
are autograd's through this formula, i.e. grad(W~) * M / (1 - p) — the public reference code
returns grad * M, (1 - p) times too small. Dropout is switched off where mixout replaces it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


class MixoutLinear(nn.Linear):
    def __init__(self, linear: nn.Linear, p: float) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError("mixout p must lie in [0, 1)")
        super().__init__(
            linear.in_features,
            linear.out_features,
            linear.bias is not None,
            device=linear.weight.device,
            dtype=linear.weight.dtype,
        )
        with torch.no_grad():
            self.weight.copy_(linear.weight)
            if linear.bias is not None and self.bias is not None:
                self.bias.copy_(linear.bias)
        self.p = p
        self.target: torch.Tensor
        # not saved: it is the pretrained weight, rebuilt when a run resumes, and a saved model
        # must load as a plain one
        self.register_buffer("target", linear.weight.detach().clone(), persistent=False)

    def mixed_weight(self, mask: torch.Tensor) -> torch.Tensor:
        """The formula, for a mask of shape (in_features,) holding 0s and 1s."""
        m = mask.to(self.weight.dtype).unsqueeze(0)
        u: torch.Tensor = self.target
        return (m * self.weight + (1 - m) * u - self.p * u) / (1 - self.p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return F.linear(x, self.weight, self.bias)
        keep = torch.rand(self.in_features, device=x.device) >= self.p
        return F.linear(x, self.mixed_weight(keep), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


def apply_mixout(
    model: nn.Module, p: float, select: Callable[[str, nn.Linear], bool] | None = None
) -> list[str]:
    """Replace the selected ``nn.Linear`` modules (all by default) by ``MixoutLinear`` mixing
    toward their current weights, and set the dropout inside the replaced scope to 0. Returns
    the names of the replaced modules."""
    replaced: list[str] = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if type(child) is nn.Linear and (select is None or select(full, child)):
                setattr(module, child_name, MixoutLinear(child, p))
                replaced.append(full)
    scopes = {n.rsplit(".", 1)[0] for n in replaced}
    for name, module in model.named_modules():
        if isinstance(module, nn.Dropout) and any(name.startswith(s) for s in scopes):
            module.p = 0.0
    return replaced
