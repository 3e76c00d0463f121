"""Per-record random generators derived from a stable hash.

A variant depends only on (pipeline spec, seed, record id, variant index): the generator is
seeded from blake2b of those, never from Python's ``hash()`` nor any global random state, so the
output is the same whatever the batching, ordering, process count or PYTHONHASHSEED.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any


def stable_digest(*parts: str | int, size: int = 16) -> bytes:
    """blake2b over the parts, each length-prefixed so ("ab", "c") != ("a", "bc")."""
    h = hashlib.blake2b(digest_size=size)
    for part in parts:
        data = str(part).encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the form specs are hashed in."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def variant_rng(spec_digest: str, seed: int, record_id: str, variant: int) -> random.Random:
    """The generator for one variant of one record."""
    digest = stable_digest("antifit-variant-v1", spec_digest, seed, record_id, variant, size=8)
    return random.Random(int.from_bytes(digest, "little"))


def round_stochastic(x: float, rng: random.Random) -> int:
    """floor(x) plus one with probability frac(x): an integer whose expectation is exactly x."""
    whole = int(x)
    return whole + (1 if rng.random() < x - whole else 0)
