"""Dependencies the routes declare; tests override them through ``app.dependency_overrides``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Protocol, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from app.core.config import Settings, get_settings
from app.core.keys import ANONYMOUS, Principal
from app.core.metrics import Metrics
from app.core.problems import not_found
from app.jobs.runner import JobRunner
from app.storage.datasets import DatasetStore
from app.storage.db import DatasetRow, JobRow, RunRow
from app.storage.jobs import JobStore
from app.storage.runs import RunStore
from augmenters.registry import Registry

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_store(request: Request) -> DatasetStore:
    store: DatasetStore = request.app.state.store
    return store


StoreDep = Annotated[DatasetStore, Depends(get_store)]


def get_jobs(request: Request) -> JobStore:
    jobs: JobStore = request.app.state.jobs
    return jobs


def get_runner(request: Request) -> JobRunner | None:
    """None where the configured executor is unavailable (jobs wait for another replica)."""
    runner: JobRunner | None = request.app.state.runner
    return runner


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_runs(request: Request) -> RunStore:
    runs: RunStore = request.app.state.runs
    return runs


JobsDep = Annotated[JobStore, Depends(get_jobs)]
RunsDep = Annotated[RunStore, Depends(get_runs)]
RunnerDep = Annotated[JobRunner | None, Depends(get_runner)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def get_registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


RegistryDep = Annotated[Registry, Depends(get_registry)]

# documents the key in the OpenAPI; the check itself is app/core/guard.py, before the body
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="see ANTIFIT_API_KEYS")


def get_principal(
    request: Request, _key: Annotated[str | None, Security(_api_key)] = None
) -> Principal:
    principal: Principal = getattr(request.state, "principal", ANONYMOUS)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class _Owned(Protocol):
    owner: str | None


Row = TypeVar("Row", bound=_Owned)


def _owned(get: Callable[[str], Row], ident: str, what: str, principal: Principal) -> Row:
    """The row if this principal may see it; a 404 alike for a missing one and for someone
    else's (nothing tells them apart)."""
    try:
        row = get(ident)
    except LookupError as exc:  # UnknownDataset, UnknownJob, UnknownRun
        raise not_found(what, ident) from exc
    if not principal.owns(row.owner):
        raise not_found(what, ident)
    return row


def owned_dataset(store: DatasetStore, dataset_id: str, principal: Principal) -> DatasetRow:
    return _owned(store.get, dataset_id, "Dataset", principal)


def owned_job(jobs: JobStore, job_id: str, principal: Principal) -> JobRow:
    return _owned(jobs.get, job_id, "Job", principal)


def owned_run(runs: RunStore, run_id: str, principal: Principal) -> RunRow:
    return _owned(runs.get, run_id, "Run", principal)
