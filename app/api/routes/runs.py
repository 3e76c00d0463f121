"""/v1/runs: training runs that ``antifit train`` registers, for the console to show."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from antifit.jsonsafe import finite
from app.api.deps import PrincipalDep, RunsDep, owned_run
from app.api.ids import RunId
from app.api.openapi import V1, problems
from app.core.problems import Problem
from app.storage.db import RunRow
from app.storage.runs import MAX_EVALUATIONS, RunFinished, TooManyEvaluations

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=problems(*V1))

MAX_METRICS = 200  # keys of one evaluation row
Metric = float | int | str | bool | None


class RunRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    config: dict[str, Any] = Field(description="the run's configuration, without secrets")
    dataset: str | None = Field(default=None, max_length=64)
    job: str | None = Field(default=None, max_length=64)

    @field_validator("config")
    @classmethod
    def _finite(cls, config: dict[str, Any]) -> dict[str, Any]:
        safe: dict[str, Any] = finite(config)
        return safe


class Evaluation(BaseModel):
    row: dict[Annotated[str, Field(max_length=100)], Metric] = Field(
        description="one evaluation: step, epoch and the metrics (numbers, short strings)"
    )

    @field_validator("row")
    @classmethod
    def _bounded(cls, row: dict[str, Metric]) -> dict[str, Metric]:
        if len(row) > MAX_METRICS:
            raise ValueError(f"at most {MAX_METRICS} metrics a row")
        for key, value in row.items():
            if isinstance(value, str) and len(value) > 200:
                raise ValueError(f"{key}: strings of at most 200 characters")
        safe: dict[str, Metric] = finite(row)  # a diverged loss reads as missing
        return safe


class RunEnd(BaseModel):
    state: Literal["succeeded", "failed"]
    report: dict[str, Any] | None = Field(default=None, description="the trainer's report.json")

    @field_validator("report")
    @classmethod
    def _finite(cls, report: dict[str, Any] | None) -> dict[str, Any] | None:
        safe: dict[str, Any] | None = finite(report)
        return safe


class Run(BaseModel):
    id: str
    name: str
    state: str
    created_at: datetime
    updated_at: datetime
    dataset_id: str | None
    job_id: str | None
    config: dict[str, Any]
    report: dict[str, Any] | None
    evaluations: int

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, row: RunRow) -> Run:
        return cls.model_validate(row)


class RunDetail(Run):
    rows: list[dict[str, Any]]


@router.post("", status_code=201, response_model=Run)
def register_run(
    body: RunRequest, response: Response, runs: RunsDep, principal: PrincipalDep
) -> Run:
    row = runs.create(body.name, body.config, body.dataset, body.job, principal.name)
    response.headers["Location"] = f"/v1/runs/{row.id}"
    return Run.of(row)


@router.get("", response_model=list[Run])
def list_runs(
    runs: RunsDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[Run]:
    """The newest runs first (the key's own unless it is an admin key)."""
    return [Run.of(r) for r in runs.recent(limit, principal.owner_filter())]


@router.get("/{run_id}", response_model=RunDetail, responses=problems(404))
def get_run(run_id: RunId, runs: RunsDep, principal: PrincipalDep) -> RunDetail:
    row = owned_run(runs, run_id, principal)
    return RunDetail(**Run.of(row).model_dump(), rows=runs.evaluations(run_id))


@router.post(
    "/{run_id}/evaluations", status_code=204, responses=problems(404, 409), response_class=Response
)
def add_evaluation(
    run_id: RunId, body: Evaluation, runs: RunsDep, principal: PrincipalDep
) -> Response:
    owned_run(runs, run_id, principal)
    try:
        runs.add_evaluation(run_id, body.row)
    except RunFinished as exc:
        raise _finished(run_id) from exc
    except TooManyEvaluations as exc:
        raise Problem(
            409,
            "too-many-evaluations",
            "Too many evaluations",
            f"run {run_id} has {MAX_EVALUATIONS} evaluation rows, the most a run keeps",
        ) from exc
    return Response(status_code=204)


@router.post("/{run_id}/end", response_model=Run, responses=problems(404, 409))
def end_run(run_id: RunId, body: RunEnd, runs: RunsDep, principal: PrincipalDep) -> Run:
    owned_run(runs, run_id, principal)
    try:
        return Run.of(runs.finish(run_id, body.state, body.report))
    except RunFinished as exc:
        raise _finished(run_id) from exc


def _finished(run_id: str) -> Problem:
    return Problem(409, "run-ended", "Run ended", f"run {run_id} has ended")
