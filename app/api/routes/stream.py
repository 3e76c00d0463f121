"""GET /v1/datasets/{id}/stream: batches as JSON Lines, each with a resume token."""

from __future__ import annotations

import json
import weakref
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from app.api.deps import (
    JobsDep,
    MetricsDep,
    PrincipalDep,
    SettingsDep,
    StoreDep,
    owned_dataset,
    owned_job,
)
from app.api.ids import MAX_WORLD, SEED_MAX, DatasetId
from app.api.openapi import V1, problems
from app.core.metrics import Metrics
from app.core.problems import Problem, invalid, not_found
from app.core.streams import Slot, StreamSlots, WriteTimeoutStreamingResponse
from app.core.tokens import MAX_TOKEN_CHARS, Signer
from app.storage.shards import Split
from app.storage.stream import BadToken, StreamParams, decode_token, encode_token, rank_items

router = APIRouter(prefix="/v1/datasets", tags=["stream"], responses=problems(*V1))


@router.get(
    "/{dataset_id}/stream",
    response_class=StreamingResponse,
    responses=problems(404, 409, 429),
)
async def stream(
    request: Request,
    dataset_id: DatasetId,
    store: StoreDep,
    jobs: JobsDep,
    metrics: MetricsDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    split: Split = "train",
    job: Annotated[
        str | None,
        Query(max_length=64, description="augmented version (a succeeded job)"),
    ] = None,
    originals: bool = True,
    variants: Annotated[
        int | None, Query(ge=0, le=1_000, description="max variants per record")
    ] = None,
    batch_size: Annotated[int, Query(ge=1, le=10_000)] = 32,
    shuffle: bool = True,
    group: Annotated[
        bool,
        Query(
            description="each record's original and variants together; batch_size then "
            "counts records"
        ),
    ] = False,
    seed: Annotated[int, Query(ge=0, le=SEED_MAX)] = 0,
    epoch: Annotated[int, Query(ge=0, le=SEED_MAX)] = 0,
    rank: Annotated[int, Query(ge=0, le=MAX_WORLD)] = 0,
    world_size: Annotated[int, Query(ge=1, le=MAX_WORLD)] = 1,
    resume_token: Annotated[str | None, Query(max_length=MAX_TOKEN_CHARS)] = None,
) -> StreamingResponse:
    """One JSON object per line: ``{"batch": [...], "resume_token": ..., "position": n}``, then
    ``{"end": true, "records": n}``. Order is a pure function of (seed, epoch); each rank of
    ``world_size`` gets a disjoint share; ``resume_token`` continues exactly after a batch
    (its parameters replace the others, but ``batch_size``)."""
    if resume_token is not None:
        try:
            params, start = decode_token(resume_token, store.signer)
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
    await run_in_threadpool(owned_dataset, store, dataset_id, principal)
    if params.job_id is not None:
        row = await run_in_threadpool(owned_job, jobs, params.job_id, principal)
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
    slots: StreamSlots = request.app.state.stream_slots
    slot = slots.take()
    if slot is None:
        raise Problem(
            429,
            "too-many-streams",
            "Too many streams",
            f"the server is serving its maximum of {slots.limit} streams; try again shortly",
            headers={"Retry-After": "5"},
        )
    metrics.streams.inc()
    lines = _lines(directory, params, start, batch_size, metrics, store.signer, slot)
    # a stream whose client left before its first byte never runs its finally: the slot is
    # also given back when the generator is collected
    weakref.finalize(lines, slot.release)
    return WriteTimeoutStreamingResponse(
        lines, media_type="application/x-ndjson", write_timeout=settings.stream_write_timeout_s
    )


async def _lines(
    directory: Any,
    params: StreamParams,
    start: int,
    batch_size: int,
    metrics: Metrics,
    signer: Signer,
    slot: Slot,
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
        while (
            chunk := await anyio.to_thread.run_sync(next, chunks, None, limiter=slot.readers)
        ) is not None:
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
                    yield _line(batch, params, position, signer)
                    delivered += len(batch)
                    metrics.stream_batches.inc()
                    metrics.stream_records.inc(len(batch))
                    batch, units = [], 0
        if batch:
            yield _line(batch, params, position, signer)
            delivered += len(batch)
            metrics.stream_batches.inc()
            metrics.stream_records.inc(len(batch))
        yield json.dumps({"end": True, "records": delivered, "position": position}).encode() + b"\n"
    finally:
        metrics.streams_open.dec()
        slot.release()


def _line(
    batch: list[dict[str, Any]], params: StreamParams, position: int, signer: Signer
) -> bytes:
    body = {
        "batch": batch,
        "resume_token": encode_token(params, position, signer),
        "position": position,
        "epoch": params.epoch,
        "rank": params.rank,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
