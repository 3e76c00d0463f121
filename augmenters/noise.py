"""Noise injection: keyboard typos, OCR confusions, character edits, EDA word swap/delete,
AEDA punctuation insertion.

Every op changes a fraction ``p`` of the eligible words (bounded by min/max_changes) and never
touches a protected span (URLs by default, numbers if asked, user regexes).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache
from typing import Literal

from pydantic import Field

from augmenters.base import Count, RateSpec, WordAugmenter
from augmenters.limits import MAX_MARKS, Mark
from augmenters.tokenize import graphemes, has_letter, is_cjk, match_case

# --- data ---------------------------------------------------------------------------------
# Rows of each layout as typed without shift; neighbours follow the usual half-key stagger.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "qwerty": ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm"),
    "qwertz": ("1234567890", "qwertzuiopü", "asdfghjklöä", "yxcvbnm"),
    "azerty": ("1234567890", "azertyuiop", "qsdfghjklm", "wxcvbn"),
}

OCR_CONFUSIONS: dict[str, tuple[str, ...]] = {
    "0": ("o", "O", "D"),
    "o": ("0",),
    "O": ("0", "D"),
    "D": ("O", "0"),
    "1": ("l", "I", "i"),
    "l": ("1", "I"),
    "I": ("1", "l"),
    "i": ("1", "l"),
    "2": ("Z", "z"),
    "z": ("2",),
    "Z": ("2",),
    "5": ("S", "s"),
    "S": ("5", "8"),
    "s": ("5",),
    "6": ("b", "G"),
    "b": ("6", "h"),
    "G": ("6", "C"),
    "8": ("B", "3"),
    "B": ("8",),
    "9": ("g", "q"),
    "g": ("9", "q"),
    "q": ("9", "g"),
    "e": ("c", "o"),
    "c": ("e",),
    "m": ("rn", "nn"),
    "w": ("vv",),
    "d": ("cl",),
    "h": ("b", "li"),
    "n": ("ri", "h"),
    "u": ("v", "ii"),
    "v": ("u", "y"),
    "a": ("o", "e"),
    "t": ("f",),
    "f": ("t",),
}

PUNCTUATION = (".", ";", "?", ":", "!", ",")


@cache
def keyboard_neighbours(layout: str) -> dict[str, str]:
    rows = LAYOUTS[layout]
    out: dict[str, str] = {}
    for r, row in enumerate(rows):
        for c, key in enumerate(row):
            near = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
            out[key] = "".join(
                rows[rr][cc] for rr, cc in near if 0 <= rr < len(rows) and 0 <= cc < len(rows[rr])
            )
    return out


# --- character-level ops ------------------------------------------------------------------
class CharSpec(RateSpec):
    """Shared by character-level ops: which words may be edited."""

    p: float = Field(default=0.1, ge=0.0, le=1.0, description="fraction of eligible words edited")
    min_word_length: Count = 3


class CharAugmenter(WordAugmenter):
    """Edits one character (grapheme) in each chosen word."""

    spec: CharSpec

    editable: frozenset[str]  # characters an edit may land on

    def __init__(self, spec: CharSpec) -> None:
        super().__init__(spec)
        self._shortest = spec.min_word_length

    def eligible(self, unit: str) -> bool:
        if len(unit) < self._shortest:
            return False
        if unit.isascii():  # the common case, without a regex
            return unit.isalpha() or has_letter(unit)
        return has_letter(unit) and not is_cjk(unit)

    def augment(self, text: str, rng: random.Random) -> tuple[str, int]:
        words = self.words(text)
        edit = self.editor(text)
        replaced: dict[int, str] = {}
        for i in words.pick(self.spec, rng):
            edited = edit(words.parts[i], rng)
            if edited is not None:
                replaced[i] = edited
        return words.text(replaced), len(replaced)

    def editor(self, text: str) -> Callable[[str, random.Random], str | None]:
        """How the words of ``text`` are edited (an op may look at the whole text first)."""
        return self.edit

    def edit(self, word: str, rng: random.Random) -> str | None:
        """Return the edited word, or None when this word offers nothing to edit."""
        chars = graphemes(word)
        allowed = self.editable
        positions = [i for i, ch in enumerate(chars) if ch in allowed]
        if not positions:
            return None
        i = rng.choice(positions)
        chars[i] = self.replace(chars[i], rng)
        return "".join(chars)

    def replace(self, ch: str, rng: random.Random) -> str:
        raise NotImplementedError


class KeyboardSpec(CharSpec):
    type: Literal["keyboard"] = "keyboard"
    layout: Literal["qwerty", "qwertz", "azerty"] = "qwerty"

    def build(self) -> KeyboardAugmenter:
        return KeyboardAugmenter(self)


class KeyboardAugmenter(CharAugmenter):
    """Typos: a character replaced by one of its neighbours on the keyboard."""

    op = "keyboard"
    spec: KeyboardSpec

    def __init__(self, spec: KeyboardSpec) -> None:
        super().__init__(spec)
        self.neighbours = keyboard_neighbours(spec.layout)
        self.editable = frozenset(self.neighbours) | {k.upper() for k in self.neighbours}

    def replace(self, ch: str, rng: random.Random) -> str:
        return match_case(ch, rng.choice(self.neighbours[ch.lower()]))


class OcrSpec(CharSpec):
    type: Literal["ocr"] = "ocr"

    def build(self) -> OcrAugmenter:
        return OcrAugmenter(self)


class OcrAugmenter(CharAugmenter):
    """OCR confusions: 0/O, 1/l/I, rn/m, cl/d, ..."""

    op = "ocr"
    editable = frozenset(OCR_CONFUSIONS)

    def replace(self, ch: str, rng: random.Random) -> str:
        return rng.choice(OCR_CONFUSIONS[ch])


CharAction = Literal["insert", "substitute", "swap", "delete"]
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


class CharNoiseSpec(CharSpec):
    type: Literal["char_noise"] = "char_noise"
    action: CharAction = "substitute"

    def build(self) -> CharNoiseAugmenter:
        return CharNoiseAugmenter(self)


class CharNoiseAugmenter(CharAugmenter):
    """Random character insertion, substitution, adjacent swap or deletion."""

    op = "char_noise"
    spec: CharNoiseSpec

    def edit(self, word: str, rng: random.Random) -> str | None:
        chars = graphemes(word)
        n = len(chars)
        action = self.spec.action
        if action == "insert":
            i = rng.randrange(n + 1)
            new = rng.choice(ALPHABET)
            neighbour = chars[i - 1] if i else chars[0]
            chars.insert(i, match_case(neighbour, new))
        elif action == "substitute":
            i = rng.randrange(n)
            chars[i] = match_case(chars[i], rng.choice(ALPHABET.replace(chars[i].lower(), "")))
        elif action == "swap":
            if n < 2:
                return None
            i = rng.randrange(n - 1)
            if chars[i] == chars[i + 1]:
                return None
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            if n < 2:
                return None
            del chars[rng.randrange(n)]
        return "".join(chars)


# --- word-level ops (EDA, AEDA) -----------------------------------------------------------
class WordSwapSpec(RateSpec):
    """EDA random swap: ``p`` times the number of words swaps of two words."""

    type: Literal["word_swap"] = "word_swap"

    def build(self) -> WordSwapAugmenter:
        return WordSwapAugmenter(self)


class WordSwapAugmenter(WordAugmenter):
    op = "word_swap"
    spec: WordSwapSpec

    def augment(self, text: str, rng: random.Random) -> tuple[str, int]:
        words = self.words(text)
        if len(words.eligible) < 2:
            return text, 0
        order = {i: words.parts[i] for i in words.eligible}
        swaps = self.spec.count(len(words.eligible), rng)
        for _ in range(swaps):
            a, b = rng.sample(words.eligible, 2)
            order[a], order[b] = order[b], order[a]
        changed = {i: t for i, t in order.items() if t != words.parts[i]}
        return words.text(changed), len(changed)


class WordDeleteSpec(RateSpec):
    """EDA random deletion: each eligible word deleted; at least one word always stays."""

    type: Literal["word_delete"] = "word_delete"

    def build(self) -> WordDeleteAugmenter:
        return WordDeleteAugmenter(self)


class WordDeleteAugmenter(WordAugmenter):
    op = "word_delete"
    spec: WordDeleteSpec

    def augment(self, text: str, rng: random.Random) -> tuple[str, int]:
        words = self.words(text)
        targets = words.pick(self.spec, rng)[: max(words.units - 1, 0)]
        if not targets:
            return text, 0
        drop = set(targets)
        parts = words.parts
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            if i not in drop:
                out += [parts[i], parts[i + 1]]
                continue
            # merge the separators around the deleted word, so no double or edge spaces remain
            left, right = out[-1], parts[i + 1]
            if left[-1:].isspace() and right[:1].isspace():
                right = right[1:]
            elif not left:
                right = right.lstrip()
            elif not right and i + 2 == len(parts):
                left = left.rstrip()
            out[-1] = left + right
        return "".join(out), len(targets)


class PunctuationSpec(RateSpec):
    """AEDA: insert punctuation marks between words (p marks per word in expectation)."""

    type: Literal["punctuation"] = "punctuation"
    p: float = Field(default=0.15, ge=0.0, le=1.0)
    min_changes: Count = 1
    marks: tuple[Mark, ...] = Field(default=PUNCTUATION, min_length=1, max_length=MAX_MARKS)

    def build(self) -> PunctuationAugmenter:
        return PunctuationAugmenter(self)


class PunctuationAugmenter(WordAugmenter):
    op = "punctuation"
    spec: PunctuationSpec

    def augment(self, text: str, rng: random.Random) -> tuple[str, int]:
        words = self.words(text)
        marked: dict[int, str] = {}
        for i in words.pick(self.spec, rng):
            unit = words.parts[i]
            marked[i] = rng.choice(self.spec.marks) + ("" if is_cjk(unit) else " ") + unit
        return words.text(marked), len(marked)
