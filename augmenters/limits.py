"""Bounds on every size a spec can ask for, enforced by the spec models (so the JSON Schema
shows them). Generous for a user, useless to an attacker: a spec arriving over the network
cannot ask for unbounded memory, output or work."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

MAX_USER_WORDS = 10_000  # inline segmenter user words of one spec
MAX_STEPS = 32  # steps of one composition
MAX_DEPTH = 8  # compositions nested in each other
MAX_FILTERS = 8
MAX_CHANGES = 10_000  # min_changes / max_changes
MAX_BATCH = 1_024  # model batch sizes
MAX_TOKENS = 2_048  # model max_length
MAX_TOP_K = 100
MAX_MARK_CHARS = 8
MAX_MARKS = 32
MAX_LEXICON_ENTRIES = 50_000
MAX_SYNONYMS = 64  # per lexicon entry
MAX_WORD_CHARS = 100  # a lexicon key or synonym
MAX_PIVOT_CHAINS = 8
MAX_PIVOT_HOPS = 4
MAX_MODELS = 16  # translation directions of one back-translation step

Device = Literal["auto", "cpu", "cuda"]
Token = Annotated[str, Field(min_length=1, max_length=32)]  # mask_token
Mark = Annotated[str, Field(min_length=1, max_length=MAX_MARK_CHARS)]
Language = Annotated[str, Field(min_length=2, max_length=16, pattern=r"^[A-Za-z_-]+$")]
Word = Annotated[str, Field(min_length=1, max_length=MAX_WORD_CHARS)]
BatchSize = Annotated[int, Field(ge=1, le=MAX_BATCH)]
MaxLength = Annotated[int, Field(ge=8, le=MAX_TOKENS)]
