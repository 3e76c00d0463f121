"""Helpers shared by the service tests."""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi.testclient import TestClient

NDJSON = {"content-type": "application/x-ndjson"}


def dataset_of(client: TestClient, n: int, *, splits: str | None = None) -> str:
    lines = "".join(
        json.dumps(
            {
                "id": f"r{i}",
                "text": f"record number {i} says the battery lasts {i % 7} days",
                "label": i % 3,
            }
        )
        + "\n"
        for i in range(n)
    )
    query = "id_field=id" + (f"&splits={splits}" if splits else "")
    r = client.post(f"/v1/datasets?{query}", content=lines, headers=NDJSON)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def wait_for_job(client: TestClient, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job still {job['state']}"
        time.sleep(0.1)


def stream_lines(client: TestClient, dataset_id: str, **params: Any) -> list[dict[str, Any]]:
    r = client.get(f"/v1/datasets/{dataset_id}/stream", params=params)
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]
