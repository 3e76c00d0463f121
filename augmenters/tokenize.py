"""Reversible tokenization shared by every text augmenter.

``"".join(split(s)) == s`` always. Words are runs of word characters (with
inner apostrophes). Chinese does not separate words with spaces: runs of Han characters are cut
into words by a segmenter (augmenters/segment.py), so an op deletes, swaps or masks "手机", never
half of it. Text with kana (Japanese, which that segmenter's dictionary does not cover) keeps
one unit per CJK character, as do other unsegmented scripts. Combining marks, ZWJ sequences,
variation selectors and skin tone modifiers stay attached to their base character, so no edit
splits a grapheme.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from augmenters.segment import Segmenter

# code point ranges of Han characters: extension A, the unified block, compatibility
# ideographs, extensions B-F
HAN_RANGES = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2EBEF))
_HAN = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in HAN_RANGES)
_KANA = "\u3040-\u30ff"
_CJK = _KANA + _HAN
_MARKS = (
    "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\ufe00-\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f\U000e0100-\U000e01ef"
)
_M = f"[{_MARKS}]*"
_LETTER = f"[^\\W{_CJK}]"
_WORD_CHAR = f"{_LETTER}[{_MARKS}\u200c\u200d]*"


def _word(char: str) -> str:
    """A word of ``char``s, with inner apostrophes."""
    return f"(?:{char})+(?:['\u2019](?:{char})+)*"


# one lexical unit: a CJK character, or a word
_UNIT = f"[{_CJK}]{_M}|{_word(_WORD_CHAR)}"
# capturing group: re.split returns separators at even indices, lexical units at odd ones
_LEXICAL = re.compile(f"({_UNIT})")
# the same split for ASCII-only text, where no CJK or combining mark can occur (twice as fast)
_ASCII_LEXICAL = re.compile(r"(\w+(?:'\w+)*)", re.ASCII)
_GRAPHEME = re.compile(f".{_M}(?:\u200d.{_M})*", re.S)
_SYMBOL = re.compile(f"[^\\s]{_M}(?:\u200d[^\\s]{_M})*")
_HAS_LETTER = re.compile(r"[^\W\d_]")
CJK_CHAR = re.compile(f"[{_CJK}]")
HAN_CHAR = re.compile(f"[{_HAN}]")
HAN_WORD = re.compile(f"[{_HAN}]+")
# Han characters to segment: a character carrying a mark stays a unit of its own (whole)
_HAN_RUN = re.compile(f"(?:[{_HAN}](?![{_MARKS}]))+")
KANA_CHAR = re.compile(f"[{_KANA}]")
# a Han run to segment, or else one lexical unit as _LEXICAL finds them
_UNIT_OR_HAN_RUN = re.compile(f"(?P<han>{_HAN_RUN.pattern})|{_UNIT}")
# the same for text without combining marks or joiners (nearly all Chinese text): no lookahead
# after every character, twice as fast
_MARK_OR_JOINER = re.compile(f"[{_MARKS}\u200c\u200d]")
_PLAIN_UNIT_OR_HAN_RUN = re.compile(f"(?P<han>[{_HAN}]+)|{_word(_LETTER)}")


def split(text: str, segmenter: Segmenter | None = None) -> list[str]:
    """``[sep, unit, sep, unit, ..., sep]``: lexical units (words; Chinese words, as
    ``segmenter`` cuts them, by default with jieba's dictionary; other CJK characters one by
    one) at odd indices, whatever lies between them (spaces, punctuation, emoji; maybe "") at
    even ones."""
    if text.isascii():
        return _ASCII_LEXICAL.split(text)
    if not HAN_CHAR.search(text) or KANA_CHAR.search(text):
        return _LEXICAL.split(text)
    if segmenter is None:
        from augmenters.segment import DEFAULT

        segmenter = DEFAULT
    # one pass: a Han run is cut into words (no separator between them), any other lexical
    # unit is one unit, and whatever lies between matches is a separator
    parts: list[str] = []
    append = parts.append
    start = 0
    marked = _MARK_OR_JOINER.search(text) is not None
    for match in (_UNIT_OR_HAN_RUN if marked else _PLAIN_UNIT_OR_HAN_RUN).finditer(text):
        append(text[start : match.start()])
        if match.lastgroup == "han":
            words = segmenter.words(match.group())
            between = [""] * (2 * len(words) - 1)  # the words, with no separator between them
            between[::2] = words
            parts += between
        else:
            append(match.group())
        start = match.end()
    append(text[start:])
    return parts


def symbols(separator: str) -> list[str]:
    """The non-space graphemes of a separator (punctuation, emoji), one token each."""
    return _SYMBOL.findall(separator)


def graphemes(word: str) -> list[str]:
    """Split into user-perceived characters (base character plus its marks)."""
    return list(word) if word.isascii() else _GRAPHEME.findall(word)


def has_letter(word: str) -> bool:
    return _HAS_LETTER.search(word) is not None


def is_cjk(unit: str) -> bool:
    return CJK_CHAR.match(unit) is not None


def match_case(original: str, replacement: str) -> str:
    """Give ``replacement`` the case pattern of ``original`` (ALL CAPS or Capitalised)."""
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement
