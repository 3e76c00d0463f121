"""The unit of work of a job: augment one input shard into one output shard.

Runs in executor workers (separate processes). A worker builds each pipeline once and keeps it,
so WordNet, the tagger and any model load once per worker, not per record or shard. The output
is written to a temporary file and renamed into place, so a retried or resumed shard replaces
its output whole and never duplicates records.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from app.storage.shards import VARIANT_SCHEMA, ShardMismatch, read_shard, write_variants
from augmenters import Pipeline, Record
from augmenters.registry import Registry
from augmenters.rng import canonical_json


@dataclass(frozen=True)
class ShardTask:
    job_id: str
    shard: int
    input_path: str
    output_path: str
    spec: dict[str, Any]
    seed: int
    n_variants: int
    splits: tuple[str, ...]
    target: str = "text"  # or "response": a generation record's response is rewritten
    input_sha256: str | None = None  # as recorded at upload; None: not checked (older data)
    loads_models: bool = False  # the spec names models (an executor may keep them loaded)
    resources_dir: str | None = None  # the service's registry: the spec names, never paths
    max_output_bytes: int = 1 << 30  # of variant text per shard
    batch_size: int = 256


@dataclass(frozen=True)
class ShardResult:
    job_id: str
    shard: int
    records: int
    variants: int
    dropped: dict[str, int]
    output_sha256: str


class OutputBudgetExceeded(Exception):
    """A shard's variants would take more room than a shard may."""


_pipelines: OrderedDict[str, Pipeline] = OrderedDict()
_KEPT = 8  # pipelines a worker keeps (each may hold models and translation caches)


def _pipeline(spec: dict[str, Any], resources_dir: str | None) -> Pipeline:
    key = canonical_json([spec, resources_dir])
    registry = Registry(Path(resources_dir) if resources_dir else None)
    pipeline = _pipelines.pop(key, None) or Pipeline(spec, served=registry)
    _pipelines[key] = pipeline  # most recently used last
    while len(_pipelines) > _KEPT:
        _pipelines.popitem(last=False)
    pipeline.dropped.clear()
    return pipeline


def augment_shard(task: ShardTask) -> ShardResult:
    pipeline = _pipeline(task.spec, task.resources_dir)
    data = Path(task.input_path).read_bytes()
    if task.input_sha256 is not None and hashlib.sha256(data).hexdigest() != task.input_sha256:
        raise ShardMismatch(
            f"input shard {task.shard} differs from the one uploaded (its sha256 does not match "
            "the database): is the data folder shared and intact?"
        )
    stored = [r for r in read_shard(pa.py_buffer(data)) if r.split in task.splits]
    originals = {r.id: r for r in stored}
    response = task.target == "response"
    records = [
        Record(r.id, r.label["response"], r.label) if response else Record(r.id, r.text, r.label)
        for r in stored
    ]
    columns: dict[str, list[Any]] = {name: [] for name in VARIANT_SCHEMA.names}
    size = 0
    for v in pipeline.augment(records, task.seed, task.n_variants, task.batch_size):
        size += len(v.text.encode())
        if size > task.max_output_bytes:
            raise OutputBudgetExceeded(
                f"shard {task.shard}: its variants exceed the output budget of "
                f"{task.max_output_bytes} bytes per shard (ANTIFIT_MAX_SHARD_OUTPUT_BYTES); "
                "ask for fewer variants, or upload with smaller shards"
            )
        columns["id"].append(v.record_id)
        columns["variant"].append(v.variant)
        original = originals[v.record_id]
        # a rewritten response keeps its prompt; a rewritten text (prompt) its target
        text, label = (
            (original.text, {**v.label, "response": v.text}) if response else (v.text, v.label)
        )
        columns["text"].append(text)
        columns["label"].append(json.dumps(label, ensure_ascii=False))
        columns["split"].append(original.split)
        columns["ops"].append(json.dumps([op.to_dict() for op in v.ops]))
    out = Path(task.output_path)
    # never parents=True: a dataset deleted meanwhile must not get its folder back
    out.parent.parent.mkdir(exist_ok=True)
    out.parent.mkdir(exist_ok=True)
    digest = write_variants(out, columns)
    return ShardResult(
        task.job_id, task.shard, len(records), len(columns["id"]), dict(pipeline.dropped), digest
    )
