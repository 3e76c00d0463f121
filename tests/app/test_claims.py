"""Job claims between replicas sharing a database: leases, take-over, fencing — on the real
PostgreSQL server (``pg_url``) and, where SQLite differs (one server process), on SQLite."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.storage.db import Database, DatasetRow
from app.storage.jobs import ClaimLost, JobStore


def _database(url: str) -> Database:
    db = Database(url)
    db.migrate()
    return db


def _jobs(store: JobStore, n: int) -> list[str]:
    dataset = uuid.uuid4().hex
    with store.db.session() as session:
        session.add(
            DatasetRow(
                id=dataset,
                name="d",
                created_at=datetime.now(UTC),
                row_count=1,
                shard_count=1,
                summary={},
            )
        )
    ids = []
    for i in range(n):
        row, _ = store.create(
            dataset_id=dataset,
            spec={},
            seed=i,
            n_variants=1,
            splits=["train"],
            records_total=1,
            idempotency_key=None,
            request_hash="h",
        )
        ids.append(row.id)
        time.sleep(0.002)  # distinct creation times: the oldest goes first
    return ids


def test_replicas_claim_different_jobs_and_take_over_a_lapsed_lease(pg_url: str) -> None:
    a, b = JobStore(_database(pg_url)), JobStore(_database(pg_url))
    first, second, third = _jobs(a, 3)
    claimed = a.claim("a", lease=30)
    assert claimed is not None and claimed.id == first and claimed.claimed_by == "a"
    assert (b.claim("b", lease=30) or pytest.fail()).id == second  # not a's
    assert (a.claim("a", lease=30) or pytest.fail()).id == first  # its own, after a restart
    assert not b.renew(first, "b", lease=30) and a.renew(first, "a", lease=30)

    short = b.claim("c", lease=0.2)
    assert short is not None and short.id == third
    assert a.claim("d", lease=30) is None  # every job is held
    time.sleep(0.4)  # c stopped renewing (it died)
    taken = a.claim("d", lease=30)
    assert taken is not None and taken.id == third and taken.claimed_by == "d"
    assert not b.renew(third, "c", lease=30)
    with pytest.raises(ClaimLost):  # fencing: the old holder's late shard is refused
        b.record_shard(third, 0, 1, 1, {}, "x" * 64, replica="c")
    a.record_shard(third, 0, 1, 1, {}, "y" * 64, replica="d")
    done = a.done_shards(third)
    assert done[0].replica == "d" and done[0].output_sha256 == "y" * 64
    assert a.get(third).records_done == 1

    assert not a.set_state(third, "succeeded", holder="c")  # not c's any more
    assert a.set_state(third, "succeeded", holder="d")
    row = a.get(third)
    assert row.state == "succeeded" and row.claimed_by is None and row.lease_until is None
    a.release(first, "a")
    assert (b.claim("b", lease=30) or pytest.fail()).id == first  # let go: claimable at once


def test_concurrent_claims_never_share_a_job(pg_url: str) -> None:
    stores = [JobStore(_database(pg_url)) for _ in range(6)]
    ids = _jobs(stores[0], 12)
    start = threading.Barrier(len(stores))
    got: dict[str, list[str]] = {}

    def replica(i: int) -> None:
        name = f"r{i}"
        got[name] = []
        start.wait()
        while (row := stores[i].claim(name, lease=60)) is not None:
            got[name].append(row.id)
            stores[i].set_state(row.id, "running", holder=name)
            # done with it: it leaves the active states and the next claim moves on
            assert stores[i].set_state(row.id, "succeeded", holder=name)

    threads = [threading.Thread(target=replica, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [job for jobs in got.values() for job in jobs]
    assert sorted(claimed) == sorted(ids)  # every job once, by exactly one replica
    assert sum(1 for jobs in got.values() if jobs) > 1  # and not all by one


def test_sqlite_serves_one_process_so_a_restart_resumes_at_once(tmp_path: Path) -> None:
    store = JobStore(_database(f"sqlite:///{tmp_path / 'antifit.db'}"))
    (job,) = _jobs(store, 1)
    assert (store.claim("before-restart", lease=3600) or pytest.fail()).id == job
    again = store.claim("after-restart", lease=3600)
    assert again is not None and again.id == job and again.claimed_by == "after-restart"
    with pytest.raises(ClaimLost):
        store.record_shard(job, 0, 1, 1, {}, "x" * 64, replica="before-restart")
