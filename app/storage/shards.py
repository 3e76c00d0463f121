"""Records as fixed-size Parquet shards: ``shard-00000.parquet``, ... in a dataset directory.

Columns: id, text, label (JSON text, so ints stay ints), split, meta (JSON text).
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("label", pa.string()),
        ("split", pa.string()),
        ("meta", pa.string()),
    ]
)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    id: str
    text: str
    label: Any
    split: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "label": self.label,
            "split": self.split,
            "meta": self.meta,
        }


Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = get_args(Split)

# a job's variants, one output shard per input shard
VARIANT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("variant", pa.int32()),
        ("text", pa.string()),
        ("label", pa.string()),
        ("split", pa.string()),
        ("ops", pa.string()),
    ]
)


class ShardMismatch(Exception):
    """An input shard is missing, or differs from the one the database recorded."""


def shard_path(directory: Path, index: int) -> Path:
    return directory / f"shard-{index:05d}.parquet"


def job_output_dir(dataset_dir: Path, job_id: str) -> Path:
    """Where a job writes its variant shards (read back by the stream)."""
    return dataset_dir / "jobs" / job_id


def partial_outputs(directory: Path) -> list[Path]:
    """Temp files of output shards (``.{name}.{uuid}.tmp``): being written, or left by a
    process that died writing them."""
    return list(directory.glob(".*.tmp"))


def write_variants(path: Path, columns: dict[str, list[Any]]) -> str:
    """Write a job's output shard whole: a temp file with a name unique across hosts sharing
    the folder, then a rename, so a re-run replaces it (with the same bytes) and a reader never
    sees half of it. The shard's sha256."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(pa.table(columns, schema=VARIANT_SCHEMA), tmp)
    digest = sha256_file(tmp)
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return digest


class ShardWriter:
    """Buffers records and writes one Parquet file per ``shard_size`` records."""

    def __init__(self, directory: Path, shard_size: int) -> None:
        self.directory = directory
        self.shard_size = shard_size
        self.shards = 0
        self.digests: list[str] = []  # sha256 of each shard written, in order
        self._rows: dict[str, list[str]] = {name: [] for name in SCHEMA.names}

    def add(self, record: StoredRecord) -> None:
        rows = self._rows
        rows["id"].append(record.id)
        rows["text"].append(record.text)
        rows["label"].append(json.dumps(record.label, ensure_ascii=False))
        rows["split"].append(record.split)
        rows["meta"].append(json.dumps(record.meta, ensure_ascii=False))
        if len(rows["id"]) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self._rows["id"]:
            return
        table = pa.table(self._rows, schema=SCHEMA)
        path = shard_path(self.directory, self.shards)
        pq.write_table(table, path)
        fsync_file(path)
        self.digests.append(sha256_file(path))
        self.shards += 1
        self._rows = {name: [] for name in SCHEMA.names}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a written file to the disk: after a crash a renamed file is whole, never empty."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename into it) to the disk."""
    fsync_file(path)


def shard_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("shard-*.parquet"))


def _decode(row: dict[str, Any]) -> StoredRecord:
    return StoredRecord(
        row["id"], row["text"], json.loads(row["label"]), row["split"], json.loads(row["meta"])
    )


def read_shard(source: Path | pa.Buffer) -> Iterator[StoredRecord]:
    """A shard's records, from its file or from its bytes already read."""
    file = pa.BufferReader(source) if isinstance(source, pa.Buffer) else source
    for batch in pq.ParquetFile(file).iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            yield _decode(row)


def read_records(
    directory: Path, *, offset: int = 0, limit: int | None = None, split: str | None = None
) -> Iterator[StoredRecord]:
    """Records in stored order (of one split if given), skipping ``offset`` of them."""
    skipped = 0
    produced = 0
    for path in shard_files(directory):
        if split is None:
            rows = pq.ParquetFile(path).metadata.num_rows
            if skipped + rows <= offset:
                skipped += rows  # whole shard before the page: not read
                continue
        for record in read_shard(path):
            if split is not None and record.split != split:
                continue
            if skipped < offset:
                skipped += 1
                continue
            if limit is not None and produced >= limit:
                return
            produced += 1
            yield record
