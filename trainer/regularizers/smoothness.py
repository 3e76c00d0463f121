"""Smoothness-inducing regularizers on the word embeddings: SMART (Jiang et al., 2020) with its
Bregman proximal point term, and R3F (Aghajanyan et al., 2020), the cheap alternative.

Both take ``forward``, a function from word embeddings to logits (the model with its position
and token-type embeddings and LayerNorm applied inside, as ``inputs_embeds`` does in
transformers), so the perturbation is on the word embeddings only, not on the full embedding
output as in the public SMART code. The adversarial perturbation is projected onto the
epsilon-ball (L2 per example; the public code normalises to unit L-inf, far larger than
epsilon).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from trainer.regularizers.averaging import WeightAverage

Forward = Callable[[torch.Tensor], torch.Tensor]


def symmetric_kl(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p||q) + KL(q||p), averaged over the batch."""
    p_log = F.log_softmax(p_logits.float(), dim=-1)
    q_log = F.log_softmax(q_logits.float(), dim=-1)
    kl_pq = F.kl_div(q_log, p_log, log_target=True, reduction="batchmean")
    kl_qp = F.kl_div(p_log, q_log, log_target=True, reduction="batchmean")
    return kl_pq + kl_qp


def divergence(kind: Literal["kl", "mse"], a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric KL for classification, MSE for regression."""
    return symmetric_kl(a, b) if kind == "kl" else F.mse_loss(a.float(), b.float())


def _norms(t: torch.Tensor) -> torch.Tensor:
    """Each example's L2 norm, shaped to broadcast over the example."""
    norms: torch.Tensor = t.flatten(1).norm(dim=1).clamp(min=1e-12)
    return norms.view(-1, *([1] * (t.dim() - 1)))


def project(delta: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Scale each example's perturbation into the L2 ball of radius epsilon."""
    scale: torch.Tensor = (epsilon / _norms(delta)).clamp(max=1.0)
    return delta * scale


@dataclass(frozen=True)
class SMART:
    """lambda_s * D(f(x + delta*), f(x)), delta* from K steps of power iteration (normalised
    gradient ascent of step ``eta``) from N(0, sigma^2) noise, kept within the epsilon-ball."""

    epsilon: float = 1e-2
    sigma: float = 1e-5
    eta: float = 1e-3
    steps: int = 1
    kind: Literal["kl", "mse"] = "kl"

    def perturbation(
        self,
        forward: Forward,
        embeds: torch.Tensor,
        clean: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        base = embeds.detach()
        noise = torch.randn(base.shape, generator=generator, device=base.device, dtype=base.dtype)
        delta = project(noise * self.sigma, self.epsilon)
        target = clean.detach()
        for _ in range(self.steps):
            delta.requires_grad_(True)
            loss = divergence(self.kind, forward(base + delta), target)
            (grad,) = torch.autograd.grad(loss, delta)
            delta = project(delta.detach() + self.eta * grad / _norms(grad), self.epsilon)
        return delta.detach()

    def __call__(
        self,
        forward: Forward,
        embeds: torch.Tensor,
        clean: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        delta = self.perturbation(forward, embeds, clean, generator)
        return divergence(self.kind, forward(embeds + delta), clean)


@dataclass(frozen=True)
class R3F:
    """D(f(x + z), f(x)) with one noisy forward, z ~ N(0, sigma^2) or U(-sigma, sigma)."""

    sigma: float = 1e-5
    noise: Literal["normal", "uniform"] = "normal"
    kind: Literal["kl", "mse"] = "kl"

    def __call__(
        self,
        forward: Forward,
        embeds: torch.Tensor,
        clean: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        shape, device, dtype = embeds.shape, embeds.device, embeds.dtype
        if self.noise == "normal":
            z = torch.randn(shape, generator=generator, device=device, dtype=dtype) * self.sigma
        else:
            z = torch.rand(shape, generator=generator, device=device, dtype=dtype) * 2 - 1
            z = z * self.sigma
        return divergence(self.kind, forward(embeds + z), clean)


class MomentumTeacher:
    """The Bregman proximal point term of SMART: mu * D(f_theta(x), f_teacher(x)), the teacher
    an exponential moving average of the student, theta~ <- (1 - beta) theta + beta theta~
    after each step."""

    def __init__(self, model: nn.Module, beta: float = 0.99, mu: float = 1.0) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError("beta must lie in [0, 1)")
        self.beta = beta
        self.mu = mu
        self.average = WeightAverage(model, beta)

    @property
    def teacher(self) -> nn.Module:
        return self.average.model

    def update(self, model: nn.Module) -> None:
        self.average.update(model)

    def penalty(
        self, student: torch.Tensor, teacher: torch.Tensor, kind: Literal["kl", "mse"] = "kl"
    ) -> torch.Tensor:
        return self.mu * divergence(kind, student, teacher.detach())
