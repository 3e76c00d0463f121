"""Protected spans: parts of a text that no augmenter may change."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from augmenters.errors import SpecError

# bounded local part, anchored at its start: linear even on 100k-character runs of letters
URL = r"(?:https?://|www\.)[^\s<>\"]+|(?<![\w.+-])[\w.+-]{1,64}@[\w-]+\.[\w.-]+"
NUMBER = r"[+-]?\d+(?:[.,:/]\d+)*%?"


_URL = re.compile(URL)
_NUMBER = re.compile(NUMBER)


class Protection:
    """Finds the protected spans of a text: URLs and e-mail addresses, numbers, user regexes."""

    def __init__(self, *, urls: bool, numbers: bool, extra: tuple[str, ...] = ()) -> None:
        self.urls = urls
        self.numbers = numbers
        self.extra = compile_user_patterns(extra)

    def spans(self, text: str) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        # the URL pattern needs one of these literals: skip its scan when none is there
        if self.urls and ("://" in text or "www." in text or "@" in text):
            found += (m.span() for m in _URL.finditer(text))
        if self.numbers:
            found += (m.span() for m in _NUMBER.finditer(text))
        if self.extra is not None:
            found += (m.span() for m in self.extra.finditer(text) if m.end() > m.start())
        found.sort()
        return found


@lru_cache(maxsize=256)
def compile_user_patterns(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
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


@lru_cache(maxsize=256)
def protection(urls: bool, numbers: bool, extra: tuple[str, ...]) -> Protection:
    return Protection(urls=urls, numbers=numbers, extra=extra)


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
