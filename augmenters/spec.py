"""The pipeline spec: versioned JSON <-> typed objects.

A spec is ``{"version": 1, "pipeline": STEP, "filters": [FILTER, ...]}``; a step is one
augmenter or a composition (``sequence``, ``one_of``, ``sometimes``), told apart by ``type``.
``PipelineSpec.model_validate(d).to_dict() == d`` for any valid, fully-specified ``d``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from augmenters.backtranslation import BackTranslationSpec
from augmenters.base import Augmenter, Probability, StepSpec
from augmenters.compose import OneOfAugmenter, SequenceAugmenter, SometimesAugmenter
from augmenters.errors import SpecError
from augmenters.filters import DedupSpec, LengthRatioSpec, SimilaritySpec, UnchangedSpec
from augmenters.homophone import HomophoneSpec
from augmenters.limits import MAX_DEPTH, MAX_FILTERS, MAX_STEPS, MAX_USER_WORDS, Word
from augmenters.masking import ContextualSpec, MaskSpec, SpanMaskSpec
from augmenters.noise import (
    CharNoiseSpec,
    KeyboardSpec,
    OcrSpec,
    PunctuationSpec,
    WordDeleteSpec,
    WordSwapSpec,
)
from augmenters.registry import LocalPath, Registry, WordsName
from augmenters.rng import canonical_json, stable_digest
from augmenters.segment import Segmenter, load_user_words, with_user_words
from augmenters.shape import SimilarShapeSpec
from augmenters.synonym import SynonymSpec

SPEC_VERSION = 1


class SequenceSpec(StepSpec):
    type: Literal["sequence"] = "sequence"
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)

    def build(self) -> Augmenter:
        return SequenceAugmenter(self, [s.build() for s in self.steps])


class OneOfSpec(StepSpec):
    type: Literal["one_of"] = "one_of"
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)
    weights: tuple[Annotated[float, Field(ge=0.0, le=1e6)], ...] | None = Field(
        default=None, max_length=MAX_STEPS
    )

    @model_validator(mode="after")
    def _weights(self) -> OneOfSpec:
        if self.weights is not None:
            if len(self.weights) != len(self.steps):
                raise ValueError(f"{len(self.weights)} weights for {len(self.steps)} steps")
            if sum(self.weights) <= 0:
                raise ValueError("weights must not all be zero")
        return self

    def build(self) -> Augmenter:
        return OneOfAugmenter(self, [s.build() for s in self.steps], self.weights)


class SometimesSpec(StepSpec):
    type: Literal["sometimes"] = "sometimes"
    p: Probability = 0.5
    step: Step

    def build(self) -> Augmenter:
        return SometimesAugmenter(self, self.step.build(), self.p)


Step = Annotated[
    Union[  # noqa: UP007 -- get_args below needs the Union object
        SynonymSpec,
        BackTranslationSpec,
        MaskSpec,
        SpanMaskSpec,
        ContextualSpec,
        KeyboardSpec,
        OcrSpec,
        CharNoiseSpec,
        HomophoneSpec,
        SimilarShapeSpec,
        WordSwapSpec,
        WordDeleteSpec,
        PunctuationSpec,
        SequenceSpec,
        OneOfSpec,
        SometimesSpec,
    ],
    Field(discriminator="type"),
]
FilterStep = Annotated[
    Union[UnchangedSpec, DedupSpec, LengthRatioSpec, SimilaritySpec],  # noqa: UP007
    Field(discriminator="type"),
]
for _model in (SequenceSpec, OneOfSpec, SometimesSpec):
    _model.model_rebuild()


def _by_type(union: Any) -> dict[str, type[BaseModel]]:
    return {m.model_fields["type"].default: m for m in get_args(get_args(union)[0])}


STEPS: dict[str, type[BaseModel]] = _by_type(Step)
FILTERS: dict[str, type[BaseModel]] = _by_type(FilterStep)
COMPOSITIONS = ("sequence", "one_of", "sometimes")
_TAGS = {*FILTERS, "inline", "name"}  # tags of tagged unions, left out of error paths


UserWords = Annotated[
    Annotated[tuple[Word, ...], Field(max_length=MAX_USER_WORDS), Tag("inline")]
    | Annotated[WordsName, Tag("name")],
    Discriminator(lambda v: "name" if isinstance(v, str) else "inline"),
]


class SegmentationSpec(BaseModel):
    """How Chinese text is cut into words: jieba's dictionary, plus ``user_words`` (domain
    terms, product names: a list, or a registered word list's name) or ``user_words_path``
    (a file, one word a line; library and CLI)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_words: UserWords | None = None
    user_words_path: LocalPath | None = None

    def segmenter(self) -> Segmenter:
        words = tuple(self.user_words) if isinstance(self.user_words, tuple) else ()
        if self.user_words_path is not None:
            words += load_user_words(self.user_words_path)
        return with_user_words(words)


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = SPEC_VERSION
    pipeline: Step
    filters: tuple[FilterStep, ...] = Field(default=(), max_length=MAX_FILTERS)
    segmentation: SegmentationSpec | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, version: int) -> int:
        if version != SPEC_VERSION:
            raise ValueError(
                f"unsupported spec version {version}; this antifit reads {SPEC_VERSION}"
            )
        return version

    def to_dict(self) -> dict[str, Any]:
        # a spec without segmentation keeps the form (and digest) it had before there was one
        exclude = {"segmentation"} if self.segmentation is None else None
        ordered: dict[str, Any] = _type_first(self.model_dump(mode="json", exclude=exclude))
        return ordered

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    def digest(self) -> str:
        """Hash of the whole spec (for manifests)."""
        return stable_digest(canonical_json(self.to_dict())).hex()

    def model_refs(self) -> tuple[str, ...]:
        """The models the spec's steps and filters use (names or paths as written), once each
        in order: what a worker loads, and what a manifest pins."""
        found: dict[str, None] = {}

        def walk(node: Any) -> None:
            if isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    value = getattr(node, name)
                    if name == "model" and isinstance(value, str):
                        found[value] = None
                    elif name == "models" and isinstance(value, Mapping):
                        found.update((v, None) for v in value.values() if isinstance(v, str))
                    else:
                        walk(value)
            elif isinstance(node, tuple | list):
                for item in node:
                    walk(item)

        walk(self)
        return tuple(found)

    def pipeline_digest(self) -> str:
        """Hash of the augmentation steps alone: seeds every variant, so adding or changing a
        filter never changes which variants are generated."""
        return stable_digest(canonical_json(self.to_dict()["pipeline"])).hex()


def _type_first(value: Any) -> Any:
    """Put each step's ``type`` first, so specs read naturally; order is not semantic."""
    if isinstance(value, dict):
        ordered = {"type": value["type"]} if "type" in value else {}
        ordered.update((k, _type_first(v)) for k, v in value.items() if k != "type")
        return ordered
    if isinstance(value, list):
        return [_type_first(v) for v in value]
    return value


def parse_spec(
    data: PipelineSpec | Mapping[str, Any] | str | bytes | Path, served: Registry | None = None
) -> PipelineSpec:
    """Read a spec from an object, a JSON string, or a JSON file; invalid -> ``SpecError``
    naming the field (e.g. ``pipeline.steps.1.p``). ``served``: the spec came over the network;
    it may name only the resources registered there, never a path."""
    if isinstance(data, PipelineSpec):
        if served is None:
            return data
        data = data.to_dict()
    if isinstance(data, Path):
        try:
            data = data.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"cannot read spec file: {exc}") from exc
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise SpecError(f"spec is not valid JSON: {exc}") from exc
    if not isinstance(data, Mapping):
        raise SpecError("a spec is a JSON object with 'version', 'pipeline' and 'filters'")
    _check_depth(data.get("pipeline"), "pipeline", 0)
    try:
        if served is not None:  # JSON from the network: strict, as its schema says (no true
            # for 1, no 2.0 for 2)
            return PipelineSpec.model_validate_json(
                json.dumps(data), strict=True, context={"served": served}
            )
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise spec_error(exc) from exc


def _check_depth(step: Any, where: str, depth: int) -> None:
    """Compositions nest at most MAX_DEPTH deep: checked before validation, which recurses."""
    if not isinstance(step, Mapping) or step.get("type") not in COMPOSITIONS:
        return
    if depth == MAX_DEPTH:
        raise SpecError(f"compositions nest at most {MAX_DEPTH} deep", field=where)
    inner = step.get("steps") if step.get("type") != "sometimes" else [step.get("step")]
    if isinstance(inner, list | tuple):
        for i, child in enumerate(inner[:MAX_STEPS]):
            at = f"{where}.step" if step.get("type") == "sometimes" else f"{where}.steps.{i}"
            _check_depth(child, at, depth + 1)


def _where(loc: tuple[int | str, ...]) -> str:
    # pydantic puts the union's tag in the path (steps.1.keyboard.p): leave it out
    return ".".join(str(part) for part in loc if part not in STEPS and part not in _TAGS)


def _message(error: Any) -> str:
    if error["type"] == "union_tag_invalid":
        known = FILTERS if "filters" in error["loc"] else STEPS
        return f"unknown type {error['input'].get('type')!r}; known: {', '.join(sorted(known))}"
    return str(error["msg"]).removeprefix("Value error, ")


def spec_error(exc: ValidationError) -> SpecError:
    details = [{"field": _where(e["loc"]), "message": _message(e)} for e in exc.errors()]
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    first = details[0]
    return SpecError(first["message"] + more, field=first["field"] or None, details=details)


def json_schema() -> dict[str, Any]:
    """JSON Schema of a pipeline spec (for the API's catalogue and for editors)."""
    return PipelineSpec.model_json_schema()


def example_pipelines() -> dict[str, PipelineSpec]:
    """The named example pipelines shipped with the library (``augmenters/data/pipelines``)."""
    from importlib import resources

    folder = resources.files("augmenters").joinpath("data/pipelines")
    return {
        entry.name.removesuffix(".json"): parse_spec(entry.read_text(encoding="utf-8"))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".json")
    }


def step_schemas() -> dict[str, dict[str, Any]]:
    """Each augmenter's and filter's own JSON Schema, by type name."""
    return {name: model.model_json_schema() for name, model in {**STEPS, **FILTERS}.items()}
