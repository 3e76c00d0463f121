"""Averaged-perceptron part-of-speech tagger (Penn Treebank tags).

The weights are Matthew Honnibal's MIT-licensed English model, shipped by PyPI's
``textblob-aptagger`` (the features nltk's PerceptronTagger uses too). They are read with an
unpickler that admits plain containers only, so loading executes no code from the file.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

START = ("-START-", "-START2-")
END = ("-END-", "-END2-")


class _ContainersOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module in ("__builtin__", "builtins") and name in ("set", "frozenset"):
            return set if name == "set" else frozenset
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from tagger weights")


def _normalize(word: str) -> str:
    if "-" in word and word[0] != "-":
        return "!HYPHEN"
    if word.isdigit() and len(word) == 4:
        return "!YEAR"
    if word[0].isdigit():
        return "!DIGITS"
    return word.lower()


class PerceptronTagger:
    def __init__(
        self, weights: dict[str, dict[str, float]], tagdict: dict[str, str], classes: set[str]
    ) -> None:
        self.weights = weights
        self.tagdict = tagdict
        self.classes = sorted(classes)

    @classmethod
    def load(cls, path: Path) -> PerceptronTagger:
        data = path.read_bytes()
        weights, tagdict, classes = _ContainersOnly(io.BytesIO(data), encoding="utf-8").load()
        if not (
            isinstance(weights, dict) and isinstance(tagdict, dict) and isinstance(classes, set)
        ):
            raise ValueError(f"{path} does not hold (weights, tagdict, classes)")
        return cls(weights, tagdict, classes)

    def tag(self, words: Sequence[str]) -> list[str]:
        """Tag one sentence (a sequence of non-empty tokens)."""
        context = [*START, *(_normalize(w) for w in words), *END]
        prev, prev2 = START
        tags: list[str] = []
        for i, word in enumerate(words):
            tag = self.tagdict.get(word)
            if tag is None:
                tag = self._predict(i + 2, word, context, prev, prev2)
            tags.append(tag)
            prev2, prev = prev, tag
        return tags

    def _predict(self, i: int, word: str, context: list[str], prev: str, prev2: str) -> str:
        features = (
            "bias",
            "i suffix " + word[-3:],
            "i pref1 " + word[0],
            "i-1 tag " + prev,
            "i-2 tag " + prev2,
            f"i tag+i-2 tag {prev} {prev2}",
            "i word " + context[i],
            f"i-1 tag+i word {prev} {context[i]}",
            "i-1 word " + context[i - 1],
            "i-1 suffix " + context[i - 1][-3:],
            "i-2 word " + context[i - 2],
            "i+1 word " + context[i + 1],
            "i+1 suffix " + context[i + 1][-3:],
            "i+2 word " + context[i + 2],
        )
        scores: dict[str, float] = {}
        weights = self.weights
        for feat in features:
            w = weights.get(feat)
            if w:
                for label, value in w.items():
                    scores[label] = scores.get(label, 0.0) + value
        # ties broken alphabetically (highest label wins), as the model was trained
        return max(self.classes, key=lambda label: (scores.get(label, 0.0), label))
