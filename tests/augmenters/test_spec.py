import json
from pathlib import Path
from typing import Any

import pytest

from augmenters import Pipeline, SpecError, json_schema, parse_spec, step_schemas
from augmenters.spec import COMPOSITIONS, FILTERS, STEPS, PipelineSpec

FILES = Path(__file__).resolve().parent.parent / "files"
EXAMPLES = Path(__file__).resolve().parents[2] / "augmenters" / "data" / "pipelines"

# the one field each augmenter needs beyond its defaults
REQUIRED: dict[str, dict[str, Any]] = {
    "contextual": {"model": "/models/mlm"},
    "sequence": {"steps": [{"type": "mask"}]},
    "one_of": {"steps": [{"type": "mask"}, {"type": "ocr"}]},
    "sometimes": {"step": {"type": "mask"}},
}


def _nested(depth: int) -> dict[str, Any]:
    step: dict[str, Any] = {"type": "mask"}
    for _ in range(depth):
        step = {"type": "sometimes", "step": step}
    return step


@pytest.mark.parametrize("name", sorted(STEPS))
def test_every_registered_step_round_trips(name: str) -> None:
    spec = parse_spec({"pipeline": {"type": name, **REQUIRED.get(name, {})}})
    full = spec.to_dict()
    again = parse_spec(full)
    assert again == spec and again.to_dict() == full
    assert parse_spec(spec.to_json()) == spec
    if name != "contextual":  # building needs no resources until first use
        assert Pipeline(spec).root.to_spec() == spec.pipeline


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_round_trips(name: str) -> None:
    spec = parse_spec({"pipeline": {"type": "mask"}, "filters": [{"type": name}]})
    assert parse_spec(spec.to_dict()).to_dict() == spec.to_dict()
    assert Pipeline(spec).filters[0].spec == spec.filters[0]


@pytest.mark.parametrize(
    "path", [*FILES.glob("spec_*.json"), *EXAMPLES.glob("*.json")], ids=lambda p: p.name
)
def test_golden_spec_files_parse_and_serialise_stably(path: Path) -> None:
    spec = parse_spec(path)
    assert parse_spec(spec.to_dict()) == spec
    assert parse_spec(json.loads(path.read_text())) == spec
    assert spec.digest() == parse_spec(spec.to_json(indent=2)).digest()


def test_example_pipelines_are_packaged_and_valid() -> None:
    from augmenters import example_pipelines

    examples = example_pipelines()
    assert {"eda", "noise", "synonym", "backtranslation", "masking"} <= set(examples)
    assert "similarity" in {f.type for f in examples["label_preserving"].filters}
    assert all(isinstance(s, PipelineSpec) for s in examples.values())


def test_compositions_are_registered() -> None:
    assert set(COMPOSITIONS) <= set(STEPS)


@pytest.mark.parametrize(
    ("bad", "field", "message"),
    [
        ({"pipeline": {"type": "nope"}}, "pipeline", "unknown type 'nope'"),
        ({"pipeline": {"type": "mask", "p": 1.5}}, "pipeline.p", "less than or equal to 1"),
        ({"pipeline": {"type": "mask", "min_changes": -1}}, "pipeline.min_changes", "greater than"),
        (
            {"pipeline": {"type": "mask", "max_changes": 1, "min_changes": 2}},
            "pipeline",
            "max_changes",
        ),
        ({"pipeline": {"type": "mask", "colour": 1}}, "pipeline.colour", "Extra inputs"),
        ({"pipeline": {"type": "sequence", "steps": []}}, "pipeline.steps", "at least 1"),
        (
            {"pipeline": {"type": "one_of", "steps": [{"type": "mask"}], "weights": [1, 2]}},
            "pipeline",
            "2 weights for 1 steps",
        ),
        (
            {"pipeline": {"type": "sequence", "steps": [{"type": "ocr", "p": -0.1}]}},
            "pipeline.steps.0.p",
            "greater than or equal to 0",
        ),
        ({"pipeline": {"type": "keyboard", "layout": "dvorak"}}, "pipeline.layout", "qwerty"),
        (
            {"pipeline": {"type": "mask", "protect": ["("]}},
            "pipeline.protect.0",
            "invalid regular expression",
        ),
        (
            {"pipeline": {"type": "mask", "protect": ["x", "(?<!a)b"]}},
            "pipeline.protect.1",
            "no look-around",
        ),
        (
            {"pipeline": {"type": "mask", "protect": ["a" * 257]}},
            "pipeline.protect.0",
            "at most 256 characters",
        ),
        ({"pipeline": {"type": "mask", "mask_token": "#" * 33}}, "pipeline.mask_token", "32"),
        (
            {"pipeline": {"type": "punctuation", "marks": ["!"] * 33}},
            "pipeline.marks",
            "at most 32 items",
        ),
        (
            {"pipeline": {"type": "contextual", "model": "m", "top_k": 1000}},
            "pipeline.top_k",
            "less than or equal to 100",
        ),
        (
            {"pipeline": {"type": "back_translation", "device": "cuda:../../x"}},
            "pipeline.device",
            "'auto', 'cpu' or 'cuda'",
        ),
        (
            {"pipeline": {"type": "sequence", "steps": [{"type": "mask"}] * 33}},
            "pipeline.steps",
            "at most 32 items",
        ),
        (
            {"pipeline": _nested(9)},
            "pipeline.step.step.step.step.step.step.step.step",
            "nest at most 8 deep",
        ),
        (
            {"pipeline": {"type": "back_translation", "engine": "marian"}},
            "pipeline",
            "needs 'models'",
        ),
        ({"pipeline": {"type": "synonym", "source": "lexicon"}}, "pipeline", "needs 'lexicon'"),
        ({"version": 2, "pipeline": {"type": "mask"}}, "version", "unsupported spec version 2"),
        (
            {"pipeline": {"type": "mask"}, "filters": [{"type": "fuzzy"}]},
            "filters.0",
            "unknown type",
        ),
        ({}, "pipeline", "Field required"),
    ],
)
def test_invalid_specs_name_the_field(bad: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(bad)
    assert info.value.field == field
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_non_object_and_bad_json_specs_are_clear_errors() -> None:
    with pytest.raises(SpecError, match="not valid JSON"):
        parse_spec("{nope")
    with pytest.raises(SpecError, match="JSON object"):
        parse_spec("[1, 2]")


def test_json_schema_export_covers_every_step() -> None:
    schema = json_schema()
    assert schema["title"] == "PipelineSpec"
    text = json.dumps(schema)
    for name in STEPS:
        assert f'"const": "{name}"' in text
    assert set(step_schemas()) == set(STEPS) | set(FILTERS)


def test_pipeline_digest_ignores_filters_but_spec_digest_does_not() -> None:
    a = parse_spec({"pipeline": {"type": "mask"}})
    b = parse_spec({"pipeline": {"type": "mask"}, "filters": [{"type": "dedup"}]})
    assert a.pipeline_digest() == b.pipeline_digest()
    assert a.digest() != b.digest()
    assert isinstance(a, PipelineSpec)


def test_model_refs_name_every_model_a_spec_uses_once_in_order() -> None:
    spec = parse_spec(
        {
            "pipeline": {
                "type": "sequence",
                "steps": [
                    {"type": "contextual", "model": "minilm"},
                    {"type": "keyboard"},
                    {
                        "type": "back_translation",
                        "engine": "marian",
                        "models": {"eng-spa": "opus-en-es", "spa-eng": "opus-es-en"},
                    },
                    {"type": "contextual", "model": "minilm", "p": 0.2},
                ],
            },
            "filters": [{"type": "similarity", "model": "encoder"}],
        }
    )
    assert spec.model_refs() == ("minilm", "opus-en-es", "opus-es-en", "encoder")
    assert parse_spec({"pipeline": {"type": "keyboard"}}).model_refs() == ()
