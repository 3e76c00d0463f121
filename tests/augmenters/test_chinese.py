"""Chinese text: word-level ops act on segmenter words, never on half of one."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augmenters.spec import parse_spec
from augmenters.tokenize import HAN_CHAR, split

SENTENCES = [
    "这款手机的电池非常耐用，充电速度也很快，我很满意。",
    "屏幕清晰，运行流畅，物超所值。",
    "快递太慢了，包装也破损了，非常失望。",
    "客服态度很好，耐心解答了我的问题。",
]
OPS = [
    {"type": "word_delete", "p": 0.3},
    {"type": "word_swap", "p": 0.3},
    {"type": "mask", "p": 0.3, "mask_token": "▢"},
    {"type": "span_mask", "p": 0.3, "mask_token": "▢"},
    {"type": "punctuation", "p": 0.3},
]


def whole_words(text: str, words: Counter[str]) -> bool:
    """Whether the Han characters of ``text``, run by run, are whole words of ``words``
    (each used at most as often as it occurs)."""
    runs = "".join(c if HAN_CHAR.match(c) else " " for c in text).split()

    def cover(rest: str, left: Counter[str]) -> bool:
        if not rest:
            return True
        for n in range(len(rest), 0, -1):
            word = rest[:n]
            if left[word] > 0:
                left[word] -= 1
                if cover(rest[n:], left):
                    return True
                left[word] += 1
        return False

    left = Counter(words)
    return all(cover(run, left) for run in runs)


@settings(max_examples=60, deadline=None)
@given(
    sentence=st.sampled_from(SENTENCES),
    op=st.sampled_from(OPS),
    seed=st.integers(0, 10_000),
)
def test_no_op_splits_a_segmenter_word(sentence: str, op: dict[str, object], seed: int) -> None:
    augmenter = parse_spec({"version": 1, "pipeline": op}).pipeline.build()
    out, _ = augmenter.augment(sentence, random.Random(seed))
    words = Counter(split(sentence)[1::2])
    assert whole_words(out, words), (sentence, out)


@pytest.mark.parametrize("op", OPS[:2])
def test_the_ops_change_chinese_text(op: dict[str, object]) -> None:
    augmenter = parse_spec({"version": 1, "pipeline": op}).pipeline.build()
    outs = {augmenter.augment(SENTENCES[0], random.Random(seed))[0] for seed in range(10)}
    assert len(outs - {SENTENCES[0]}) >= 5
