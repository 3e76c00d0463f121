from hypothesis import given
from hypothesis import strategies as st

from augmenters.tokenize import graphemes, tokenize


@given(st.text(max_size=300))
def test_tokens_rebuild_the_text_exactly(text: str) -> None:
    assert "".join(t.text for t in tokenize(text)) == text


def test_cjk_is_one_token_per_character() -> None:
    toks = tokenize("我很喜欢 movies")
    assert [t.text for t in toks if t.kind == "cjk"] == ["我", "很", "喜", "欢"]
    assert [t.text for t in toks if t.kind == "word"] == ["movies"]


def test_combining_marks_and_emoji_sequences_stay_whole() -> None:
    text = "cafe\u0301 👍🏽 👨\u200d👩\u200d👧 don't"
    toks = tokenize(text)
    assert "cafe\u0301" in [t.text for t in toks]
    assert "👍🏽" in [t.text for t in toks]
    assert "👨\u200d👩\u200d👧" in [t.text for t in toks]
    assert "don't" in [t.text for t in toks]
    assert graphemes("cafe\u0301") == ["c", "a", "f", "e\u0301"]
