from hypothesis import given
from hypothesis import strategies as st

from augmenters.tokenize import _LEXICAL, graphemes, is_cjk, split, symbols


@given(st.text(max_size=300))
def test_parts_rebuild_the_text_exactly(text: str) -> None:
    parts = split(text)
    assert "".join(parts) == text
    assert len(parts) % 2 == 1


def test_cjk_is_one_unit_per_character() -> None:
    units = split("我很喜欢 movies")[1::2]
    assert units == ["我", "很", "喜", "欢", "movies"]
    assert [is_cjk(u) for u in units] == [True] * 4 + [False]


def test_combining_marks_and_emoji_sequences_stay_whole() -> None:
    parts = split("cafe\u0301 👍🏽 👨\u200d👩\u200d👧 don't!")
    assert parts[1::2] == ["cafe\u0301", "don't"]
    assert symbols(parts[2]) == ["👍🏽", "👨\u200d👩\u200d👧"]
    assert symbols(parts[-1]) == ["!"]
    assert graphemes("cafe\u0301") == ["c", "a", "f", "e\u0301"]


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_ascii_fast_path_splits_like_the_general_pattern(text: str) -> None:
    assert split(text) == _LEXICAL.split(text)
