"""A variant depends on its record alone, never on the records batched with it.

Every model-based step (Apertium, Marian, the masked LM) runs batched, so each is checked on
varied real sentences — the example reviews and WordNet's example sentences — in file order,
reversed, shuffled, and one record per batch.
"""

import os
import random
import re
from pathlib import Path

import pytest

from augmenters import augment
from augmenters.apertium_tagger import FreshTagger, is_hmm, split_texts, tag_texts
from augmenters.backtranslation import ApertiumEngine
from tests.conftest import has_wordnet, needs_apertium

SEED = 7


def real_sentences(reviews: list[dict[str, object]], wordnet_examples: int) -> list[str]:
    texts = [str(r["text"]) for r in reviews]
    if wordnet_examples and has_wordnet():
        from augmenters.resources import wordnet_source

        quoted = re.compile(r'"([A-Z][^"]{25,110})"')
        with (wordnet_source() / "data.verb").open(encoding="latin-1") as f:
            examples = [m for line in f if not line.startswith(" ") for m in quoted.findall(line)]
        texts += random.Random(0).sample(examples, wordnet_examples)
    return texts


def _records(texts: list[str]) -> list[dict[str, object]]:
    return [{"id": f"s{i}", "text": t} for i, t in enumerate(texts)]


def _variants(
    records: list[dict[str, object]], spec: object, batch_size: int
) -> dict[tuple[str, int], str]:
    out = augment(records, spec, seed=SEED, n_variants=2, batch_size=batch_size)
    return {(v.record_id, v.variant): v.text for v in out}


def assert_neighbour_free(spec: object, texts: list[str], alone: int, batch: int = 7) -> None:
    """Same variants in file order, reversed, shuffled in batches of ``batch``, and (for the
    first ``alone`` records) one record per batch; and the step changed most texts."""
    records = _records(texts)
    reference = _variants(records, spec, 64)
    assert _variants(records[::-1], spec, 64) == reference
    assert _variants(random.Random(1).sample(records, len(records)), spec, batch) == reference
    singles = _variants(records[:alone], spec, 1)
    assert len(singles) == 2 * alone
    assert singles == {key: reference[key] for key in singles}
    changed = sum(reference[(f"s{i}", v)] != t for i, t in enumerate(texts) for v in range(2))
    assert changed >= len(texts)


@needs_apertium
@pytest.mark.parametrize("pivot", ["cat", "spa"])
def test_apertium_translates_each_text_as_if_alone(
    pivot: str, reviews: list[dict[str, object]]
) -> None:
    spec = {"pipeline": {"type": "back_translation", "engine": "apertium", "pivots": [[pivot]]}}
    assert_neighbour_free(spec, real_sentences(reviews, 120), alone=5, batch=40)


@needs_apertium
def test_the_issue_example_no_longer_depends_on_its_neighbours(
    reviews: list[dict[str, object]],
) -> None:
    """Issue 12's report: 9 of 90 variants of the first 30 reviews changed with the order."""
    spec = {"pipeline": {"type": "back_translation", "source": "eng", "pivots": [["cat"]]}}
    records = reviews[:30]
    forward = augment(records, spec, seed=7, n_variants=3)
    backward = augment(records[::-1], spec, seed=7, n_variants=3, batch_size=10)
    key = lambda v: (v.record_id, v.variant)  # noqa: E731
    assert sorted(forward, key=key) == sorted(backward, key=key)
    texts = {v.record_id: v.text for v in forward}
    assert texts["r019"].startswith("The charger")


def test_marian_translates_each_text_as_if_alone(
    tiny_marian_pair: dict[str, str], reviews: list[dict[str, object]]
) -> None:
    spec = {
        "pipeline": {
            "type": "back_translation",
            "engine": "marian",
            "models": tiny_marian_pair,
            "num_beams": 3,
            "temperature": 1.0,
            "max_length": 24,
            "device": "cpu",
        }
    }
    assert_neighbour_free(spec, real_sentences(reviews, 24), alone=6)


def test_contextual_fill_of_each_text_as_if_alone(
    tiny_mlm: Path, reviews: list[dict[str, object]]
) -> None:
    spec = {"pipeline": {"type": "contextual", "model": str(tiny_mlm), "p": 0.3, "top_k": 20}}
    assert_neighbour_free(spec, real_sentences(reviews, 40), alone=8)


# --- the tagger stand-in --------------------------------------------------------------------


def test_the_stream_splits_after_each_texts_blank_superblank() -> None:
    stream = b"^a/a<n>$^./.<sent>$[][\n\n]^b/b<n>$[ \n\n ]^c/*c$^./.<sent>$[][\n]"
    pieces = split_texts(stream)
    assert len(pieces) == 3 and b"".join(pieces) == stream
    assert pieces[1] == b"^b/b<n>$[ \n\n ]"
    assert split_texts(b"") == []


@pytest.mark.parametrize(
    ("args", "hmm"),
    [
        (["-g", "m.prob"], True),
        (["-z", "-g", "m.prob"], True),
        (["-gx", "m.prob"], False),
        (["-g", "--sliding-window", "m"], False),
        (["--unigram=2", "-g", "m"], False),
    ],
)
def test_only_the_hmm_tagger_is_replaced(args: list[str], hmm: bool) -> None:
    assert is_hmm(args) is hmm


@needs_apertium
def test_a_text_with_a_new_ambiguity_class_does_not_change_the_next_ones_tags() -> None:
    """Apertium's cat-eng tagger, fed "teclat sent." (a class it was not trained on) before a
    text with an unknown word, tags that text's "El" as a pronoun; alone, as a determiner."""
    import shutil
    import subprocess

    data = Path("/usr/share/apertium/apertium-eng-cat")
    if not (data / "cat-eng.prob").is_file():
        pytest.skip("needs Debian's apertium-eng-cat")
    analyse = (
        f"apertium-destxt | lt-proc -w {data}/cat-eng.automorf.bin"
        f" | cg-proc -w {data}/cat-eng.rlx.bin"
    )
    text = "El charger va trencar en el segon dia.\n"
    stream = subprocess.run(
        analyse,
        shell=True,
        input=("El teclat sent sòlid.\n\n" + text).encode(),
        capture_output=True,
        check=True,
    ).stdout
    real = shutil.which("apertium-tagger")
    assert real is not None
    tagger = FreshTagger([real, "-g", str(data / "cat-eng.prob")])
    try:
        first, second = tag_texts(split_texts(stream), tagger)
    finally:
        tagger.close()
    assert tagger.starts == 2
    assert second.startswith(b"^El<det>")
    assert (
        ApertiumEngine().translate([text.strip()], "cat", "eng")
        == ApertiumEngine().translate(["El teclat sent sòlid.", text.strip()], "cat", "eng")[1:]
    )


def test_the_stand_in_fails_loudly_without_a_working_tagger(tmp_path: Path) -> None:
    import subprocess
    import sys

    from augmenters import apertium_tagger

    script = apertium_tagger.__file__
    base = {k: v for k, v in os.environ.items() if k != "ANTIFIT_APERTIUM_TAGGER"}
    unset = subprocess.run(
        [sys.executable, script, "-g", "m"], input=b"x", env=base, capture_output=True, check=False
    )
    assert unset.returncode == 2 and b"ANTIFIT_APERTIUM_TAGGER" in unset.stderr
    broken = subprocess.run(
        [sys.executable, script, "-g", "m"],
        input=b"^x/x<n>$",
        capture_output=True,
        env={**base, "ANTIFIT_APERTIUM_TAGGER": "false"},
        check=False,
    )
    assert broken.returncode == 1 and b"exited early" in broken.stderr
    env = apertium_tagger.environment("/usr/bin/true")
    shim = Path(env["APERTIUM_PATH"].split(":")[0]) / "apertium-tagger"
    assert os.access(shim, os.X_OK) and env["ANTIFIT_APERTIUM_TAGGER"] == "/usr/bin/true"
