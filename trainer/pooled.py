"""A classifier whose head reads the mean of the encoder's token states, the representation a
sentence encoder such as all-MiniLM-L6-v2 was trained to produce (and the one SetFit's
contrastive stage tunes), instead of the first token that
``AutoModelForSequenceClassification`` reads.

Saved as an encoder directory (``encoder/``, transformers' own format), the head's weights
(``head.safetensors``) and ``antifit_classifier.json`` (the pooling, whether the head reads the
unit-length embedding, the number of classes; the labels are in the encoder's config). There is
no top-level ``config.json`` on purpose: ``AutoModelForSequenceClassification.from_pretrained``
on the folder fails instead of loading the encoder with a random head.
``trainer.model.load_classifier`` loads it (``antifit train --model`` and bench/efficacy.py go
through it). A training run also makes ``encoder/`` a sentence-transformers model
(``write_sentence_encoder``): ``SentenceTransformer(".../encoder")`` gives the embeddings the
head reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

ENCODER = "encoder"
HEAD = "head.safetensors"
MANIFEST = "antifit_classifier.json"


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each row's token states over its real (unpadded) tokens."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def is_mean_pooled(directory: Path) -> bool:
    return (directory / MANIFEST).is_file()


class MeanPooledClassifier(nn.Module):
    """Encoder, mean pooling over the attention mask (scaled to unit length with
    ``normalize``, as sentence-transformers' ``Normalize`` module does), dropout, a linear head.
    Its forward takes what a transformers classifier takes (``input_ids`` or ``inputs_embeds``)
    and returns an output with ``.logits`` (and ``.hidden_states`` when asked)."""

    def __init__(
        self, encoder: Any, n_labels: int, dropout: float, normalize: bool = False
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        self.normalize = normalize
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, n_labels)

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()  # type: ignore[no-any-return]

    def embeddings(self, **inputs: torch.Tensor) -> torch.Tensor:
        """The mean-pooled sentence embeddings (what the head reads, before dropout)."""
        return self._pool(self.encoder(**inputs).last_hidden_state, inputs["attention_mask"])

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = mean_pool(hidden, attention_mask)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    def forward(self, output_hidden_states: bool = False, **inputs: torch.Tensor) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        out = self.encoder(**inputs, output_hidden_states=output_hidden_states)
        pooled = self._pool(out.last_hidden_state, inputs["attention_mask"])
        return SequenceClassifierOutput(
            logits=self.classifier(self.dropout(pooled)), hidden_states=out.hidden_states
        )

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.encoder.save_pretrained(directory / ENCODER)
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in self.classifier.state_dict().items()},
            directory / HEAD,
        )
        manifest = {
            "pooling": "mean",
            "normalize": self.normalize,
            "num_labels": self.classifier.out_features,
        }
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def write_sentence_encoder(
    directory: Path, model: MeanPooledClassifier, tokenizer: Any, max_length: int
) -> None:
    """Make the ``encoder/`` that ``model.save_pretrained(directory)`` wrote a
    sentence-transformers model as well: its tokenizer, and the modules that pool as the head
    reads (mean over the attention mask, then unit length where the head reads that), in the
    format sentence-transformers' own models ship (all-MiniLM-L6-v2's)."""
    encoder = directory / ENCODER
    tokenizer.save_pretrained(encoder)
    kinds = [("", "Transformer"), ("1_Pooling", "Pooling")]
    if model.normalize:
        kinds.append(("2_Normalize", "Normalize"))
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for i, (path, kind) in enumerate(kinds)
    ]
    pooling = {
        "word_embedding_dimension": model.config.hidden_size,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }
    files = {
        "modules.json": modules,
        "sentence_bert_config.json": {"max_seq_length": max_length, "do_lower_case": False},
        "1_Pooling/config.json": pooling,
    }
    for name, content in files.items():
        (encoder / name).parent.mkdir(exist_ok=True)
        (encoder / name).write_text(json.dumps(content, indent=2) + "\n")


def load_mean_pooled(
    encoder_directory: Path,
    saved: Path | None,
    n_labels: int,
    config: Any,
    dtype: torch.dtype,
    normalize: bool = False,
) -> MeanPooledClassifier:
    """A mean-pooled classifier over the encoder in ``encoder_directory`` (with ``config``,
    where the configured dropout is set): with a new head (reading the unit-length embedding
    with ``normalize``), or the one saved in ``saved`` (as it was saved)."""
    from transformers import AutoModel

    try:  # BERT-like encoders build a pooler this head never reads
        encoder = AutoModel.from_pretrained(
            encoder_directory, config=config, dtype=dtype, add_pooling_layer=False
        )
    except TypeError:
        encoder = AutoModel.from_pretrained(encoder_directory, config=config, dtype=dtype)
    dropout: Any = getattr(config, "classifier_dropout", None)
    if dropout is None:
        dropout = getattr(config, "hidden_dropout_prob", 0.1)
    if saved is not None:
        normalize = bool(json.loads((saved / MANIFEST).read_text()).get("normalize", False))
    model = MeanPooledClassifier(encoder, n_labels, float(dropout), normalize)
    if saved is not None:
        head = load_file(saved / HEAD)
        if head["weight"].shape[0] != n_labels:
            raise ValueError(
                f"{saved}: its head has {head['weight'].shape[0]} classes, the data {n_labels}"
            )
        model.classifier.load_state_dict(head)
    return model.to(dtype)
