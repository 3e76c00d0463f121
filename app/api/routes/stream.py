"""GET /v1/datasets/{id}/stream: batches as JSON Lines, each with a resume token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app.api.deps import JobsDep, MetricsDep, StoreDep
from app.core.metrics import Metrics
from app.core.problems import Problem, invalid, not_found
from app.storage.datasets import UnknownDataset
from app.storage.jobs import UnknownJob
from app.storage.stream import BadToken, StreamParams, decode_token, encode_token, rank_items

router = APIRouter(prefix="/v1/datasets", tags=["stream"])


@router.get("/{dataset_id}/stream", response_class=StreamingResponse)
async def stream(
    dataset_id: str,
    store: StoreDep,
    jobs: JobsDep,
    metrics: MetricsDep,
    split: Literal["train", "validation", "test"] = "train",
    job: Annotated[str | None, Query(description="augmented version (a succeeded job)")] = None,
    originals: bool = True,
    variants: Annotated[int | None, Query(ge=0, description="max variants per record")] = None,
    batch_size: Annotated[int, Query(ge=1, le=10_000)] = 32,
    shuffle: bool = True,
    group: Annotated[
        bool,
        Query(
            description="each record's original and variants together; batch_size then "
            "counts records"
        ),
    ] = False,
    seed: int = 0,
    epoch: Annotated[int, Query(ge=0)] = 0,
    rank: Annotated[int, Query(ge=0)] = 0,
    world_size: Annotated[int, Query(ge=1)] = 1,
    resume_token: str | None = None,
) -> StreamingResponse:
    """One JSON object per line: ``{"batch": [...], "resume_token": ..., "position": n}``, then
    ``{"end": true, "records": n}``. Order is a pure function of (seed, epoch); each rank of
    ``world_size`` gets a disjoint share; ``resume_token`` continues exactly after a batch
    (its parameters replace the others, but ``batch_size``)."""
    if resume_token is not None:
        try:
            params, start = decode_token(resume_token)
        except BadToken as exc:
            raise invalid(
                "resume_token",
                "resume_token is not one this server issued",
                message="invalid",
                slug="invalid-resume-token",
                title="Invalid resume token",
            ) from exc
        if params.dataset_id != dataset_id:
            raise invalid(
                "resume_token",
                "the resume token belongs to another dataset",
                message="other dataset",
                slug="invalid-resume-token",
                title="Invalid resume token",
            )
    else:
        if rank >= world_size:
            raise invalid(
                "rank",
                f"rank {rank} is not below world_size {world_size}",
                message="must be < world_size",
            )
        if not originals and (job is None or variants == 0):
            raise invalid(
                "originals",
                "nothing to stream: no originals and no variants",
                message="needs a job with variants",
            )
        params = StreamParams(
            dataset_id,
            job,
            split,
            originals,
            variants,
            shuffle,
            seed,
            epoch,
            rank,
            world_size,
            group,
        )
        start = 0
    try:
        await run_in_threadpool(store.get, dataset_id)
    except UnknownDataset as exc:
        raise not_found("Dataset", dataset_id) from exc
    if params.job_id is not None:
        try:
            row = await run_in_threadpool(jobs.get, params.job_id)
        except UnknownJob as exc:
            raise not_found("Job", params.job_id) from exc
        if row.dataset_id != dataset_id:
            raise not_found("Job", params.job_id)
        if row.state != "succeeded":
            raise Problem(
                409,
                "job-not-finished",
                "Job not finished",
                f"job {row.id} is {row.state}; stream it once it has succeeded",
            )
    directory = store.directory(dataset_id)
    metrics.streams.inc()
    return StreamingResponse(
        _lines(directory, params, start, batch_size, metrics), media_type="application/x-ndjson"
    )


async def _lines(
    directory: Any, params: StreamParams, start: int, batch_size: int, metrics: Metrics
) -> AsyncIterator[bytes]:
    """Each shard is read off the event loop; each line waits for the client to take it, so a
    slow client holds at most one shard and one line of the server's memory."""
    metrics.streams_open.inc()
    try:
        chunks = rank_items(directory, params, start)
        batch: list[dict[str, Any]] = []
        units = 0  # in this batch: items, or records when grouped
        position = start
        delivered = 0
        while (chunk := await run_in_threadpool(next, chunks, None)) is not None:
            first, items = chunk
            position = first
            for unit in items:
                if isinstance(unit, list):
                    batch.extend(unit)
                else:
                    batch.append(unit)
                units += 1
                position += 1
                if units == batch_size:
                    yield _line(batch, params, position)
                    delivered += len(batch)
                    metrics.stream_batches.inc()
                    metrics.stream_records.inc(len(batch))
                    batch, units = [], 0
        if batch:
            yield _line(batch, params, position)
            delivered += len(batch)
            metrics.stream_batches.inc()
            metrics.stream_records.inc(len(batch))
        yield json.dumps({"end": True, "records": delivered, "position": position}).encode() + b"\n"
    finally:
        metrics.streams_open.dec()


def _line(batch: list[dict[str, Any]], params: StreamParams, position: int) -> bytes:
    body = {
        "batch": batch,
        "resume_token": encode_token(params, position),
        "position": position,
        "epoch": params.epoch,
        "rank": params.rank,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
