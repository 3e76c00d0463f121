"""The order in which a stream delivers a dataset (or an augmented version of it).

The items of an epoch are, per shard, each record of the split (its original and/or its
variants). Shards are visited in an order shuffled by (seed, epoch), and the items of a shard
are shuffled by (seed, epoch, shard): a pure function of (seed, epoch), with one shard in
memory at a time. Rank r of w takes every item whose position in that sequence is r mod w, so
ranks get disjoint shares that together cover the epoch exactly once. A resume token holds the
stream's parameters and how many items of its share the client has.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from app.storage.shards import shard_files, shard_path
from augmenters.rng import stable_digest

TOKEN_VERSION = 1


@dataclass(frozen=True)
class StreamParams:
    dataset_id: str
    job_id: str | None
    split: str
    originals: bool
    variants: int | None  # at most this many variants per record; None: all
    shuffle: bool
    seed: int
    epoch: int
    rank: int
    world_size: int


class BadToken(ValueError):
    pass


def encode_token(params: StreamParams, position: int) -> str:
    raw = json.dumps(
        {"v": TOKEN_VERSION, "p": asdict(params), "pos": position}, separators=(",", ":")
    ).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[StreamParams, int]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if raw["v"] != TOKEN_VERSION or raw["pos"] < 0:
            raise ValueError("version")
        return StreamParams(**raw["p"]), int(raw["pos"])
    except (ValueError, KeyError, TypeError) as exc:
        raise BadToken(token) from exc


def _rng(*parts: str | int) -> random.Random:
    return random.Random(int.from_bytes(stable_digest("stream", *parts, size=8), "big"))


def shard_order(n_shards: int, params: StreamParams) -> list[int]:
    order = list(range(n_shards))
    if params.shuffle:
        _rng(params.seed, params.epoch).shuffle(order)
    return order


def shard_items(dataset_dir: Path, shard: int, params: StreamParams) -> list[dict[str, Any]]:
    """The items of one shard for this stream, in stream order (before the rank split)."""
    items: list[dict[str, Any]] = []
    if params.originals:
        table = pq.read_table(
            shard_path(dataset_dir, shard), columns=["id", "text", "label", "split"]
        )
        for rid, text, label, split in zip(
            *(table.column(c).to_pylist() for c in ("id", "text", "label", "split")), strict=True
        ):
            if split == params.split:
                items.append({"id": rid, "variant": None, "text": text, "label": json.loads(label)})
    if params.job_id is not None and params.variants != 0:
        path = shard_path(dataset_dir / "jobs" / params.job_id, shard)
        table = pq.read_table(path, columns=["id", "variant", "text", "label", "split"])
        cap = params.variants
        for rid, variant, text, label, split in zip(
            *(table.column(c).to_pylist() for c in ("id", "variant", "text", "label", "split")),
            strict=True,
        ):
            if split == params.split and (cap is None or variant < cap):
                items.append(
                    {"id": rid, "variant": variant, "text": text, "label": json.loads(label)}
                )
    if params.shuffle:
        _rng(params.seed, params.epoch, shard).shuffle(items)
    return items


def rank_items(
    dataset_dir: Path, params: StreamParams, start: int = 0
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(position of the first item, items) per shard for this rank, from position ``start``."""
    position = 0  # items of this rank's share seen so far
    offset = 0  # items of the whole epoch seen so far
    for shard in shard_order(len(shard_files(dataset_dir)), params):
        items = shard_items(dataset_dir, shard, params)
        first = (params.rank - offset) % params.world_size
        mine = items[first :: params.world_size]
        offset += len(items)
        before = position
        position += len(mine)
        if position <= start:
            continue  # wholly before the resume point
        skip = max(0, start - before)
        yield before + skip, mine[skip:]
