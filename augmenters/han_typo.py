"""Chinese typos: one character of a chosen Chinese word replaced by another that a slip of
the input gives — a character of the same sound (``homophone``) or of a similar shape
(``similar_shape``). The ops differ only in where the candidates come from.

Candidates are looked up on the simplified word; a traditional text gets traditional
replacements (OpenCC), so traditional stays traditional."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

from augmenters.noise import CharAugmenter
from augmenters.tokenize import HAN_WORD


class HanTypoAugmenter(CharAugmenter):
    def eligible(self, unit: str) -> bool:
        return len(unit) >= self._shortest and HAN_WORD.fullmatch(unit) is not None

    def options(self, word: str) -> tuple[tuple[str, ...], ...]:
        """For each character of a simplified word, the characters a typo may put there."""
        raise NotImplementedError

    def editor(self, text: str) -> Callable[[str, random.Random], str | None]:
        from augmenters.chinese import is_traditional

        return partial(self._edit, traditional_text=is_traditional(text))

    def _edit(self, word: str, rng: random.Random, traditional_text: bool) -> str | None:
        from augmenters.chinese import simplified, traditional

        plain = simplified(word) if traditional_text else word
        if len(plain) != len(word):
            return None
        options = self.options(plain)
        positions = [i for i, found in enumerate(options) if found]
        if not positions:
            return None
        i = rng.choice(positions)
        typed = rng.choice(options[i])
        if traditional_text:
            typed = traditional(typed)
        return word[:i] + typed + word[i + 1 :]
