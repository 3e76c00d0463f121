"""The Ray executor on a real local Ray cluster (started by the server, as with no RAY_ADDRESS):
the same job gives the same bytes as on the local process pool, and a Ray worker killed in the
middle of a shard costs a retry, not the job."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.local_server import free_port, running, start
from tests.conftest import needs_apertium

pytest.importorskip("ray")

SPEC = {
    "pipeline": {
        "type": "sequence",
        "steps": [
            {"type": "synonym", "p": 0.2},
            {"type": "back_translation", "pivots": [["spa"]]},
            {"type": "keyboard", "p": 0.05},
        ],
    }
}
RECORDS = 240  # 8 shards of 30


def _body() -> str:
    text = "the customer said that the battery of this phone lasts for many days"
    return "".join(
        json.dumps({"id": f"r{i}", "text": f"{text}, review {i}", "label": i % 2}) + "\n"
        for i in range(RECORDS)
    )


def _job(base: str, dataset: str, during: Any = None) -> dict[str, Any]:
    r = httpx.post(
        f"{base}/v1/datasets/{dataset}/jobs", json={"spec": SPEC, "seed": 11, "n_variants": 2}
    )
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 300
    while (job := httpx.get(f"{base}/v1/jobs/{r.json()['id']}").json())["state"] in (
        "queued",
        "running",
    ):
        if during is not None and during():
            during = None
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return dict(job)


def _shard_workers() -> list[int]:
    """Ray workers running a shard now (Ray titles a busy worker after its task)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::augment_shard"):
                found.append(int(entry.name))
    return found


@needs_apertium
def test_ray_gives_the_local_pool_s_bytes_and_survives_a_killed_worker(tmp_path: Path) -> None:
    env = {"ANTIFIT_SHARD_SIZE": "30", "ANTIFIT_WORKERS": "2", "RAY_ADDRESS": ""}
    with running(tmp_path, env) as (base, _):
        r = httpx.post(f"{base}/v1/datasets?id_field=id", content=_body(), timeout=30)
        assert r.status_code == 201, r.text
        dataset = r.json()["id"]
        local = _job(base, dataset)
        assert httpx.get(f"{base}/readyz").json()["checks"]["executor"] == "ok"
    assert local["state"] == "succeeded", local

    with running(tmp_path, {**env, "ANTIFIT_EXECUTOR": "ray"}) as (base, _):
        # the kill first, while the workers are fresh: later jobs hit their translation cache
        # and could end before a shard is caught running
        killed: list[int] = []

        def kill_a_worker() -> bool:
            workers = _shard_workers()
            if workers:
                os.kill(workers[0], signal.SIGKILL)
                killed.append(workers[0])
            return bool(workers)

        retried = _job(base, dataset, during=kill_a_worker)
        assert killed, "no shard was caught running"
        assert retried["state"] == "succeeded", retried
        assert retried["manifest"]["output"] == local["manifest"]["output"]

        on_ray = _job(base, dataset)
        assert on_ray["state"] == "succeeded", on_ray
        assert on_ray["manifest"]["output"] == local["manifest"]["output"]


def test_without_ray_the_api_serves_and_says_the_executor_is_unavailable(
    tmp_path: Path,
) -> None:
    shadow = tmp_path / "no-ray"
    shadow.mkdir()  # a `ray` that cannot be imported, as where antifit[ray] is not installed
    (shadow / "ray.py").write_text("raise ImportError('No module named ray')\n")
    env = {"ANTIFIT_EXECUTOR": "ray", "PYTHONPATH": str(shadow)}
    port = free_port()
    proc = start(tmp_path / "data", port, env, probe="/livez")
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while (ready := httpx.get(f"{base}/readyz")).json()["checks"]["executor"] == "starting":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert ready.status_code == 503 and ready.json()["checks"]["executor"] == "unavailable"
        r = httpx.post(f"{base}/v1/datasets?id_field=id", content=_body(), timeout=30)
        assert r.status_code == 201, r.text  # the API serves; jobs wait for a replica that runs
        job = httpx.post(f"{base}/v1/datasets/{r.json()['id']}/jobs", json={"spec": SPEC})
        assert job.status_code == 202 and job.json()["state"] == "queued"
    finally:
        proc.kill()
        proc.wait()
