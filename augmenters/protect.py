r"""Protected spans: parts of a text that no augmenter may change.

User patterns (``protect``) run on RE2, a linear-time engine: a spec, which may arrive over the
network, cannot make matching backtrack catastrophically (``(a+)+$`` on a long run of ``a``
takes microseconds, not hours). RE2 has no look-around or back-references (such a pattern is
refused with the reason), and its ``\w``, ``\d``, ``\b`` are ASCII: write ``\pL``, ``\p{Han}``,
``\pN`` for letters, Han characters and digits of any script. The built-in URL and number
patterns below are ours, linear by construction, and stay on Python's ``re``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import re2

from augmenters.errors import SpecError

MAX_PATTERN_CHARS = 256
MAX_PATTERNS = 16
_RE2_MEMORY = 8 << 20  # bytes of compiled program per pattern set; beyond it RE2 refuses

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


def _options() -> Any:
    options = re2.Options()
    options.max_mem = _RE2_MEMORY
    options.log_errors = False
    return options


def _compile(pattern: str) -> Any:
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"invalid regular expression {pattern!r} for RE2 (linear-time; no look-around or "
            f"back-references): {reason}"
        ) from exc


def check_pattern(pattern: str) -> str:
    """A spec field validator: ``pattern`` compiles on RE2 (ValueError saying why not)."""
    _compile(pattern)
    return pattern


@lru_cache(maxsize=256)
def compile_user_patterns(patterns: tuple[str, ...]) -> Any:
    """One RE2 program matching any of ``patterns`` (None for none)."""
    if not patterns:
        return None
    try:
        return _compile("|".join(f"(?:{p})" for p in patterns))
    except ValueError as exc:
        raise SpecError(str(exc), field="protect") from exc


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
