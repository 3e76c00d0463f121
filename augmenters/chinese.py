"""What the Chinese-aware ops share: script conversion (OpenCC: a traditional text is looked up
in simplified form and written back in traditional), word classes from jieba's dictionary (to
leave proper nouns, numbers and function words alone) and a stopword list. Loaded on first
use; one private OpenCC converter per configuration and process."""

from __future__ import annotations

import json
import threading
from functools import cache, lru_cache
from importlib import resources as importlib_resources
from typing import Any

_lock = threading.Lock()
_converters: dict[str, Any] = {}

# jieba's dictionary tags of words an op may replace: nouns, verbs, adjectives, adverbs (not
# person/place/organisation names nr ns nt nz, numerals m, measure words q, pronouns r,
# prepositions p, conjunctions c, particles u*, ...)
CONTENT = frozenset({"n", "ng", "nl", "v", "vn", "vd", "vg", "a", "ad", "an", "ag", "d", "dg"})


def _convert(text: str, config: str) -> str:
    converter = _converters.get(config)
    if converter is None:
        with _lock:
            converter = _converters.get(config)
            if converter is None:
                import opencc

                converter = _converters[config] = opencc.OpenCC(config)
    result: str = converter.convert(text)
    return result


def simplified(text: str) -> str:
    return _convert(text, "t2s")


def traditional(text: str) -> str:
    return _convert(text, "s2t")


@cache
def _traditional_only() -> frozenset[str]:
    """The Han characters that t2s changes on their own (about 4,600 of 88,000): those of the
    traditional script only. Built once, converting every Han character (~0.06 s)."""
    from augmenters.tokenize import HAN_RANGES

    chars = [chr(c) for lo, hi in HAN_RANGES for c in range(lo, hi + 1)]
    # one character a line, so no phrase of the conversion table spans two
    converted = simplified("\n".join(chars)).split("\n")
    return frozenset(c for c, s in zip(chars, converted, strict=True) if s != c)


def has_traditional_characters(text: str) -> bool:
    """Whether the text has a character of the traditional script only (a set lookup a
    character, no conversion: most Chinese text has none)."""
    return not _traditional_only().isdisjoint(text)


def is_traditional(text: str) -> bool:
    """Whether the text is written in traditional characters: it has characters of the
    traditional script only, and simplifying it changes it. Both, since OpenCC's phrase table
    leaves some of those characters in place (乾隆) and rewrites some simplified phrases
    (打坏 -> 打坯): a simplified text holding those is not traditional."""
    return has_traditional_characters(text) and simplified(text) != text


@cache
def stopwords() -> frozenset[str]:
    text = importlib_resources.files("augmenters").joinpath("data/stopwords_zh.json").read_text()
    return frozenset(json.loads(text))


@lru_cache(maxsize=200_000)
def word_class(word: str) -> str:
    """The word's tag in jieba's dictionary ("x" when it is not one word there)."""
    from augmenters.segment import DEFAULT

    return DEFAULT.tag(word)


def content_word(word: str) -> bool:
    """A word synonym replacement may change: a dictionary noun, verb, adjective or adverb,
    not a stopword."""
    return word not in stopwords() and word_class(word) in CONTENT
