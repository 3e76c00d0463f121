"""The order in which a stream delivers a dataset (or an augmented version of it).

The items of an epoch are, per shard, each record of the split (its original and/or its
variants). Shards are visited in an order shuffled by (seed, epoch), and the items of a shard
are shuffled by (seed, epoch, shard): a pure function of (seed, epoch), with one shard in
memory at a time. Rank r of w takes every item whose position in that sequence is r mod w, so
ranks get disjoint shares that together cover the epoch exactly once. A resume token holds the
stream's parameters and how many items of its share the client has.

Grouped (``group``), the unit is a record instead of an item: its original followed by its
variants, kept together (consistency training compares them in one batch); records are
shuffled, shared among ranks and counted (positions, batch sizes) the same way.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from app.core.tokens import Signer
from app.storage.shards import job_output_dir, shard_files, shard_path
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
    group: bool = False


class BadToken(ValueError):
    pass


def encode_token(params: StreamParams, position: int, signer: Signer) -> str:
    return signer.encode({"v": TOKEN_VERSION, "p": asdict(params), "pos": position})


def decode_token(token: str, signer: Signer) -> tuple[StreamParams, int]:
    try:
        raw = signer.decode(token)
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


def _table(path: Path, columns: list[str]) -> pa.Table:
    return pq.read_table(path, columns=columns)


Item = dict[str, Any]
Unit = Item | list[Item]  # an item, or (grouped) a record's original and variants


def shard_items(
    dataset_dir: Path, shard: int, params: StreamParams, offset: int = 0
) -> tuple[int, list[Unit]]:
    """(number of units in this shard, the units of this rank's share), in stream order.
    ``offset``: units of the epoch before this shard (where the rank's positions fall).

    The order and the rank's share are worked out on row indices; only the rows this rank
    takes are turned into dicts."""
    sources: list[pa.Table] = []
    refs: list[tuple[int, int]] = []  # (source, row)
    if params.originals:
        table = _table(shard_path(dataset_dir, shard), ["id", "text", "label", "split"])
        splits = table.column("split").to_pylist()
        refs += [(len(sources), i) for i, split in enumerate(splits) if split == params.split]
        sources.append(table.append_column("variant", pa.nulls(len(table), pa.int32())))
    if params.job_id is not None and params.variants != 0:
        path = shard_path(job_output_dir(dataset_dir, params.job_id), shard)
        table = _table(path, ["id", "text", "label", "split", "variant"])
        splits = table.column("split").to_pylist()
        variants = table.column("variant").to_pylist()
        cap = params.variants
        refs += [
            (len(sources), i)
            for i, (split, v) in enumerate(zip(splits, variants, strict=True))
            if split == params.split and (cap is None or v < cap)
        ]
        sources.append(table)
    if params.group:
        return _grouped(sources, refs, params, shard, offset)
    if params.shuffle:
        _rng(params.seed, params.epoch, shard).shuffle(refs)
    first = (params.rank - offset) % params.world_size
    mine = refs[first :: params.world_size]
    return len(refs), list(_materialise(sources, mine))


def _grouped(
    sources: list[pa.Table],
    refs: list[tuple[int, int]],
    params: StreamParams,
    shard: int,
    offset: int,
) -> tuple[int, list[Unit]]:
    """Units of one record each: its original, then its variants by index."""
    ids = [table.column("id").to_pylist() for table in sources]
    groups: dict[str, list[tuple[int, int]]] = {}
    for ref in refs:  # originals come first in refs, then variants in index order
        groups.setdefault(ids[ref[0]][ref[1]], []).append(ref)
    units = list(groups.values())
    if params.shuffle:
        _rng(params.seed, params.epoch, shard, "group").shuffle(units)
    first = (params.rank - offset) % params.world_size
    mine = units[first :: params.world_size]
    items = iter(_materialise(sources, [ref for unit in mine for ref in unit]))
    return len(units), [[next(items) for _ in unit] for unit in mine]


def _materialise(sources: list[pa.Table], refs: list[tuple[int, int]]) -> list[Item]:
    """The rows ``refs`` point to, as stream items, in the order of ``refs``."""
    ordered: list[Item] = [{}] * len(refs)
    for source, table in enumerate(sources):
        at = [k for k, (src, _) in enumerate(refs) if src == source]
        if not at:
            continue
        picked = table.take(pa.array([refs[k][1] for k in at], pa.int64()))
        columns = [picked.column(c).to_pylist() for c in ("id", "variant", "text", "label")]
        for k, rid, variant, text, label in zip(at, *columns, strict=True):
            ordered[k] = {"id": rid, "variant": variant, "text": text, "label": json.loads(label)}
    return ordered


def rank_items(
    dataset_dir: Path, params: StreamParams, start: int = 0
) -> Iterator[tuple[int, list[Unit]]]:
    """(position of the first unit, units) per shard for this rank, from position ``start``."""
    position = 0  # units of this rank's share seen so far
    offset = 0  # units of the whole epoch seen so far
    for shard in shard_order(len(shard_files(dataset_dir)), params):
        n_items, mine = shard_items(dataset_dir, shard, params, offset)
        offset += n_items
        before = position
        position += len(mine)
        if position <= start:
            continue  # wholly before the resume point
        skip = max(0, start - before)
        yield before + skip, mine[skip:]
