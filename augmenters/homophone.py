"""Typos the way Chinese is typed: with a pinyin input method a slip picks another character
of the same sound (电池 -> 电驰), so the ``homophone`` op replaces one character of a chosen
Chinese word with a common character read the same (``tone: "same"``) or the same up to its
tone (``"any"``).

Readings come from pypinyin (MIT, its data shipped in the package), in context for the word's
own characters (a character with several readings gets the one the word uses). Replacements
are drawn from the 3,755 common characters of GB 2312 level 1, so a typo is a character
people type, not a rare one; a traditional text gets traditional replacements (OpenCC).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Literal

from pydantic import Field

from augmenters.base import Count
from augmenters.han_typo import HanTypoAugmenter
from augmenters.noise import CharSpec

Tone = Literal["same", "any"]


@cache
def common_characters() -> tuple[str, ...]:
    """GB 2312 level 1: rows 16-55 (bytes 0xB0-0xD7), 94 cells a row (row 55 has 89)."""
    chars = []
    for row in range(0xB0, 0xD8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.append(bytes((row, cell)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return tuple(chars)


def _reading(syllable: str, tone: Tone) -> str:
    return syllable if tone == "same" else syllable.rstrip("012345")


@cache
def homophones(tone: Tone) -> dict[str, tuple[str, ...]]:
    """Reading -> the common characters read so (their most frequent reading)."""
    from pypinyin import Style, lazy_pinyin

    chars = common_characters()
    readings = lazy_pinyin(list(chars), style=Style.TONE3, neutral_tone_with_five=True)
    index: dict[str, list[str]] = {}
    for char, reading in zip(chars, readings, strict=True):
        index.setdefault(_reading(reading, tone), []).append(char)
    return {reading: tuple(found) for reading, found in index.items()}


@lru_cache(maxsize=100_000)
def _options(word: str, tone: Tone) -> tuple[tuple[str, ...], ...]:
    """For each character of a (simplified) word, the common characters read as it is read
    in this word."""
    from pypinyin import Style, lazy_pinyin

    index = homophones(tone)
    readings = lazy_pinyin(word, style=Style.TONE3, neutral_tone_with_five=True)
    return tuple(
        tuple(c for c in index.get(_reading(r, tone), ()) if c != ch)
        for ch, r in zip(word, readings, strict=True)
    )


class HomophoneSpec(CharSpec):
    type: Literal["homophone"] = "homophone"
    min_word_length: Count = 1
    tone: Tone = Field(
        default="same", description="same: the same syllable and tone; any: any tone"
    )

    def build(self) -> HomophoneAugmenter:
        return HomophoneAugmenter(self)


class HomophoneAugmenter(HanTypoAugmenter):
    """One character of each chosen Chinese word replaced by a homophone."""

    op = "homophone"
    spec: HomophoneSpec

    def options(self, word: str) -> tuple[tuple[str, ...], ...]:
        return _options(word, self.spec.tone)
