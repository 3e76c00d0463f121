"""Protected spans: parts of a text that no augmenter may change."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from augmenters.errors import SpecError

# bounded local part, anchored at its start: linear even on 100k-character runs of letters
URL = r"(?:https?://|www\.)[^\s<>\"]+|(?<![\w.+-])[\w.+-]{1,64}@[\w-]+\.[\w.-]+"
NUMBER = r"[+-]?\d+(?:[.,:/]\d+)*%?"


@lru_cache(maxsize=256)
def compile_patterns(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    for i, p in enumerate(patterns):
        try:
            re.compile(p)
        except re.error as exc:
            raise SpecError(
                f"invalid regular expression {p!r}: {exc}", field=f"protect[{i}]"
            ) from exc
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def protected_patterns(*, urls: bool, numbers: bool, extra: Sequence[str] = ()) -> tuple[str, ...]:
    return (*((URL,) if urls else ()), *((NUMBER,) if numbers else ()), *extra)


def protected_spans(text: str, pattern: re.Pattern[str] | None) -> list[tuple[int, int]]:
    if pattern is None:
        return []
    return [m.span() for m in pattern.finditer(text) if m.end() > m.start()]


def protected_units(parts: Sequence[str], spans: Sequence[tuple[int, int]]) -> set[int]:
    """Odd indices of ``split()`` parts that overlap a protected span (spans sorted by start)."""
    if not spans:
        return set()
    out: set[int] = set()
    pos = 0
    j = 0
    for i, part in enumerate(parts):
        end = pos + len(part)
        if i % 2:
            while j < len(spans) and spans[j][1] <= pos:
                j += 1
            if j < len(spans) and spans[j][0] < end:
                out.add(i)
        pos = end
    return out
