"""The module that training runs and DDP wraps: the classifier, plus the domain classifier when
domain-adversarial training is on. Its forward computes the task rows' logits and, with a
domain head, the domain logits of every row (task + auxiliary) from the last layer's
representation the classifier reads (an encoder's first token or mean of tokens, a
left-padded decoder's last) behind the gradient reversal layer.

The smoothness regularizers' extra forwards go through ``logits_from_embeds`` on this module
itself, not through the DDP wrapper: their gradients reach the same parameters and are summed
into the one gradient DDP all-reduces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from trainer.model import Pooling
from trainer.pooled import mean_pool
from trainer.regularizers.adversarial import DomainClassifier

Inputs = dict[str, torch.Tensor]


@dataclass
class Outputs:
    logits: torch.Tensor  # the task rows
    domain: torch.Tensor | None  # every row, when there is a domain head


def task_rows(inputs: Inputs, n_task: int) -> Inputs:
    return {k: v[:n_task] for k, v in inputs.items()}


class TaskModule(nn.Module):
    def __init__(
        self, model: Any, domain_head: DomainClassifier | None = None, pooling: Pooling = "first"
    ) -> None:
        super().__init__()
        self.model = model
        self.domain_head = domain_head
        self.pooling = pooling

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Word embeddings only (positions, token types and LayerNorm come later)."""
        embeddings: nn.Module = self.model.get_input_embeddings()
        return embeddings(input_ids)  # type: ignore[no-any-return]

    def logits_from_embeds(self, embeds: torch.Tensor, inputs: Inputs) -> torch.Tensor:
        """The classifier from word embeddings, as ``inputs_embeds`` does in transformers."""
        rest = {k: v for k, v in inputs.items() if k != "input_ids"}
        return self.model(inputs_embeds=embeds, **rest).logits  # type: ignore[no-any-return]

    def _pooled(self, hidden: torch.Tensor, inputs: Inputs) -> torch.Tensor:
        if self.pooling == "mean":
            return mean_pool(hidden, inputs["attention_mask"])
        return hidden[:, 0 if self.pooling == "first" else -1]

    def forward(self, inputs: Inputs, n_task: int, lam: float = 0.0) -> Outputs:
        if self.domain_head is None:
            return Outputs(self.model(**task_rows(inputs, n_task)).logits, None)
        out = self.model(**inputs, output_hidden_states=True)
        domain = self.domain_head(self._pooled(out.hidden_states[-1], inputs), lam)
        return Outputs(out.logits[:n_task], domain)
