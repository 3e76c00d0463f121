"""Typos of shape: a character read or written for one that looks like it (形近字: 未/末,
己/已, 拔/拨) — what handwriting, shape-based input methods (Wubi, Cangjie) and OCR get wrong.
The ``similar_shape`` op replaces one character of a chosen Chinese word with a character of
a similar shape.

The groups of similar characters are pycorrector's ``same_stroke.txt`` (Apache-2.0; 831
groups, one a line, characters separated by tabs): an optional resource, installed with
``pip install 'antifit[zh]'`` or named by ``ANTIFIT_SHAPES`` (a file in the same format). It
is read as data; pycorrector's code is never imported.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path
from typing import Literal

from augmenters.base import Count
from augmenters.errors import ResourceMissing
from augmenters.han_typo import HanTypoAugmenter
from augmenters.noise import CharSpec
from augmenters.tokenize import HAN_WORD

PACKAGED = "pycorrector/data/same_stroke.txt"  # where the pycorrector wheel puts it
MAX_BYTES = 16 << 20


def shapes_source() -> Path:
    """The groups' file: $ANTIFIT_SHAPES, else the ``pycorrector`` package's copy."""
    from augmenters.resources import optional_file

    return optional_file(
        "ANTIFIT_SHAPES",
        "pycorrector",
        PACKAGED,
        "similar-shape characters",
        "an optional resource, not installed: pip install 'antifit[zh]' (PyPI's pycorrector "
        "ships the groups), or set ANTIFIT_SHAPES to a file of groups (one a line)",
    )


@cache
def similar_shapes() -> dict[str, tuple[str, ...]]:
    """Character -> the characters of similar shape (every group it is in, first seen first)."""
    path = shapes_source()
    if path.stat().st_size > MAX_BYTES:
        raise ResourceMissing("similar-shape characters", f"{path} is over {MAX_BYTES} bytes")
    similar: dict[str, dict[str, None]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        group = [c for c in dict.fromkeys(line.split()) if len(c) == 1 and HAN_WORD.fullmatch(c)]
        for char in group:
            similar.setdefault(char, {}).update(dict.fromkeys(c for c in group if c != char))
    if not similar:
        raise ResourceMissing("similar-shape characters", f"{path} holds no groups")
    return {char: tuple(others) for char, others in similar.items() if others}


@lru_cache(maxsize=100_000)
def _options(word: str) -> tuple[tuple[str, ...], ...]:
    table = similar_shapes()
    return tuple(table.get(char, ()) for char in word)


class SimilarShapeSpec(CharSpec):
    type: Literal["similar_shape"] = "similar_shape"
    min_word_length: Count = 1

    def build(self) -> SimilarShapeAugmenter:
        similar_shapes()  # a missing resource is an error when the pipeline is built
        return SimilarShapeAugmenter(self)


class SimilarShapeAugmenter(HanTypoAugmenter):
    """One character of each chosen Chinese word replaced by one of a similar shape."""

    op = "similar_shape"
    spec: SimilarShapeSpec

    def options(self, word: str) -> tuple[tuple[str, ...], ...]:
        return _options(word)
