"""Reversible tokenization shared by every text augmenter.

``"".join(split(s)) == s`` always. Words are runs of word characters (with
inner apostrophes); CJK ideographs and kana are one token per character, since those scripts
do not separate words with spaces; combining marks, ZWJ sequences, variation selectors and skin
tone modifiers stay attached to their base character, so no edit splits a grapheme.
"""

from __future__ import annotations

import re

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_MARKS = (
    "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\ufe0e\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f"
)
_M = f"[{_MARKS}]*"
_WORD_CHAR = f"[^\\W{_CJK}][{_MARKS}\u200c\u200d]*"
# capturing group: re.split returns separators at even indices, lexical units at odd ones
_LEXICAL = re.compile(
    f"([{_CJK}]{_M}|(?:{_WORD_CHAR})+(?:['\u2019](?:{_WORD_CHAR})+)*)",
)
# the same split for ASCII-only text, where no CJK or combining mark can occur (twice as fast)
_ASCII_LEXICAL = re.compile(r"(\w+(?:'\w+)*)", re.ASCII)
_GRAPHEME = re.compile(f".{_M}(?:\u200d.{_M})*", re.S)
_SYMBOL = re.compile(f"[^\\s]{_M}(?:\u200d[^\\s]{_M})*")
_HAS_LETTER = re.compile(r"[^\W\d_]")
CJK_CHAR = re.compile(f"[{_CJK}]")


def split(text: str) -> list[str]:
    """``[sep, unit, sep, unit, ..., sep]``: lexical units (words; single CJK characters) at odd
    indices, whatever lies between them (spaces, punctuation, emoji; maybe "") at even ones."""
    return _ASCII_LEXICAL.split(text) if text.isascii() else _LEXICAL.split(text)


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
