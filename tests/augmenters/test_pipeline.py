import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from augmenters import Pipeline, Record, RecordError, augment
from tests.conftest import ROOT, needs_apertium, needs_wordnet

NOISE = {
    "pipeline": {
        "type": "sequence",
        "steps": [
            {
                "type": "one_of",
                "steps": [
                    {"type": "keyboard", "p": 0.2},
                    {"type": "ocr", "p": 0.2},
                    {"type": "char_noise", "action": "insert", "p": 0.2},
                ],
            },
            {"type": "sometimes", "p": 0.5, "step": {"type": "word_swap", "p": 0.2}},
            {"type": "span_mask", "p": 0.1},
            {"type": "punctuation", "p": 0.1},
        ],
    }
}


def records(n: int = 60) -> list[dict[str, object]]:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
    rng = random.Random(0)
    return [
        {"id": f"r{i}", "text": " ".join(rng.choices(words, k=12)), "label": i % 3}
        for i in range(n)
    ]


def test_labels_are_untouched_and_every_variant_is_there() -> None:
    out = augment(records(), NOISE, seed=1, n_variants=3)
    assert len(out) == 180
    by_id = {r["id"]: r for r in records()}
    assert all(v.label == by_id[v.record_id]["label"] for v in out)
    assert [v.variant for v in out[:6]] == [0, 1, 2, 0, 1, 2]


def test_same_output_whatever_batch_size_and_order() -> None:
    recs = records()
    a = augment(recs, NOISE, seed=9, n_variants=3, batch_size=1)
    b = augment(recs, NOISE, seed=9, n_variants=3, batch_size=1000)
    c = augment(list(reversed(recs)), NOISE, seed=9, n_variants=3, batch_size=7)
    key = lambda v: (v.record_id, v.variant)  # noqa: E731
    assert a == b
    assert sorted(a, key=key) == sorted(c, key=key)
    assert augment(recs, NOISE, seed=10, n_variants=3) != a


def test_variant_depends_on_record_id_not_position() -> None:
    rec = {"id": "same", "text": "alpha beta gamma delta epsilon zeta eta theta"}
    alone = augment([rec], NOISE, seed=2, n_variants=2)
    among = [
        v for v in augment([*records(5), rec], NOISE, seed=2, n_variants=2) if v.record_id == "same"
    ]
    assert alone == among


SCRIPT = """
import json, sys
from augmenters import augment
recs = [json.loads(l) for l in open(sys.argv[1])]
if sys.argv[3] == "reverse":
    recs.reverse()
spec = json.load(open(sys.argv[2]))
out = augment(recs, spec, seed=11, n_variants=3, batch_size=int(sys.argv[4]))
rows = sorted((json.dumps(v.to_dict(), sort_keys=True, ensure_ascii=False) for v in out))
sys.stdout.write("\\n".join(rows))
"""


def _run(tmp: Path, spec: dict[str, object], hashseed: str, order: str, batch: int) -> bytes:
    data = tmp / "records.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records(40)))
    spec_path = tmp / "spec.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data), str(spec_path), order, str(batch)],
        check=True,
        capture_output=True,
        env=env,
        cwd=ROOT,
    ).stdout


@needs_wordnet
@needs_apertium
def test_two_processes_with_different_hash_seeds_batches_and_orders_agree(tmp_path: Path) -> None:
    spec = {
        "pipeline": {
            "type": "sequence",
            "steps": [
                {"type": "synonym", "p": 0.3},
                {
                    "type": "sometimes",
                    "p": 0.3,
                    "step": {"type": "back_translation", "pivots": [["spa"], ["cat"]]},
                },
                *NOISE["pipeline"]["steps"],
            ],
        },  # type: ignore[index]
        "filters": [{"type": "dedup"}],
    }
    a = _run(tmp_path, spec, "1", "forward", 30)
    b = _run(tmp_path, spec, "4242", "reverse", 256)
    assert a == b and len(a.splitlines()) >= 100


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "x" * 100_000,
        " ".join(["word"] * 20_000),
        "👍🏽 héllo cafe\u0301 👨\u200d👩\u200d👧 !!",
        "\u0301\u0301 leading marks",
        "混合 mixed 文本 text 123",
    ],
)
def test_odd_texts_never_crash(text: str) -> None:
    spec = {
        "pipeline": {
            "type": "sequence",
            "steps": [
                {"type": "keyboard", "p": 0.3},
                {"type": "ocr", "p": 0.3},
                {"type": "word_swap", "p": 0.3},
                {"type": "word_delete", "p": 0.3},
                {"type": "punctuation", "p": 0.3},
                {"type": "mask", "p": 0.3},
                {"type": "span_mask", "p": 0.3},
                {"type": "char_noise", "action": "delete", "p": 0.3},
            ],
        }
    }
    out = augment([{"id": 1, "text": text}], spec, seed=0, n_variants=2)
    assert len(out) == 2
    if not text.strip():
        assert all(v.text == text for v in out)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"id": 1, "text": 5}, "records[0].text"),
        ({"id": 1}, "records[0].text"),
        ({"id": [1], "text": "a"}, "records[0].id"),
        ({"id": 1, "text": "a", "meta": 3}, "records[0].meta"),
        (42, "records[0]"),
    ],
)
def test_bad_records_are_value_errors_naming_the_field(record: object, field: str) -> None:
    with pytest.raises(RecordError) as info:
        augment([record], NOISE, seed=0)  # type: ignore[list-item]
    assert info.value.field == field


def test_bad_arguments() -> None:
    with pytest.raises(RecordError, match="seed"):
        list(Pipeline(NOISE).augment(["a"], seed="1"))  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="n_variants"):
        list(Pipeline(NOISE).augment(["a"], seed=1, n_variants=-1))


def test_bare_strings_get_content_ids() -> None:
    assert Record.coerce("hello", 0).id == Record.coerce("hello", 5).id
    out = augment(["alpha beta gamma delta"], NOISE, seed=0, n_variants=1)
    assert out[0].record_id == Record.coerce("alpha beta gamma delta", 0).id
