import random

import pytest

from augmenters import augment
from augmenters.synonym import SynonymSpec, inflect, wordnet_synonyms
from augmenters.tokenize import match_case
from tests.conftest import needs_wordnet

pytestmark = needs_wordnet

FUNCTION_WORDS = "in on at the a of to by with for and or but"


def test_function_words_are_never_replaced() -> None:
    text = f"I put the cat in the box on the table {FUNCTION_WORDS}"
    aug = SynonymSpec(p=1.0).build()
    for seed in range(30):
        out, _ = aug.augment(text, random.Random(seed))
        assert "atomic number" not in out and "inch" not in out
        assert out.endswith(FUNCTION_WORDS)


def test_content_words_get_wordnet_synonyms_with_case_kept() -> None:
    aug = SynonymSpec(p=1.0, max_senses=2).build()
    out, n = aug.augment("Excellent movie", random.Random(1))
    assert n == 2 and out != "Excellent movie"
    assert out[0].isupper()


def test_synonyms_come_from_wordnet_in_sense_order_without_the_word_itself() -> None:
    syns = wordnet_synonyms("car", "n", 1)
    assert "auto" in syns and "automobile" in syns and "car" not in syns
    assert all("_" not in s for s in wordnet_synonyms("buy", "v", None))
    assert "bargain" in " ".join(wordnet_synonyms("buy", "n", None))


def test_multiword_lemmas_are_spaced_and_inflected() -> None:
    assert inflect("motor vehicle", "NNS") == "motor vehicles"
    assert inflect("look up", "VBZ") == "looks up"
    assert inflect("go", "VBZ") == "goes"
    assert inflect("try", "VBD") == "tried"
    assert inflect("make", "VBG") == "making"
    assert inflect("run", "VBD") is None  # irregular past: not guessed
    assert match_case("HELLO", "hi there") == "HI THERE"
    assert match_case("Hello", "hi there") == "Hi there"


def test_proper_nouns_numbers_and_protected_spans_stay() -> None:
    text = "Alice bought 3 laptops from https://shop.example.com yesterday"
    aug = SynonymSpec(p=1.0).build()
    for seed in range(20):
        out, _ = aug.augment(text, random.Random(seed))
        assert out.startswith("Alice ") and " 3 " in out and "https://shop.example.com" in out


def test_change_rate_near_p() -> None:
    text = "The support team answered quickly and solved every problem with the broken keyboard"
    aug = SynonymSpec(p=0.5).build()
    base = SynonymSpec(p=1.0, max_changes=None).build()
    eligible = base.augment(text, random.Random(0))[1]
    rates = [aug.augment(text, random.Random(s))[1] / eligible for s in range(300)]
    assert abs(sum(rates) / len(rates) - 0.5) < 0.05


def test_lexicon_mode_handles_chinese_without_spaces(tmp_path: pytest.TempPathFactory) -> None:
    spec = {
        "pipeline": {
            "type": "synonym",
            "source": "lexicon",
            "p": 1.0,
            "lexicon": {"喜欢": ["喜爱"], "电影": ["影片"], "good": ["fine"]},
        }
    }
    out = augment(
        [{"id": 1, "text": "我很喜欢这部电影"}, {"id": 2, "text": "Good goods"}], spec, seed=0
    )
    assert out[0].text == "我很喜爱这部影片"
    assert out[1].text == "Fine goods"  # whole words only in spaced scripts; case kept


def test_lexicon_file_errors_name_the_field(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "lex.json"
    bad.write_text('{"a": "not a list"}')
    with pytest.raises(ValueError, match="lexicon_path"):
        augment(
            ["a b"],
            {"pipeline": {"type": "synonym", "source": "lexicon", "lexicon_path": str(bad)}},
            seed=0,
        )
