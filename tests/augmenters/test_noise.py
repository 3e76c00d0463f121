import random
import re
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augmenters import augment
from augmenters.noise import (
    CharNoiseSpec,
    KeyboardSpec,
    OcrSpec,
    PunctuationSpec,
    WordDeleteSpec,
    WordSwapSpec,
    keyboard_neighbours,
)
from augmenters.tokenize import split

SENTENCE = (
    "The support team answered quickly and solved every single problem with the broken "
    "laptop keyboard before the weekend"
)
CHAR_SPECS = [
    KeyboardSpec(p=0.3),
    KeyboardSpec(p=0.3, layout="azerty"),
    OcrSpec(p=0.3),
    *(CharNoiseSpec(p=0.3, action=a) for a in ("insert", "substitute", "swap", "delete")),
]


def words(text: str) -> list[str]:
    return split(text)[1::2]


@pytest.mark.parametrize("spec", CHAR_SPECS, ids=lambda s: f"{s.type}-{getattr(s, 'action', '')}")
def test_char_ops_change_about_p_of_the_words(spec: KeyboardSpec) -> None:
    aug = spec.build()
    eligible = [w for w in words(SENTENCE) if len(w) >= spec.min_word_length]
    rates = []
    for seed in range(300):
        out, changes = aug.augment(SENTENCE, random.Random(seed))
        changed = sum(a != b for a, b in zip(words(SENTENCE), words(out), strict=True))
        assert changed == changes
        rates.append(changes / len(eligible))
    # every op here finds an edit in most words, so the rate sits a little under p
    assert 0.8 * spec.p <= statistics.mean(rates) <= 1.05 * spec.p


def test_keyboard_neighbours_are_adjacent_keys() -> None:
    near = keyboard_neighbours("qwerty")
    assert set(near["g"]) == set("fhtybv")
    assert "q" in keyboard_neighbours("azerty")["s"]


def test_case_is_kept_by_keyboard_typos() -> None:
    out, _ = KeyboardSpec(p=1.0).build().augment("HELLO WORLD", random.Random(3))
    assert out.isupper() and out != "HELLO WORLD"


URL = "https://example.com/ticket/4821?a=b"


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    spec=st.sampled_from(
        [*CHAR_SPECS, WordSwapSpec(p=0.5), WordDeleteSpec(p=0.5), PunctuationSpec(p=0.5)]
    ),
)
def test_urls_and_user_patterns_are_never_touched(seed: int, spec: KeyboardSpec) -> None:
    spec = spec.model_copy(update={"protect": (r"ID-\d+",), "p": 1.0})
    text = f"Please open {URL} now and quote ID-5521 when calling the support desk"
    out, _ = spec.build().augment(text, random.Random(seed))
    assert URL in out
    assert "ID-5521" in out


def test_numbers_protected_only_when_asked() -> None:
    text = "Order 12345 arrived 3 days late"
    hits = [
        OcrSpec(p=1.0, min_word_length=1, protect_numbers=True)
        .build()
        .augment(text, random.Random(s))[0]
        for s in range(30)
    ]
    assert all("12345" in h for h in hits)
    spec = CharNoiseSpec(p=1.0, min_word_length=1, action="delete")
    assert spec.build().augment("abc 12345", random.Random(0))[
        0
    ]  # digits-only words are not words with letters


def test_word_swap_keeps_the_multiset_of_words() -> None:
    aug = WordSwapSpec(p=0.5).build()
    for seed in range(50):
        out, _ = aug.augment(SENTENCE, random.Random(seed))
        assert sorted(words(out)) == sorted(words(SENTENCE))


def test_word_delete_never_empties_a_text_and_leaves_no_double_spaces() -> None:
    aug = WordDeleteSpec(p=1.0).build()
    for seed in range(50):
        out, changes = aug.augment("just three words", random.Random(seed))
        assert len(words(out)) == 1 and changes == 2
        assert "  " not in out and out == out.strip()


def test_punctuation_inserts_only_marks() -> None:
    aug = PunctuationSpec(p=0.3).build()
    out, n = aug.augment(SENTENCE, random.Random(1))
    assert n >= 1
    assert words(out) == words(SENTENCE)
    assert len(re.findall(r"[.;?:!,]", out)) == n


def test_min_and_max_changes_bound_the_count() -> None:
    aug = KeyboardSpec(p=0.0, min_changes=2).build()
    assert aug.augment(SENTENCE, random.Random(0))[1] == 2
    aug = KeyboardSpec(p=1.0, max_changes=3).build()
    assert aug.augment(SENTENCE, random.Random(0))[1] == 3


def test_golden_outputs_under_a_fixed_seed() -> None:
    spec = {
        "pipeline": {
            "type": "sequence",
            "steps": [
                {"type": "keyboard", "p": 0.2},
                {"type": "ocr", "p": 0.1},
                {"type": "word_swap", "p": 0.1},
                {"type": "punctuation", "p": 0.1},
            ],
        }
    }
    got = [v.text for v in augment([{"id": "a", "text": SENTENCE}], spec, seed=7, n_variants=2)]
    assert got == GOLDEN


GOLDEN = [
    "The sulport answered team quicklg and solved svery single the with probIem : broken laptop "
    "keyboard before ; the weekend",
    "The su0port team answered . quickly , and solved ever6 single problem w1th the keyboard "
    "laptop broken befkre the weekend",
]
