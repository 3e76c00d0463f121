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


def _update(h: hashlib.blake2b, parts: tuple[str | int, ...]) -> hashlib.blake2b:
    message = bytearray()
    for part in parts:
        data = str(part).encode("utf-8")
        message += len(data).to_bytes(8, "little")
        message += data
    h.update(message)
    return h


def stable_digest(*parts: str | int, size: int = 16) -> bytes:
    """blake2b over the parts, each length-prefixed so ("ab", "c") != ("a", "bc")."""
    return _update(hashlib.blake2b(digest_size=size), parts).digest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the form specs are hashed in."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class VariantSeeder:
    """Makes the generator of each variant of one (pipeline, seed): the generator seeded with
    blake2b("antifit-variant-v1", pipeline digest, seed, record id, variant index)."""

    def __init__(self, spec_digest: str, seed: int) -> None:
        self._prefix = _update(
            hashlib.blake2b(digest_size=8), ("antifit-variant-v1", spec_digest, seed)
        )

    def __call__(self, record_id: str, variant: int) -> random.Random:
        digest = _update(self._prefix.copy(), (record_id, variant)).digest()
        return random.Random(int.from_bytes(digest, "little"))


def round_stochastic(x: float, rng: random.Random) -> int:
    """floor(x) plus one with probability frac(x): an integer whose expectation is exactly x."""
    whole = int(x)
    return whole + (1 if rng.random() < x - whole else 0)
