"""Generative fine-tuning (SFT): a causal LM trained to write each record's response after its
prompt, with the loss on response tokens only.

A generation record's text is its prompt (for a chat, the last user turn: what augmentation
acts on) and its label the target ``{"response": ..., "context": [earlier turns]?}``. When the
tokenizer has a chat template the conversation is rendered with it (the prompt ends with the
generation prompt, the response with the template's end of turn); otherwise the prompt is the
text (earlier turns as ``role: content`` lines) and a newline, and the response ends with the
end-of-text token. Batches are padded on the right; labels are the response's token ids and
-100 everywhere else (prompt and padding), so prompt tokens carry no loss and no gradient.
Packing is off: one record per row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from augmenters.resources import model_dir
from trainer.config import Dropout
from trainer.model import Pooling, load_parts
from trainer.regularizers.label_smoothing import LabelSmoother
from trainer.stream import Batch
from trainer.task_module import Inputs

IGNORE = -100


@dataclass
class Generator:
    model: Any
    tokenizer: Any
    labels: list[Any] = field(default_factory=list)  # no classes
    pooling: Pooling = "last"

    def tokens(self, item: dict[str, Any], max_length: int) -> tuple[list[int], list[int]]:
        """The prompt's and the response's token ids, together at most ``max_length``: a long
        prompt loses its beginning (the end is what the response answers), a long response
        its end, the response keeping at least half the room."""
        prompt, response = self._render(item)
        tok = self.tokenizer
        template = bool(tok.chat_template)
        prompt_ids: list[int] = tok(prompt, add_special_tokens=not template)["input_ids"]
        response_ids: list[int] = tok(response, add_special_tokens=False)["input_ids"]
        if not template:
            response_ids.append(tok.eos_token_id)
        keep = min(len(response_ids), max(max_length - len(prompt_ids), max_length // 2))
        response_ids = response_ids[:keep]
        room = max_length - len(response_ids)
        return (prompt_ids[-room:] if room else []), response_ids

    def _render(self, item: dict[str, Any]) -> tuple[str, str]:
        target = item["label"]
        if not isinstance(target, dict) or "response" not in target:
            raise ValueError(
                f"record {item.get('id')!r} has no response: generation needs a dataset "
                "uploaded with prompt_field and response_field, or messages_field"
            )
        context: list[dict[str, str]] = target.get("context") or []
        if not self.tokenizer.chat_template:
            lines = [f"{turn['role']}: {turn['content']}\n" for turn in context]
            return "".join(lines) + item["text"] + "\n", target["response"]
        messages = [*context, {"role": "user", "content": item["text"]}]
        prompt: str = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        full: str = self.tokenizer.apply_chat_template(
            [*messages, {"role": "assistant", "content": target["response"]}], tokenize=False
        )
        if full.startswith(prompt):
            return prompt, full[len(prompt) :]
        # a template that rewrites earlier turns when one is added: the response as written
        return prompt, target["response"] + (self.tokenizer.eos_token or "")

    def encode(
        self, items: Sequence[dict[str, Any]], max_length: int
    ) -> tuple[Inputs, torch.Tensor]:
        """Right-padded ``input_ids`` and ``attention_mask``, and the labels: response token
        ids where the row has them, -100 elsewhere."""
        rows = [self.tokens(item, max_length) for item in items]
        width = max(len(p) + len(r) for p, r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for i, (prompt, response) in enumerate(rows):
            n = len(prompt) + len(response)
            ids[i, :n] = torch.tensor(prompt + response)
            mask[i, :n] = 1
            labels[i, len(prompt) : n] = torch.tensor(response)
        return {"input_ids": ids, "attention_mask": mask}, labels


def load_generator(
    path: str | Path, dropout: Dropout | None = None, dtype: torch.dtype | None = None
) -> Generator:
    from transformers import AutoModelForCausalLM

    directory = model_dir(str(path))
    config, tokenizer = load_parts(directory, dropout)
    tokenizer.padding_side = "right"
    if tokenizer.eos_token is None and not tokenizer.chat_template:
        raise ValueError(
            f"{directory}: the tokenizer has no end-of-text token and no chat template: "
            "nothing would teach the model where a response ends"
        )
    model = AutoModelForCausalLM.from_pretrained(
        directory, config=config, dtype=dtype or torch.float32
    )
    return Generator(model, tokenizer)


def next_token(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of the positions that predict a response token ([N, vocab]) and those
    tokens ([N]): position t predicts token t + 1."""
    targets = labels[:, 1:]
    keep = targets != IGNORE
    return logits[:, :-1][keep], targets[keep]


def token_loss(
    logits: torch.Tensor, labels: torch.Tensor, smoother: LabelSmoother | None = None
) -> torch.Tensor:
    """Mean cross-entropy over the response tokens (label-smoothed over the vocabulary with a
    smoother)."""
    predicting, targets = next_token(logits, labels)
    if smoother is not None:
        return smoother(predicting, targets)
    return F.cross_entropy(predicting.float(), targets)


@dataclass(frozen=True)
class TokenScores:
    loss: float  # mean cross-entropy per response token
    token_accuracy: float  # share of response tokens that are the argmax
    tokens: int

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 50.0))

    def as_dict(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}_loss": self.loss,
            f"{prefix}_perplexity": self.perplexity,
            f"{prefix}_token_accuracy": self.token_accuracy,
        }


@dataclass
class GenerationEvalSet:
    """A fixed set of records to score (validation, the training subset, test): encoded once,
    in batches of similar lengths."""

    items: Batch
    batches: list[tuple[Inputs, torch.Tensor]]  # inputs, labels

    @classmethod
    def build(
        cls, generator: Generator, items: Batch, max_length: int, batch_size: int
    ) -> GenerationEvalSet:
        lengths = [sum(map(len, generator.tokens(item, max_length))) for item in items]
        order = sorted(range(len(items)), key=lambda i: (lengths[i], i))
        chunks = (order[s : s + batch_size] for s in range(0, len(order), batch_size))
        batches = [generator.encode([items[i] for i in chunk], max_length) for chunk in chunks]
        return cls(items, batches)

    def __len__(self) -> int:
        return len(self.items)

    def score(self, predict: Callable[[Inputs], torch.Tensor], device: torch.device) -> TokenScores:
        """Summed over every response token of the set, one batch's logits at a time."""
        nll, correct, tokens = 0.0, 0, 0
        for inputs, labels in self.batches:
            logits = predict({k: v.to(device) for k, v in inputs.items()})
            predicting, targets = next_token(logits, labels.to(device))
            nll += float(F.cross_entropy(predicting.float(), targets, reduction="sum"))
            correct += int((predicting.argmax(-1) == targets).sum())
            tokens += len(targets)
        if not tokens:
            raise ValueError("no response tokens to score")
        return TokenScores(nll / tokens, correct / tokens, tokens)
