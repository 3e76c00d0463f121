"""Running a pipeline spec over records: the batch API.

``augment(records, spec, seed, n_variants)`` returns, for each record and variant index, the
augmented text, the record's label unchanged, and the operations applied. Each variant is drawn
from its own generator (spec, seed, record id, variant index), so results do not depend on the
batch size, the order of records, the number of processes or PYTHONHASHSEED.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from augmenters.base import Applied, Augmenter, Draft, WordAugmenter
from augmenters.errors import RecordError
from augmenters.masking import ContextualAugmenter
from augmenters.registry import Registry
from augmenters.rng import VariantSeeder, stable_digest
from augmenters.spec import PipelineSpec, parse_spec


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    text: str
    label: Any = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def coerce(cls, value: Record | Mapping[str, Any] | str, index: int) -> Record:
        """Accept a Record, a mapping with ``text`` (and ``id``, ``label``, ``meta``) or a bare
        string (its id is then a hash of the text). ``index`` is used in error messages only."""
        if isinstance(value, Record):
            return value
        if isinstance(value, str):
            return cls(id=stable_digest(value, size=8).hex(), text=value)
        if not isinstance(value, Mapping):
            raise RecordError(
                f"a record is a mapping or a string, not {type(value).__name__}",
                field=f"records[{index}]",
            )
        text = value.get("text")
        if not isinstance(text, str):
            what = "missing" if text is None else f"a {type(text).__name__}, not a string"
            raise RecordError(f"text is {what}", field=f"records[{index}].text")
        rid = value.get("id")
        if rid is None:
            rid = stable_digest(text, size=8).hex()
        elif isinstance(rid, bool) or not isinstance(rid, str | int):
            raise RecordError("id must be a string or an integer", field=f"records[{index}].id")
        meta = value.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise RecordError("meta must be an object", field=f"records[{index}].meta")
        return cls(id=str(rid), text=text, label=value.get("label"), meta=meta)


@dataclass(frozen=True, slots=True)
class Variant:
    record_id: str
    variant: int
    text: str
    label: Any
    ops: tuple[Applied, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.record_id,
            "variant": self.variant,
            "text": self.text,
            "label": self.label,
            "ops": [op.to_dict() for op in self.ops],
        }


class Pipeline:
    """A built pipeline: augmenters plus filters, ready to run over records."""

    def __init__(
        self,
        spec: PipelineSpec | Mapping[str, Any] | str | Path,
        served: Registry | None = None,
    ) -> None:
        """``served``: the registry of a service running a spec that came over the network
        (names only, no paths); without it, names registered in ANTIFIT_RESOURCES_DIR and
        paths both work."""
        self.spec = parse_spec(spec, served)
        registry = served or Registry.from_env()
        # names become paths here, after the seeds are drawn from the spec as written
        written = self.spec.to_dict()
        resolved = registry.resolve(written)
        built = self.spec if resolved == written else parse_spec(resolved)
        self.root = built.pipeline.build()
        if built.segmentation is not None:
            segmenter = built.segmentation.segmenter()
            for augmenter in _walk(self.root):
                if isinstance(augmenter, WordAugmenter | ContextualAugmenter):
                    augmenter.segmenter = segmenter
        self.filters = [f.build() for f in built.filters]
        self._seed_key = self.spec.pipeline_digest()
        self.dropped: Counter[str] = Counter()  # variants dropped, by filter name
        # set to a list to keep the dropped variants themselves, with the filter that dropped
        # each (the console's preview shows them); None keeps nothing
        self.rejected: list[tuple[Variant, str]] | None = None
        # with ``rejected`` on: each variant's scores from the scoring filters it went through
        self.scores: dict[tuple[str, int], dict[str, float]] = {}

    def to_spec(self) -> PipelineSpec:
        return self.spec

    def augment(
        self,
        records: Iterable[Record | Mapping[str, Any] | str],
        seed: int,
        n_variants: int = 1,
        batch_size: int = 256,
    ) -> Iterator[Variant]:
        """Yield the kept variants, record by record, variant index ascending."""
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise RecordError("seed must be an integer", field="seed")
        if n_variants < 0:
            raise RecordError("must be >= 0", field="n_variants")
        if batch_size < 1:
            raise RecordError("must be >= 1", field="batch_size")
        it = (Record.coerce(r, i) for i, r in enumerate(records))
        while batch := list(islice(it, max(1, batch_size // max(n_variants, 1)))):
            yield from self.augment_batch(batch, seed, n_variants)

    def augment_batch(self, records: Sequence[Record], seed: int, n_variants: int) -> list[Variant]:
        drafts = [Draft(r.text) for r in records for _ in range(n_variants)]
        seeder = VariantSeeder(self._seed_key, seed)
        rngs: list[random.Random] = [seeder(r.id, v) for r in records for v in range(n_variants)]
        if drafts:
            self.root.augment_batch(drafts, rngs)
        groups = [
            (r, list(range(k * n_variants, (k + 1) * n_variants))) for k, r in enumerate(records)
        ]
        for flt in self.filters:
            verdicts = flt.keep([(r.text, [drafts[i].text for i in idx]) for r, idx in groups])
            new_groups = []
            for k, ((r, idx), keep) in enumerate(zip(groups, verdicts, strict=True)):
                kept = [i for i, ok in zip(idx, keep, strict=True) if ok]
                self.dropped[flt.name] += len(idx) - len(kept)
                if self.rejected is not None:
                    scores = flt.last_scores[k] if flt.last_scores is not None else None
                    self._remember(flt.name, r, idx, keep, scores, drafts, n_variants)
                new_groups.append((r, kept))
            groups = new_groups
        return [self._variant(r, i, drafts, n_variants) for r, idx in groups for i in idx]

    def _remember(
        self,
        name: str,
        record: Record,
        idx: list[int],
        keep: list[bool],
        scores: list[float] | None,
        drafts: Sequence[Draft],
        n_variants: int,
    ) -> None:
        """For a preview: the variants filter ``name`` dropped, and its scores of those it saw."""
        assert self.rejected is not None
        for j, i in enumerate(idx):
            if scores is not None:
                self.scores.setdefault((record.id, i % n_variants), {})[name] = scores[j]
            if not keep[j]:
                self.rejected.append((self._variant(record, i, drafts, n_variants), name))

    @staticmethod
    def _variant(record: Record, i: int, drafts: Sequence[Draft], n_variants: int) -> Variant:
        draft = drafts[i]
        return Variant(record.id, i % n_variants, draft.text, record.label, tuple(draft.applied))


def augment(
    records: Iterable[Record | Mapping[str, Any] | str],
    spec: PipelineSpec | Mapping[str, Any] | str | Path,
    seed: int,
    n_variants: int = 1,
    batch_size: int = 256,
) -> list[Variant]:
    """Augment ``records`` with ``spec``: ``n_variants`` variants per record (fewer where a
    filter drops some)."""
    return list(Pipeline(spec).augment(records, seed, n_variants, batch_size))


def _walk(augmenter: Augmenter) -> Iterator[Augmenter]:
    """An augmenter and every step composed under it."""
    yield augmenter
    for child in [*getattr(augmenter, "steps", ()), getattr(augmenter, "step", None)]:
        if child is not None:
            yield from _walk(child)
