import random
from collections.abc import Sequence

import pytest

from augmenters import augment
from augmenters.backtranslation import (
    ApertiumEngine,
    BackTranslationAugmenter,
    BackTranslationSpec,
    Candidates,
)
from augmenters.base import Draft
from augmenters.errors import ResourceMissing
from tests.conftest import needs_apertium

SENTENCES = [
    "The battery lasts two full days and charging is quick.",
    "Customer support answered within an hour and solved my problem.",
    "",
    "   ",
    "Terrible instructions, I could not figure out how to pair it.",
    "Line one\n\nstill the same text",
]


@needs_apertium
def test_apertium_round_trip_stays_aligned_and_changes_wording() -> None:
    engine = ApertiumEngine(chunk=4)
    spanish = engine.translate(SENTENCES, "eng", "spa")
    assert len(spanish) == len(SENTENCES)
    assert "batería" in spanish[0][0][0]
    assert spanish[2] == [("", 0.0)]
    back = engine.translate([c[0][0] for c in spanish], "spa", "eng")
    assert "battery" in back[0][0][0].lower()
    assert "*" not in back[1][0][0]


@needs_apertium
def test_back_translation_pipeline_via_two_pivots() -> None:
    spec = {"pipeline": {"type": "back_translation", "pivots": [["spa"], ["cat"]]}}
    records = [{"id": i, "text": t, "label": "x"} for i, t in enumerate(SENTENCES)]
    out = augment(records, spec, seed=1, n_variants=4)
    assert len(out) == 4 * len(SENTENCES)
    notes = {v.ops[0].note for v in out}
    assert {"via spa", "via cat"} <= notes
    assert all(v.label == "x" for v in out)
    assert sum(v.text != SENTENCES[int(v.record_id)] for v in out) >= 8


@needs_apertium
def test_unknown_apertium_pair_is_a_clear_error() -> None:
    with pytest.raises(ResourceMissing, match="eng-xxx"):
        ApertiumEngine().translate(["hello"], "eng", "xxx")


class FlakyEngine:
    """Fails every text containing 'fail'; records how it was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str, str]] = []

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Candidates]:
        self.calls.append((list(texts), source, target))
        return [
            [] if "fail" in t else [(f"{t}>{target}", -1.0), (f"{t}~{target}", -2.0)] for t in texts
        ]


def test_failed_translation_keeps_the_original_and_says_so() -> None:
    engine = FlakyEngine()
    aug = BackTranslationAugmenter(BackTranslationSpec(pivots=(("spa", "cat"),)), engine)
    drafts = [Draft("ok one"), Draft("please fail"), Draft("ok one")]
    aug.augment_batch(drafts, [random.Random(i) for i in range(3)])
    assert drafts[0].text == "ok one>spa>cat>eng"
    assert drafts[1].text == "please fail"
    assert "failed" in (drafts[1].applied[0].note or "")
    # the pivot chain is eng->spa->cat->eng and the repeated text was translated once
    assert [(src, tgt) for _, src, tgt in engine.calls] == [
        ("eng", "spa"),
        ("spa", "cat"),
        ("cat", "eng"),
    ]
    assert engine.calls[0][0] == ["ok one", "please fail"]


def test_temperature_draws_among_candidates_per_variant() -> None:
    spec = BackTranslationSpec(temperature=5.0)
    aug = BackTranslationAugmenter(spec, FlakyEngine())
    texts = set()
    for seed in range(40):
        d = Draft("x")
        aug.augment_batch([d], [random.Random(seed)])
        texts.add(d.text)
    assert len(texts) == 4  # 2 candidates at each of 2 hops


def test_marian_engine_with_tiny_local_models(tiny_marian_pair: dict[str, str]) -> None:
    spec = {
        "pipeline": {
            "type": "back_translation",
            "engine": "marian",
            "models": tiny_marian_pair,
            "num_beams": 3,
            "temperature": 1.0,
            "max_length": 16,
            "device": "cpu",
            "batch_size": 2,
        }
    }
    records = [{"id": i, "text": t} for i, t in enumerate(SENTENCES[:2] + ["the cat sat"])]
    a = augment(records, spec, seed=5, n_variants=2, batch_size=2)
    b = augment(records, spec, seed=5, n_variants=2, batch_size=64)
    assert len(a) == 6
    assert [v.text for v in a] == [v.text for v in b]
    assert all(v.ops[0].op == "back_translation" for v in a)
