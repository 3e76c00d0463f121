"""Synonym replacement: POS-aware WordNet 3.0 for English, Cilin for Chinese, or a user lexicon
for any language.

WordNet mode tags the text (Penn Treebank tags), replaces only content words (nouns, verbs,
adjectives, adverbs; never proper nouns, stopwords, numbers or protected spans), picks synonyms
from the word's most frequent senses, re-inflects them to the original's form and keeps its case.
Cilin mode (augmenters/cilin.py) replaces Chinese segmenter words that are dictionary nouns,
verbs, adjectives or adverbs (never names, numbers, stopwords or protected spans) with a member
of their ``=`` class, if the word has at most ``max_senses`` classes and the synonym is within
one character of its length; a traditional text is looked up simplified and written back
traditional. Lexicon mode matches the lexicon's keys in the text (longest first; CJK keys need
no spaces).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from functools import cache, lru_cache
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from augmenters.base import RateSpec, WordAugmenter
from augmenters.chinese import is_traditional, simplified, traditional
from augmenters.errors import SpecError
from augmenters.limits import MAX_LEXICON_ENTRIES, MAX_SYNONYMS, Word
from augmenters.registry import LexiconName, LocalPath, Registry
from augmenters.resources import pos_tagger, wordnet
from augmenters.segment import Segmenter
from augmenters.tokenize import CJK_CHAR, HAN_WORD, match_case, split, symbols

# Penn tag -> WordNet POS; comparatives/superlatives and proper nouns are left alone.
WORDNET_POS = {
    "NN": "n",
    "NNS": "n",
    "VB": "v",
    "VBD": "v",
    "VBG": "v",
    "VBN": "v",
    "VBP": "v",
    "VBZ": "v",
    "JJ": "a",
    "RB": "r",
}


@cache
def stopwords() -> frozenset[str]:
    text = importlib_resources.files("augmenters").joinpath("data/stopwords_en.json").read_text()
    return frozenset(json.loads(text))


@cache
def _irregular_verbs() -> frozenset[str]:
    """Base forms whose past forms are irregular (from WordNet's verb.exc)."""
    from augmenters.resources import wordnet_dir

    bases = set()
    for line in (wordnet_dir() / "verb.exc").read_text().splitlines():
        form, *base = line.split()
        if base and not form.endswith("ed"):
            bases.update(base)
    return frozenset(bases)


def _plural(word: str, verb: bool = False) -> str:
    if re.search(r"(s|x|z|ch|sh)$", word) or (verb and re.search(r"[^aeiou]o$", word)):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def _past(word: str) -> str:
    if word.endswith("e"):
        return word + "d"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ied"
    return word + "ed"


def _gerund(word: str) -> str:
    if word.endswith("ie"):
        return word[:-2] + "ying"
    if word.endswith("e") and not word.endswith(("ee", "ye", "oe")):
        return word[:-1] + "ing"
    return word + "ing"


def inflect(lemma: str, tag: str) -> str | None:
    """Inflect a WordNet lemma (possibly several words) to a Penn tag; None if we cannot."""
    words = lemma.split(" ")
    head = len(words) - 1 if tag == "NNS" else 0  # nouns inflect last, phrasal verbs first
    w = words[head]
    if tag in ("NNS", "VBZ"):
        words[head] = _plural(w, verb=tag == "VBZ")
    elif tag in ("VBD", "VBN"):
        if w in _irregular_verbs():
            return None
        words[head] = _past(w)
    elif tag == "VBG":
        words[head] = _gerund(w)
    return " ".join(words)


@lru_cache(maxsize=200_000)
def wordnet_synonyms(word: str, pos: str, max_senses: int | None) -> tuple[str, ...]:
    """Synonyms (base forms, spaces for multi-word lemmas) of a lower-case word, in sense order."""
    wn = wordnet()
    lemma = wn.morphy(word, pos) or word
    out: dict[str, None] = {}
    for synset in wn.synsets(lemma, pos)[:max_senses]:
        for name in synset.lemma_names():
            candidate = name.replace("_", " ")
            if candidate.lower() in (word, lemma) or candidate[0].isupper():
                continue
            if any(ch.isdigit() for ch in candidate):
                continue
            out[candidate] = None
    return tuple(out)


@lru_cache(maxsize=50_000)
def _tags(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(pos_tagger().tag(words))


Lexicon = dict[str, tuple[str, ...]]
InlineLexicon = Annotated[
    dict[Word, Annotated[tuple[Word, ...], Field(max_length=MAX_SYNONYMS)]],
    Field(max_length=MAX_LEXICON_ENTRIES),
]
# a name or an inline lexicon, told apart by the JSON type (errors then name one of them)
LexiconField = Annotated[
    Annotated[InlineLexicon, Tag("inline")] | Annotated[LexiconName, Tag("name")],
    Discriminator(lambda v: "name" if isinstance(v, str) else "inline"),
]


MAX_LEXICON_BYTES = 64 << 20


@lru_cache(maxsize=8)
def load_lexicon(path: str) -> Lexicon:
    file = Path(path).expanduser()
    try:
        if not file.is_file():  # not a FIFO or a device: those would never end
            raise OSError("not a regular file")
        if file.stat().st_size > MAX_LEXICON_BYTES:
            raise OSError(f"larger than {MAX_LEXICON_BYTES} bytes")
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read lexicon {path!r}: {exc}", field="lexicon_path") from exc
    return _validate_lexicon(raw, "lexicon_path")


def _validate_lexicon(raw: object, field: str) -> Lexicon:
    if not isinstance(raw, dict):
        raise SpecError("a lexicon is a JSON object: word -> list of synonyms", field=field)
    if len(raw) > MAX_LEXICON_ENTRIES:
        raise SpecError(f"more than {MAX_LEXICON_ENTRIES} lexicon entries", field=field)
    out: Lexicon = {}
    for key, values in raw.items():
        if not isinstance(values, list | tuple) or not all(
            isinstance(v, str) and v for v in values
        ):
            raise SpecError(f"synonyms of {key!r} must be a list of non-empty strings", field=field)
        if not key.strip():
            raise SpecError("lexicon keys must be non-empty", field=field)
        out[key] = tuple(v for v in values if v != key)
    return out


@lru_cache(maxsize=32)
def _lexicon_pattern(keys: tuple[str, ...]) -> re.Pattern[str]:
    def bounded(key: str) -> str:
        escaped = re.escape(key)
        # keys in spaced scripts match whole words only; CJK keys match anywhere
        if not CJK_CHAR.match(key[0]):
            escaped = r"(?<!\w)" + escaped
        if not CJK_CHAR.match(key[-1]):
            escaped += r"(?!\w)"
        return escaped

    ordered = sorted(keys, key=len, reverse=True)
    return re.compile("|".join(bounded(k) for k in ordered), re.IGNORECASE)


class SynonymSpec(RateSpec):
    type: Literal["synonym"] = "synonym"
    p: float = Field(default=0.2, ge=0.0, le=1.0, description="fraction of eligible words")
    source: Literal["wordnet", "cilin", "lexicon"] = "wordnet"
    max_senses: int | None = Field(
        default=3,
        ge=1,
        le=64,
        description="WordNet senses to draw from; Cilin: words in more classes are left alone",
    )
    lexicon: LexiconField | None = Field(
        default=None,
        description="inline lexicon (word -> synonyms, any language), or a registered "
        "lexicon's name",
    )
    lexicon_path: LocalPath | None = Field(
        default=None, description="JSON file: word -> synonyms (library and CLI only)"
    )

    @model_validator(mode="after")
    def _lexicon_given(self) -> SynonymSpec:
        if self.source == "lexicon" and self.lexicon is None and self.lexicon_path is None:
            raise ValueError("source 'lexicon' needs 'lexicon' or 'lexicon_path'")
        if isinstance(self.lexicon, dict):
            _validate_lexicon(self.lexicon, "lexicon")
        return self

    def build(self) -> SynonymAugmenter:
        return SynonymAugmenter(self)


class SynonymAugmenter(WordAugmenter):
    op = "synonym"
    spec: SynonymSpec

    def __init__(self, spec: SynonymSpec) -> None:
        super().__init__(spec)
        self._lexicon: Lexicon | None = None
        self._eligible = _eligibility(spec.source)  # the predicate itself: no method call a word

    def eligible(self, unit: str) -> bool:
        return bool(_eligibility(self.spec.source)(unit))

    def augment(self, text: str, rng: random.Random) -> tuple[str, int]:
        if self.spec.source == "lexicon":
            return self._augment_lexicon(text, rng)
        if self.spec.source == "cilin":
            return self._augment_cilin(text, rng)
        return self._augment_wordnet(text, rng)

    def _augment_cilin(self, text: str, rng: random.Random) -> tuple[str, int]:
        words = self.words(text)
        if not words.eligible:
            return text, 0
        back = traditional if is_traditional(text) else None
        parts, senses = words.parts, self.spec.max_senses
        options = {
            i: cilin_synonyms(simplified(parts[i]) if back else parts[i], senses)
            for i in words.eligible
        }
        replaceable = [i for i, found in options.items() if found]
        replaced = {}
        for i in words.pick(self.spec, rng, replaceable):
            choice = rng.choice(options[i])
            replaced[i] = back(choice) if back else choice
        return words.text(replaced), len(replaced)

    def _augment_wordnet(self, text: str, rng: random.Random) -> tuple[str, int]:
        words = self.words(text)
        if not words.eligible:
            return text, 0
        # the tagger sees words and punctuation, as in the treebank it was trained on
        sequence: list[str] = []
        where: dict[int, int] = {}
        for i, part in enumerate(words.parts):
            if i % 2:
                where[i] = len(sequence)
                sequence.append(part)
            else:
                sequence += symbols(part)
        tagged = _tags(tuple(sequence))
        tags = {i: tagged[k] for i, k in where.items()}
        options: dict[int, tuple[str, ...]] = {}
        for i in words.eligible:
            pos = WORDNET_POS.get(tags[i])
            if pos is not None:
                found = wordnet_synonyms(words.parts[i].lower(), pos, self.spec.max_senses)
                inflected = (inflect(s, tags[i]) for s in found)
                options[i] = tuple(s for s in inflected if s is not None)
        replaceable = [i for i in words.eligible if options.get(i)]
        replaced = {
            i: match_case(words.parts[i], rng.choice(options[i]))
            for i in words.pick(self.spec, rng, replaceable)
        }
        return words.text(replaced), len(replaced)

    def lexicon(self) -> Lexicon:
        if self._lexicon is None:
            merged: Lexicon = {}
            if self.spec.lexicon_path is not None:
                merged.update(load_lexicon(self.spec.lexicon_path))
            if isinstance(self.spec.lexicon, str):
                merged.update(
                    load_lexicon(str(Registry.from_env().require("lexicon", self.spec.lexicon)))
                )
            else:
                merged.update(_validate_lexicon(self.spec.lexicon or {}, "lexicon"))
            self._lexicon = {k.lower(): v for k, v in merged.items() if v}
        return self._lexicon

    def _augment_lexicon(self, text: str, rng: random.Random) -> tuple[str, int]:
        lexicon = self.lexicon()
        if not lexicon or not text:
            return text, 0
        spans = self._protection.spans(text)
        inside = _inside_units(text, self.segmenter)
        matches = [
            m
            for m in _lexicon_pattern(tuple(lexicon)).finditer(text)
            if not any(s < m.end() and m.start() < e for s, e in spans)
            and not (inside[m.start()] or inside[m.end()])  # whole segmenter words only
        ]
        k = self.spec.count(len(matches), rng)
        if not k:
            return text, 0
        chosen = sorted(rng.sample(range(len(matches)), k))
        out, last = [], 0
        for j in chosen:
            m = matches[j]
            out += [
                text[last : m.start()],
                match_case(m.group(), rng.choice(lexicon[m.group().lower()])),
            ]
            last = m.end()
        out.append(text[last:])
        return "".join(out), k


@lru_cache(maxsize=200_000)
def cilin_synonyms(word: str, max_senses: int | None) -> tuple[str, ...]:
    """The Cilin synonyms that can stand in a (simplified) content word's place: of the same
    word class (a verb for a verb), within one character of its length, and themselves of at
    most ``max_senses`` meanings. None for names, numbers and function words."""
    from augmenters.chinese import content_word, word_class
    from augmenters.cilin import cilin

    if not content_word(word):
        return ()
    source = cilin()
    kind = word_class(word)[:1]
    return tuple(
        s
        for s in source.of(word, max_senses)
        if abs(len(s) - len(word)) <= 1 and word_class(s)[:1] == kind and source.of(s, max_senses)
    )


def _inside_units(text: str, segmenter: Segmenter | None) -> bytearray:
    """For each offset of ``text``, 1 when it falls strictly inside a lexical unit (a CJK key
    must not start or end there: it would cut a Chinese word in two)."""
    inside = bytearray(len(text) + 1)
    offset = 0
    for i, part in enumerate(split(text, segmenter)):
        if i % 2:
            inside[offset + 1 : offset + len(part)] = b"\x01" * (len(part) - 1)
        offset += len(part)
    return inside


def _content_candidate(word: str) -> bool:
    return len(word) > 1 and word.isalpha() and word.lower() not in stopwords()


def _eligibility(source: str) -> Callable[[str], object]:
    """Which words an op of ``source`` may replace: Cilin, words of Han characters (their
    dictionary class is checked with the synonyms); else alphabetic words, not stopwords."""
    return HAN_WORD.fullmatch if source == "cilin" else _content_candidate
