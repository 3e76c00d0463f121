"""Liveness and readiness."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import MetricsDep, StoreDep

router = APIRouter(tags=["health"])
log = logging.getLogger("antifit.health")


@router.get("/livez")
async def livez() -> dict[str, str]:  # on the event loop itself: it answers when the loop does
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request, store: StoreDep) -> JSONResponse:
    """Ready when the database answers, the data directory is writable and the executor runs;
    the offline resources (their files, looked for at start-up) are reported, not required.
    Anyone may ask: the answer says ok or failed/missing, and the reasons (hosts, paths) go to
    the log."""
    checks: dict[str, Any] = {}
    for name, probe in (("database", store.db.ping), ("storage", store.check)):
        try:
            await run_in_threadpool(probe)
            checks[name] = "ok"
        except Exception:  # noqa: BLE001 -- any failure means not ready
            log.exception("readiness check %s failed", name)
            checks[name] = "failed"
    # starting (joining a Ray cluster), or unavailable (Ray missing, say): the API serves,
    # but this replica runs no job
    checks["executor"] = request.app.state.executor_status
    ready = all(v == "ok" for v in checks.values())
    checks["resources"] = {
        name: "ok" if status.startswith("ok") else "missing"
        for name, status in request.app.state.resources.items()
    }
    runner = request.app.state.runner
    replica = {
        "id": request.app.state.replica_id,
        "claimed_jobs": len(runner.claimed) if runner else 0,
        "lease_renewals": runner.renewals if runner else 0,
    }
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks, "replica": replica},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", response_class=Response)
def metrics(registry: MetricsDep) -> Response:
    """Prometheus text format: uploads, jobs by state, job shards/records/variants, streams."""
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
