"""NEFTune (Jain et al. 2023): uniform noise on the input word embeddings while training,
scaled ``alpha / sqrt(L * d)`` (L the padded sequence length, d the embedding size), as in the
paper and the Hugging Face Trainer; nothing in eval mode. The noise comes from torch's
generator, which the loop seeds per run and rank and checkpoints, so runs stay reproducible
and resumable."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def add_neftune(embeddings: nn.Module, alpha: float) -> Any:
    """Register the noise on ``embeddings`` (the model's input embedding module); returns the
    hook's handle (``.remove()`` takes it off)."""

    def noisy(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        if not module.training:
            return output
        bound = alpha / math.sqrt(output.shape[-2] * output.shape[-1])
        return output + torch.empty_like(output).uniform_(-bound, bound)

    return embeddings.register_forward_hook(noisy)
