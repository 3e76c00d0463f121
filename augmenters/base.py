"""Augmenter protocol, step specs, and the word-selection logic every word-level op shares.

A step spec (pydantic, frozen) carries an augmenter's parameters and builds the augmenter;
``augmenter.to_spec()`` returns that same spec, so spec -> object -> spec is exact. Randomness
comes only from the per-variant generator handed in (see ``rng.py``).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from augmenters.limits import MAX_CHANGES
from augmenters.protect import (
    MAX_PATTERN_CHARS,
    MAX_PATTERNS,
    Protection,
    check_pattern,
    compile_user_patterns,
    protected_units,
    protection,
)
from augmenters.rng import round_stochastic
from augmenters.segment import Segmenter
from augmenters.tokenize import split

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0, le=MAX_CHANGES)]
Pattern = Annotated[
    str, Field(min_length=1, max_length=MAX_PATTERN_CHARS), AfterValidator(check_pattern)
]


@dataclass(frozen=True, slots=True)
class Applied:
    """One operation applied to a variant: which, how many changes, and any note."""

    op: str
    changes: int
    note: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"op": self.op, "changes": self.changes}
        if self.note is not None:
            out["note"] = self.note
        return out


@dataclass(slots=True)
class Draft:
    """A variant in the making: its current text and the operations applied so far."""

    text: str
    applied: list[Applied] = field(default_factory=list)


class StepSpec(BaseModel, ABC):
    """Parameters of one pipeline step. Subclasses add ``type: Literal[...]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @abstractmethod
    def build(self) -> Augmenter: ...


class Augmenter(ABC):
    """Transforms a batch of drafts in place, one generator per draft."""

    def __init__(self, spec: StepSpec) -> None:
        self.spec = spec

    def to_spec(self) -> StepSpec:
        return self.spec

    @abstractmethod
    def augment_batch(self, drafts: Sequence[Draft], rngs: Sequence[random.Random]) -> None: ...


class TextAugmenter(Augmenter):
    """An augmenter that treats each text on its own."""

    op: ClassVar[str]

    def augment_batch(self, drafts: Sequence[Draft], rngs: Sequence[random.Random]) -> None:
        for draft, rng in zip(drafts, rngs, strict=True):
            draft.text, changes = self.augment(draft.text, rng)
            draft.applied.append(Applied(self.op, changes))

    @abstractmethod
    def augment(self, text: str, rng: random.Random) -> tuple[str, int]:
        """Return the new text and how many units (words, characters) were changed."""


class RateSpec(StepSpec, ABC):
    """Fields shared by ops that change a fraction ``p`` of a text's eligible units."""

    p: Probability = 0.1
    min_changes: Count = 0
    max_changes: Count | None = None
    protect_urls: bool = True
    protect_numbers: bool = False
    protect: tuple[Pattern, ...] = Field(
        default=(),
        max_length=MAX_PATTERNS,
        description="extra regexes (RE2 syntax, linear-time) whose matches are never changed",
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> RateSpec:
        if self.max_changes is not None and self.max_changes < self.min_changes:
            raise ValueError("max_changes must be >= min_changes")
        compile_user_patterns(self.protect)
        return self

    def protection(self) -> Protection:
        return protection(self.protect_urls, self.protect_numbers, self.protect)

    def count(self, eligible: int, rng: random.Random) -> int:
        """How many of ``eligible`` units to change: p * eligible in expectation, then bounded."""
        n = max(round_stochastic(self.p * eligible, rng), self.min_changes)
        if self.max_changes is not None:
            n = min(n, self.max_changes)
        return min(n, eligible)


class WordLevel:
    """A text split into lexical units (odd indices of ``parts``) and what lies between them,
    with the indices of the units an op may touch."""

    __slots__ = ("parts", "eligible")

    def __init__(
        self,
        text: str,
        protection: Protection,
        eligible: Callable[[str], object] | None,
        segmenter: Segmenter | None = None,
    ) -> None:
        """``eligible``: which units an op may change, given their text (any true value
        says yes); None: every unit."""
        parts = self.parts = split(text, segmenter)
        protected = protected_units(parts, protection.spans(text))
        units = range(1, len(parts), 2)
        if eligible is None:
            self.eligible = [i for i in units if i not in protected]
        else:
            self.eligible = [i for i in units if eligible(parts[i]) and i not in protected]

    @property
    def units(self) -> int:
        return len(self.parts) // 2

    def pick(
        self, spec: RateSpec, rng: random.Random, among: Sequence[int] | None = None
    ) -> list[int]:
        """Choose which eligible units (or units ``among`` them) to change, in text order."""
        pool = self.eligible if among is None else among
        k = spec.count(len(pool), rng)
        return sorted(rng.sample(pool, k)) if k else []

    def text(self, replaced: dict[int, str]) -> str:
        if not replaced:
            return "".join(self.parts)
        parts = self.parts.copy()
        for i, new in replaced.items():
            parts[i] = new
        return "".join(parts)


class WordAugmenter(TextAugmenter):
    """A text augmenter working on lexical units. The analysis of a text (split, protection,
    eligibility) is cached, so the variants of one record share it; it is never mutated."""

    spec: RateSpec
    _CACHE_SIZE = 256

    def __init__(self, spec: RateSpec) -> None:
        super().__init__(spec)
        self._protection = spec.protection()
        self._analysed: dict[str, WordLevel] = {}
        self.segmenter: Segmenter | None = None  # the pipeline's, when it adds user words
        every_unit = type(self).eligible is WordAugmenter.eligible
        self._eligible: Callable[[str], object] | None = None if every_unit else self.eligible

    def eligible(self, unit: str) -> bool:
        """Whether this op may change ``unit``; every unit by default."""
        return True

    def words(self, text: str) -> WordLevel:
        words = self._analysed.get(text)
        if words is None:
            if len(self._analysed) >= self._CACHE_SIZE:
                self._analysed.clear()
            words = self._analysed[text] = WordLevel(
                text, self._protection, self._eligible, self.segmenter
            )
        return words
