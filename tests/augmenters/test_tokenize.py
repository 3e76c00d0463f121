import re

from hypothesis import example, given
from hypothesis import strategies as st

from augmenters.tokenize import (
    _LEXICAL,
    _PLAIN_UNIT_OR_HAN_RUN,
    _UNIT_OR_HAN_RUN,
    HAN_CHAR,
    graphemes,
    is_cjk,
    split,
    symbols,
)


@given(st.text(max_size=300))
def test_parts_rebuild_the_text_exactly(text: str) -> None:
    parts = split(text)
    assert "".join(parts) == text
    assert len(parts) % 2 == 1


def test_chinese_is_cut_into_words_and_japanese_stays_per_character() -> None:
    units = split("我很喜欢 movies")[1::2]
    assert units == ["我", "很", "喜欢", "movies"]
    assert [is_cjk(u) for u in units] == [True] * 3 + [False]
    parts = split("这款手机的电池非常耐用，充电速度也很快。")
    assert parts[1::2] == [
        "这", "款", "手机", "的", "电池", "非常", "耐用", "充电", "速度", "也", "很快"
    ]  # fmt: skip
    assert parts[2::2][:3] == ["", "", ""] and parts[-1] == "。"
    # mixed runs: English, numbers and emoji keep their units; a run ends at any of them
    assert split("iPhone15的电池👍很耐用")[1::2] == ["iPhone15", "的", "电池", "很", "耐用"]
    # text with kana is Japanese: the Chinese dictionary is not used, one unit per character
    assert split("日本語のテキスト")[1::2] == list("日本語のテキスト")
    # a Han character carrying a variation selector ends a run (graphemes stay whole)
    assert "\u845b\U000e0100" in split("葛\U000e0100城市")[1::2]


@given(st.text(alphabet="我很喜欢这部电影手机电池非常耐用，。 ab1👍", max_size=60))
def test_segmented_splits_are_reversible_and_units_are_words_or_not_han(text: str) -> None:
    parts = split(text)
    assert "".join(parts) == text
    assert all(p == "" or not HAN_CHAR.search(p) for p in parts[::2])  # no Han between units


def test_combining_marks_and_emoji_sequences_stay_whole() -> None:
    parts = split("cafe\u0301 👍🏽 👨\u200d👩\u200d👧 don't!")
    assert parts[1::2] == ["cafe\u0301", "don't"]
    assert symbols(parts[2]) == ["👍🏽", "👨\u200d👩\u200d👧"]
    assert symbols(parts[-1]) == ["!"]
    assert graphemes("cafe\u0301") == ["c", "a", "f", "e\u0301"]


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=200))
def test_ascii_fast_path_splits_like_the_general_pattern(text: str) -> None:
    assert split(text) == _LEXICAL.split(text)


@given(st.text(alphabet="我電影𠀀豈，。 ab1'’_-é👍\n", max_size=80))
@example("don’t说rock'n'roll，電影's ’a b’")
def test_the_pattern_for_text_without_marks_finds_the_same_units(text: str) -> None:
    def found(pattern: re.Pattern[str]) -> list[tuple[str, int, str | None]]:
        return [(m.group(), m.start(), m.lastgroup) for m in pattern.finditer(text)]

    assert found(_PLAIN_UNIT_OR_HAN_RUN) == found(_UNIT_OR_HAN_RUN)
