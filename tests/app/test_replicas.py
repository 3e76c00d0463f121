"""Two real `antifit serve` replicas on one PostgreSQL database and one data folder: one is
killed (-9) in the middle of a job, the other finishes it, and the output is the same bytes as a
job run by one replica alone."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy

from app.local_server import free_port, start
from tests.conftest import needs_apertium

SPEC = {"pipeline": {"type": "back_translation", "pivots": [["spa"]]}}
RECORDS = 450  # 18 shards of 25, each a batch through Apertium


def _body() -> str:
    text = "the customer said that the battery of this phone lasts for many days, test"
    return "".join(
        json.dumps({"id": f"r{i}", "text": f"{text} {i}", "label": i % 2}) + "\n"
        for i in range(RECORDS)
    )


def _submit(base: str, dataset: str, spec: dict[str, Any] = SPEC) -> str:
    r = httpx.post(
        f"{base}/v1/datasets/{dataset}/jobs", json={"spec": spec, "seed": 5, "n_variants": 2}
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _replica_env(pg_url: str, shard_size: int) -> dict[str, str]:
    """One worker a replica and a 3 s lease: a killed replica's job moves on quickly."""
    return {
        "ANTIFIT_DATABASE_URL": pg_url,
        "ANTIFIT_SHARD_SIZE": str(shard_size),
        "ANTIFIT_WORKERS": "1",
        "ANTIFIT_JOB_LEASE_S": "3",
    }


def _wait(base: str, job: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (state := httpx.get(f"{base}/v1/jobs/{job}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    return dict(state)


@needs_apertium
def test_a_killed_replica_s_job_is_finished_by_the_other_with_the_same_bytes(
    pg_url: str, tmp_path: Path
) -> None:
    engine = sqlalchemy.create_engine(pg_url)
    env = _replica_env(pg_url, shard_size=25)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # the reference: one replica alone, then stopped (its workers' translation cache
        # would make its next job too quick to be killed in the middle of)
        port = free_port()
        solo = start(tmp_path, port, {**env, "ANTIFIT_REPLICA_ID": "solo"})
        base = f"http://127.0.0.1:{port}"
        dataset = httpx.post(f"{base}/v1/datasets?id_field=id", content=_body(), timeout=30)
        assert dataset.status_code == 201, dataset.text
        ds = dataset.json()["id"]
        alone = _wait(base, _submit(base, ds))
        assert alone["state"] == "succeeded", alone
        solo.terminate()
        solo.wait()

        port_a, port_b = free_port(), free_port()
        procs.append(start(tmp_path, port_a, {**env, "ANTIFIT_REPLICA_ID": "replica-a"}))
        procs.append(start(tmp_path, port_b, {**env, "ANTIFIT_REPLICA_ID": "replica-b"}))
        a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
        jobs = [_submit(a, ds), _submit(b, ds)]
        # each replica claims one; kill a's once it has finished a shard or two
        deadline = time.monotonic() + 120
        while True:
            with engine.connect() as conn:
                held = dict(
                    conn.execute(
                        sqlalchemy.text("SELECT claimed_by, id FROM jobs WHERE state = 'running'")
                    ).all()
                )
                victim = held.get("replica-a")
                done = (
                    conn.execute(
                        sqlalchemy.text("SELECT count(*) FROM job_shards WHERE job_id = :j"),
                        {"j": victim},
                    ).scalar_one()
                    if victim
                    else 0
                )
            if victim and "replica-b" in held and done >= 1:
                break
            assert time.monotonic() < deadline, held
            time.sleep(0.05)
        assert done < RECORDS // 25, "the job ended before the kill"
        procs[0].kill()  # no clean shutdown: its lease runs out, nobody releases it
        procs[0].wait()

        finished = [_wait(b, job) for job in jobs]
        assert [f["state"] for f in finished] == ["succeeded", "succeeded"], finished
        reference = alone["manifest"]["output"]
        for f in finished:
            assert f["records_done"] == RECORDS and f["variants_written"] == 2 * RECORDS
            assert f["manifest"]["output"] == reference  # byte for byte: the same sha256

        with engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT shard, replica, finished_at FROM job_shards WHERE job_id = :j"
                ),
                {"j": victim},
            ).all()
        assert sorted(r.shard for r in rows) == list(range(RECORDS // 25))  # each shard once
        by_a = [r.finished_at for r in rows if r.replica == "replica-a"]
        by_b = [r.finished_at for r in rows if r.replica == "replica-b"]
        assert by_a and by_b and len(by_a) + len(by_b) == len(rows)
        assert max(by_a) < min(by_b)  # never both on the job: b took over after a stopped
        metrics = httpx.get(f"{b}/metrics").text
        assert "antifit_job_claims_total 2.0" in metrics
        ready = httpx.get(f"{b}/readyz").json()
        assert ready["replica"]["id"] == "replica-b" and ready["replica"]["claimed_jobs"] == 0
        assert ready["replica"]["lease_renewals"] > 0
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        engine.dispose()


NOISE = {
    "pipeline": {
        "type": "sequence",
        "steps": [{"type": "keyboard", "p": 0.2}, {"type": "word_swap", "p": 0.2}],
    }
}
JOB_SET = 4  # datasets of 1,000 records in shards of 4: 1,000 shards in all


def test_a_thousand_shard_job_set_is_finished_by_the_survivor_with_the_same_bytes(
    pg_url: str, tmp_path: Path
) -> None:
    engine = sqlalchemy.create_engine(pg_url)
    env = _replica_env(pg_url, shard_size=4)
    words = "battery screen strap charger cable case speaker button light sound".split()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        port = free_port()
        procs.append(start(tmp_path, port, {**env, "ANTIFIT_REPLICA_ID": "solo"}))
        base = f"http://127.0.0.1:{port}"
        datasets = []
        for k in range(JOB_SET):
            body = "".join(
                json.dumps(
                    {
                        "id": f"d{k}r{i}",
                        "text": f"the {words[i % 10]} of set {k} is {i}",
                        "label": i % 2,
                    }
                )
                + "\n"
                for i in range(1000)
            )
            r = httpx.post(f"{base}/v1/datasets?id_field=id", content=body, timeout=60)
            assert r.status_code == 201, r.text
            datasets.append(r.json()["id"])
        reference = {}
        for ds in datasets:
            done = _wait(base, _submit(base, ds, NOISE))
            assert done["state"] == "succeeded", done
            reference[ds] = done["manifest"]["output"]
        procs.pop().terminate()

        port_a, port_b = free_port(), free_port()
        procs.append(start(tmp_path, port_a, {**env, "ANTIFIT_REPLICA_ID": "replica-a"}))
        procs.append(start(tmp_path, port_b, {**env, "ANTIFIT_REPLICA_ID": "replica-b"}))
        a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
        jobs = {_submit((a, b)[k % 2], ds, NOISE): ds for k, ds in enumerate(datasets)}
        deadline = time.monotonic() + 120
        while True:  # kill a while it is inside a job, a few shards in
            with engine.connect() as conn:
                in_progress = conn.execute(
                    sqlalchemy.text(
                        "SELECT count(*) FROM job_shards s JOIN jobs j ON j.id = s.job_id "
                        "WHERE j.state = 'running' AND j.claimed_by = 'replica-a'"
                    )
                ).scalar_one()
            if in_progress >= 5:
                break
            assert time.monotonic() < deadline
            time.sleep(0.02)
        procs[0].kill()
        procs[0].wait()

        for job, ds in jobs.items():
            finished = _wait(b, job)
            assert finished["state"] == "succeeded", finished
            assert finished["manifest"]["output"] == reference[ds]
        with engine.connect() as conn:
            rows = conn.execute(
                sqlalchemy.text(
                    "SELECT job_id, shard, replica, finished_at FROM job_shards "
                    "WHERE job_id IN :jobs"
                ).bindparams(sqlalchemy.bindparam("jobs", expanding=True)),
                {"jobs": list(jobs)},
            ).all()
        assert len(rows) == 250 * JOB_SET == len({(r.job_id, r.shard) for r in rows})
        assert {r.replica for r in rows} == {"replica-a", "replica-b"}
        taken_over = 0
        for job in jobs:  # within a job, b's shards all come after a's: never both at once
            by_a = [r.finished_at for r in rows if r.job_id == job and r.replica == "replica-a"]
            by_b = [r.finished_at for r in rows if r.job_id == job and r.replica == "replica-b"]
            if by_a and by_b:
                assert max(by_a) < min(by_b)
                taken_over += 1
        assert taken_over == 1  # the job a was killed in
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        engine.dispose()
