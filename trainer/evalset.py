"""A fixed evaluation set (the validation split, the training subset of the gap, the test
split): tokenised once, in batches of similar lengths so little of each batch is padding, and
predicted in the original order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from trainer.model import Classifier
from trainer.stream import Batch
from trainer.task_module import Inputs


@dataclass
class EvalSet:
    items: Batch
    labels: torch.Tensor
    batches: list[tuple[Inputs, torch.Tensor]]  # inputs, and the items' positions

    @classmethod
    def build(
        cls, classifier: Classifier, items: Batch, max_length: int, batch_size: int
    ) -> EvalSet:
        texts = [item["text"] for item in items]
        lengths = [
            len(ids)
            for ids in classifier.tokenizer(texts, truncation=True, max_length=max_length)[
                "input_ids"
            ]
        ]
        order = sorted(range(len(items)), key=lambda i: (lengths[i], i))
        batches = [
            (
                classifier.encode([texts[i] for i in chunk], max_length),
                torch.tensor(chunk, dtype=torch.long),
            )
            for chunk in (order[s : s + batch_size] for s in range(0, len(order), batch_size))
        ]
        return cls(items, classifier.label_ids(items), batches)

    def __len__(self) -> int:
        return len(self.items)

    def logits(
        self, predict: Callable[[Inputs], torch.Tensor], device: torch.device
    ) -> torch.Tensor:
        """Every item's logits, on the CPU, in the items' order."""
        out: torch.Tensor | None = None
        for inputs, positions in self.batches:
            logits = predict({k: v.to(device) for k, v in inputs.items()}).float().cpu()
            if out is None:
                out = torch.empty(len(self.items), logits.shape[-1])
            out[positions] = logits
        return out if out is not None else torch.empty(0, 0)


@torch.no_grad()
def predict_items(
    classifier: Classifier, items: Batch, max_length: int, batch_size: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """A classifier's logits for ``items`` in eval mode (in the items' order), and their label
    ids: how a saved model is scored."""
    classifier.model.eval()
    evalset = EvalSet.build(classifier, items, max_length, batch_size)
    device = next(classifier.model.parameters()).device
    return evalset.logits(lambda x: classifier.model(**x).logits, device), evalset.labels
