"""Reversible tokenization shared by every text augmenter.

``"".join(t.text for t in tokenize(s)) == s`` always. Words are runs of word characters (with
inner apostrophes); CJK ideographs and kana are one token per character, since those scripts
do not separate words with spaces; combining marks, ZWJ sequences, variation selectors and skin
tone modifiers stay attached to their base character, so no edit splits a grapheme.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

Kind = Literal["word", "cjk", "space", "punct"]

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_MARKS = (
    "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
    "\ufe0e\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f"
)
_M = f"[{_MARKS}]*"
_WORD_CHAR = f"[^\\W{_CJK}][{_MARKS}\u200c\u200d]*"
_TOKEN = re.compile(
    f"(?P<cjk>[{_CJK}]{_M})"
    f"|(?P<word>(?:{_WORD_CHAR})+(?:['\u2019](?:{_WORD_CHAR})+)*)"
    r"|(?P<space>\s+)"
    f"|(?P<punct>.{_M}(?:\u200d.{_M})*)",
    re.S,
)
_GRAPHEME = re.compile(f".{_M}(?:\u200d.{_M})*", re.S)
_HAS_LETTER = re.compile(r"[^\W\d_]")
CJK_CHAR = re.compile(f"[{_CJK}]")


class Token(NamedTuple):
    text: str
    start: int
    kind: Kind

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def is_lexical(self) -> bool:
        """A word or a CJK character: what word-level operations count and change."""
        return self.kind == "word" or self.kind == "cjk"


def tokenize(text: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.lastgroup) for m in _TOKEN.finditer(text)]  # type: ignore[arg-type]


def is_lexical(tok: Token) -> bool:
    return tok.kind == "word" or tok.kind == "cjk"


def graphemes(word: str) -> list[str]:
    """Split into user-perceived characters (base character plus its marks)."""
    return _GRAPHEME.findall(word)


def has_letter(word: str) -> bool:
    return _HAS_LETTER.search(word) is not None


def detokenize(tokens: list[str]) -> str:
    return "".join(tokens)
