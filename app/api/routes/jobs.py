"""Augmentation jobs: start one over a dataset, watch it, cancel it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import (
    JobsDep,
    MetricsDep,
    PrincipalDep,
    RegistryDep,
    RunnerDep,
    StoreDep,
    owned_dataset,
    owned_job,
)
from app.api.ids import SEED_MAX, DatasetId, JobId, SpecBody
from app.api.openapi import V1, problems
from app.api.specs import request_spec
from app.core.problems import Problem, invalid
from app.storage.db import JobRow
from app.storage.jobs import ACTIVE, IdempotencyConflict
from app.storage.shards import Split
from augmenters.rng import canonical_json, stable_digest

router = APIRouter(prefix="/v1", tags=["jobs"], responses=problems(*V1))


class JobRequest(BaseModel):
    model_config = ConfigDict(strict=True)  # no true for 1, as the schema says
    spec: SpecBody
    seed: int = Field(default=0, ge=0, le=SEED_MAX)
    n_variants: int = Field(default=1, ge=1, le=64, description="variants per record")
    splits: list[Split] = Field(
        default=["train"],
        min_length=1,
        description="splits to augment (validation/test rarely should be)",
    )
    target: Literal["text", "response"] = Field(
        default="text",
        description="what the pipeline rewrites: each record's text (a generation record's "
        "prompt), or a generation record's response (never unless asked)",
    )


class Job(BaseModel):
    id: str
    dataset_id: str
    state: str
    spec: dict[str, Any]
    seed: int
    n_variants: int
    splits: list[str]
    target: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    records_done: int
    records_total: int
    variants_written: int
    records_per_second: float | None
    eta_seconds: float | None
    error: str | None
    manifest: dict[str, Any] | None

    @classmethod
    def of(cls, row: JobRow) -> Job:
        rate = eta = None
        if row.started_at is not None and row.records_done:
            end = row.finished_at or datetime.now(UTC)
            elapsed = max((end - row.started_at).total_seconds(), 1e-6)
            rate = row.records_done / elapsed
            if row.state in ACTIVE:
                eta = (row.records_total - row.records_done) / rate
        return cls(
            id=row.id,
            dataset_id=row.dataset_id,
            state=row.state,
            spec=row.spec,
            seed=row.seed,
            n_variants=row.n_variants,
            splits=row.splits,
            target=row.target,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            records_done=row.records_done,
            records_total=row.records_total,
            variants_written=row.variants_written,
            records_per_second=rate,
            eta_seconds=eta,
            error=row.error,
            manifest=row.manifest,
        )


@router.post(
    "/datasets/{dataset_id}/jobs", status_code=202, response_model=Job, responses=problems(404)
)
async def start_job(
    dataset_id: DatasetId,
    body: JobRequest,
    response: Response,
    store: StoreDep,
    jobs: JobsDep,
    runner: RunnerDep,
    registry: RegistryDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Job:
    """Queue a job; 202 with its Location. A repeated ``Idempotency-Key`` with the same body
    returns the first job; with a different body it is a 422."""
    spec = await run_in_threadpool(request_spec, body.spec, registry)
    dataset = await run_in_threadpool(owned_dataset, store, dataset_id, principal)
    total = sum(dataset.summary["splits"].get(s, 0) for s in body.splits)
    if total == 0:
        raise invalid(
            "splits",
            f"dataset {dataset_id} has no records in {', '.join(body.splits)}",
            message="no records in these splits",
            slug="empty-selection",
            title="Nothing to augment",
        )
    if body.target == "response" and dataset.summary.get("task") != "generation":
        raise invalid(
            "target",
            f"dataset {dataset_id} has no responses: target 'response' is for generation "
            "datasets (uploaded with prompt_field/response_field or messages_field)",
            message="not a generation dataset",
        )
    # the default target stays out of the request's hash, as before there was one
    request = {
        "dataset": dataset_id,
        **body.model_dump(exclude={"target"} if body.target == "text" else None),
        "spec": spec.to_dict(),
    }
    try:
        row, created = await run_in_threadpool(
            lambda: jobs.create(
                dataset_id=dataset_id,
                spec=spec.to_dict(),
                seed=body.seed,
                n_variants=body.n_variants,
                splits=list(body.splits),
                records_total=total,
                idempotency_key=idempotency_key,
                request_hash=stable_digest(canonical_json(request), size=32).hex(),
                owner=principal.name,
                target=body.target,
            )
        )
    except IdempotencyConflict as exc:
        raise invalid(
            "Idempotency-Key",
            "this Idempotency-Key was used with a different request",
            message="used with another body",
            slug="idempotency-key-reused",
            title="Idempotency key reused",
        ) from exc
    if created:
        if runner is not None:
            runner.wake()
    response.headers["Location"] = f"/v1/jobs/{row.id}"
    return Job.of(row)


@router.get("/jobs/{job_id}", response_model=Job, responses=problems(404))
def get_job(job_id: JobId, jobs: JobsDep, principal: PrincipalDep) -> Job:
    return Job.of(owned_job(jobs, job_id, principal))


@router.get("/datasets/{dataset_id}/jobs", response_model=list[Job], responses=problems(404))
def list_jobs(
    dataset_id: DatasetId, store: StoreDep, jobs: JobsDep, principal: PrincipalDep
) -> list[Job]:
    owned_dataset(store, dataset_id, principal)
    return [Job.of(row) for row in jobs.for_dataset(dataset_id)]


@router.post(
    "/jobs/{job_id}/cancel", status_code=202, response_model=Job, responses=problems(404, 409)
)
def cancel_job(
    job_id: JobId, jobs: JobsDep, runner: RunnerDep, metrics: MetricsDep, principal: PrincipalDep
) -> Job:
    row = owned_job(jobs, job_id, principal)
    if not jobs.set_state(job_id, "cancelled"):
        raise Problem(
            409,
            "job-finished",
            "Job already finished",
            f"job {job_id} is {row.state}; only queued or running jobs can be cancelled",
        )
    metrics.jobs.labels("cancelled").inc()
    if runner is not None:
        runner.wake()
    return Job.of(jobs.get(job_id))


@router.post(
    "/jobs/{job_id}/retry", status_code=202, response_model=Job, responses=problems(404, 409)
)
def retry_job(job_id: JobId, jobs: JobsDep, runner: RunnerDep, principal: PrincipalDep) -> Job:
    """Queue a failed or cancelled job again; the shards it had finished are kept, the rest
    run. (A repeated ``Idempotency-Key`` keeps returning this job: retry it.)"""
    row = owned_job(jobs, job_id, principal)
    if not jobs.retry(job_id):
        raise Problem(
            409,
            "job-not-retryable",
            "Job cannot be retried",
            f"job {job_id} is {row.state}; only failed or cancelled jobs can be retried",
        )
    if runner is not None:
        runner.wake()
    return Job.of(jobs.get(job_id))
