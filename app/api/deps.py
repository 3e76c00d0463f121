"""Dependencies the routes declare; tests override them through ``app.dependency_overrides``."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from app.core.config import Settings, get_settings
from app.core.metrics import Metrics
from app.core.problems import Problem
from app.jobs.runner import JobRunner
from app.storage.datasets import DatasetStore
from app.storage.jobs import JobStore

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_store(request: Request) -> DatasetStore:
    store: DatasetStore = request.app.state.store
    return store


StoreDep = Annotated[DatasetStore, Depends(get_store)]


def get_jobs(request: Request) -> JobStore:
    jobs: JobStore = request.app.state.jobs
    return jobs


def get_runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.runner
    return runner


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


JobsDep = Annotated[JobStore, Depends(get_jobs)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def require_api_key(request: Request, settings: SettingsDep) -> None:
    """With ANTIFIT_API_KEYS set, every /v1 request needs one of them (constant-time compare)."""
    if not settings.api_keys:
        return
    given = request.headers.get("x-api-key", "")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        given = auth[7:].strip()
    valid = False
    for key in settings.api_keys:  # no early exit: the time does not depend on which key
        valid |= hmac.compare_digest(given.encode(), key.encode())
    if not valid:
        raise Problem(
            401,
            "unauthorized",
            "Unauthorized",
            "a valid API key is required (X-API-Key or Authorization: Bearer)",
            headers={"WWW-Authenticate": "Bearer"},
        )
