"""Word-level differences between an original text and a variant, for the console to mark."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

_WORD = re.compile(r"\S+")
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Segment:
    kind: Literal["same", "deleted", "inserted"]
    text: str


def _units(text: str) -> list[str]:
    """Words; characters in scripts written without spaces (a CJK 'word' would be a sentence)."""
    if _UNSPACED.search(text):
        return [c for c in text if not c.isspace()]
    return _WORD.findall(text)


def word_diff(original: str, variant: str) -> list[Segment]:
    """Segments in reading order: kept, deleted (from the original) and inserted (in the
    variant) runs; a replacement is a deletion followed by an insertion."""
    a, b = _units(original), _units(variant)
    joiner = "" if _UNSPACED.search(original + variant) else " "
    out: list[Segment] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(Segment("same", joiner.join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(Segment("deleted", joiner.join(a[i1:i2])))
        if j2 > j1:
            out.append(Segment("inserted", joiner.join(b[j1:j2])))
    return out


def changed(segments: list[Segment]) -> int:
    """How many runs differ (a replacement counts once per side)."""
    return sum(s.kind != "same" for s in segments)
