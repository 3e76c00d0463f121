"""Named resources: a served spec names registered lexicons and models, never paths."""

import json
import time
from pathlib import Path
from typing import Any

import pytest

from augmenters import Pipeline, SpecError, parse_spec
from augmenters.registry import Registry


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    (tmp_path / "lexicons").mkdir()
    (tmp_path / "lexicons" / "colours.json").write_text(json.dumps({"red": ["crimson"]}))
    (tmp_path / "lexicons" / "not a name.json").write_text("{}")
    (tmp_path / "models" / "mlm").mkdir(parents=True)
    (tmp_path / "models" / "mlm" / "config.json").write_text("{}")
    (tmp_path / "models" / "empty").mkdir()  # no config.json: not a model
    return Registry(tmp_path)


def test_registry_lists_only_usable_named_entries(registry: Registry) -> None:
    assert sorted(registry.lexicons()) == ["colours"]
    assert sorted(registry.models()) == ["mlm"]


@pytest.mark.parametrize(
    ("step", "field", "message"),
    [
        (
            {"type": "synonym", "source": "lexicon", "lexicon_path": "/etc/passwd"},
            "pipeline.lexicon_path",
            "never names a server file",
        ),
        (
            {"type": "synonym", "source": "lexicon", "lexicon": "../colours"},
            "pipeline.lexicon",
            "never server paths",
        ),
        (
            {"type": "synonym", "source": "lexicon", "lexicon": "cilin"},
            "pipeline.lexicon",
            "registered: colours",
        ),
        ({"type": "contextual", "model": "/etc"}, "pipeline.model", "never server paths"),
        ({"type": "contextual", "model": "empty"}, "pipeline.model", "registered: mlm"),
        (
            {
                "type": "back_translation",
                "engine": "marian",
                "models": {"eng-spa": "mlm", "spa-eng": "/dev/zero"},
            },
            "pipeline.models.spa-eng",
            "never server paths",
        ),
    ],
)
def test_a_served_spec_names_no_server_path(
    registry: Registry, step: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"pipeline": step}, served=registry)
    assert info.value.field == field
    assert message in info.value.message
    parse_spec({"pipeline": step})  # the library accepts the same spec: it runs as the user


def test_filter_models_are_names_too(registry: Registry) -> None:
    spec = {"pipeline": {"type": "mask"}, "filters": [{"type": "similarity", "model": "/tmp"}]}
    with pytest.raises(SpecError) as info:
        parse_spec(spec, served=registry)
    assert info.value.field == "filters.0.model"


def test_a_named_lexicon_resolves_when_built_and_keeps_the_seeds(registry: Registry) -> None:
    by_name = {"type": "synonym", "source": "lexicon", "lexicon": "colours", "p": 1.0}
    served = Pipeline({"pipeline": by_name}, served=registry)
    [variant] = served.augment(["a red door"], seed=1)
    assert variant.text == "a crimson door"
    assert served.spec.to_dict()["pipeline"]["lexicon"] == "colours"  # the name, not the path
    # the same spec on another host, its folder elsewhere: same seeds, same output
    moved = registry.root.parent / "elsewhere"  # type: ignore[union-attr]
    registry.root.rename(moved)  # type: ignore[union-attr]
    again = Pipeline({"pipeline": by_name}, served=Registry(moved))
    assert served._seed_key == again._seed_key
    assert [v.text for v in again.augment(["a red door"], seed=1)] == ["a crimson door"]


def test_the_library_reads_names_from_the_environment(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTIFIT_RESOURCES_DIR", str(registry.root))
    step = {"type": "synonym", "source": "lexicon", "lexicon": "colours", "p": 1.0}
    [variant] = Pipeline({"pipeline": step}).augment(["red"], seed=0)
    assert variant.text == "crimson"


@pytest.mark.parametrize("path", ["/dev/zero", "/etc"])
def test_a_lexicon_path_that_is_no_file_is_refused_without_reading(path: str) -> None:
    step = {"type": "synonym", "source": "lexicon", "lexicon_path": path}
    with pytest.raises(SpecError, match="not a regular file"):
        list(Pipeline({"pipeline": step}).augment(["text"], seed=0))


def test_protect_patterns_cannot_backtrack_catastrophically() -> None:
    spec = {"pipeline": {"type": "char_noise", "p": 1.0, "protect": ["(a+)+$"]}}
    start = time.monotonic()
    [variant] = Pipeline(spec).augment(["a" * 100_000 + "!"], seed=0)
    assert time.monotonic() - start < 5  # Python's re: ~3.5x longer per extra 2 characters
    assert variant.text != ""
