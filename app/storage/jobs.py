"""Job metadata: creation with idempotency keys, state, and per-shard progress."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app.storage.db import Database, JobRow, JobShardRow, newest

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "cancelled")


class UnknownJob(LookupError):
    pass


class IdempotencyConflict(ValueError):
    """The key was used before with a different request."""


class ClaimLost(RuntimeError):
    """This replica's lease on a job ran out and another replica claimed it (or the job left
    the active states): its work on the job must stop, and it records nothing more."""


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        # SQLite serves one server process: whatever claims a job is the only one there is,
        # so a restarted server resumes its jobs at once instead of waiting out a lease
        self.leases = not db.url.startswith("sqlite")

    def create(
        self,
        *,
        dataset_id: str,
        spec: dict[str, Any],
        seed: int,
        n_variants: int,
        splits: list[str],
        records_total: int,
        idempotency_key: str | None,
        request_hash: str,
        owner: str | None = None,
        target: str = "text",
    ) -> tuple[JobRow, bool]:
        """The new job and True, or, for a repeated idempotency key, the first job and False."""
        if idempotency_key is not None:
            existing = self._by_key(idempotency_key, request_hash)
            if existing is not None:
                return existing, False
        row = JobRow(
            id=uuid.uuid4().hex,
            dataset_id=dataset_id,
            state="queued",
            spec=spec,
            seed=seed,
            n_variants=n_variants,
            splits=splits,
            created_at=datetime.now(UTC),
            records_total=records_total,
            records_done=0,
            variants_written=0,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            owner=owner,
            target=target,
        )
        try:
            with self.db.session() as session:
                session.add(row)
        except IntegrityError:  # the same key raced in from another request
            if idempotency_key is None:
                raise
            existing = self._by_key(idempotency_key, request_hash)
            if existing is None:
                raise
            return existing, False
        return row, True

    def _by_key(self, key: str, request_hash: str) -> JobRow | None:
        with self.db.session() as session:
            row = session.scalars(select(JobRow).where(JobRow.idempotency_key == key)).first()
        if row is not None and row.request_hash != request_hash:
            raise IdempotencyConflict(key)
        return row

    def ids(self) -> set[str]:
        with self.db.session() as session:
            return set(session.scalars(select(JobRow.id)))

    def get(self, job_id: str) -> JobRow:
        with self.db.session() as session:
            row = session.get(JobRow, job_id)
        if row is None:
            raise UnknownJob(job_id)
        return row

    def for_dataset(self, dataset_id: str) -> list[JobRow]:
        query = select(JobRow).where(JobRow.dataset_id == dataset_id).order_by(JobRow.created_at)
        with self.db.session() as session:
            return list(session.scalars(query))

    def recent(self, limit: int, owner: str | None = None) -> list[JobRow]:
        return newest(self.db, JobRow, limit, owner)

    def claim(self, replica: str, lease: float) -> JobRow | None:
        """Claim the oldest active job that no live replica holds, for ``lease`` seconds: a
        queued job, a running one whose replica's lease ran out (it died), or this replica's
        own (after a restart under the same id). None if there is none. On SQLite (one
        server) any active job.

        PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED``, so replicas claiming at once take
        different jobs and never wait on each other. The update repeats the condition, which
        makes the claim atomic where row locks do not exist (SQLite: one writer at a time)."""
        now = datetime.now(UTC)
        claimable: list[ColumnElement[bool]] = [JobRow.state.in_(ACTIVE)]
        if self.leases:
            claimable.append(_unclaimed(replica, now))
        query = (
            select(JobRow.id)
            .where(*claimable)
            .order_by(JobRow.created_at)
            .limit(4)
            .with_for_update(skip_locked=True)
        )
        with self.db.session() as session:
            for job_id in list(session.scalars(query)):
                result = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, *claimable)
                    .values(claimed_by=replica, lease_until=now + timedelta(seconds=lease))
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    return session.get(JobRow, job_id)
        return None

    def renew(self, job_id: str, replica: str, lease: float) -> bool:
        """Extend this replica's lease on an active job; False if it no longer holds it."""
        with self.db.session() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.claimed_by == replica, JobRow.state.in_(ACTIVE))
                .values(lease_until=datetime.now(UTC) + timedelta(seconds=lease))
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def release(self, job_id: str, replica: str) -> None:
        """Let go of a job this replica holds (another replica may take it at once)."""
        with self.db.session() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.claimed_by == replica)
                .values(claimed_by=None, lease_until=None)
            )

    def done_shards(self, job_id: str) -> dict[int, JobShardRow]:
        query = select(JobShardRow).where(JobShardRow.job_id == job_id)
        with self.db.session() as session:
            return {row.shard: row for row in session.scalars(query)}

    def record_shard(
        self,
        job_id: str,
        shard: int,
        records: int,
        variants: int,
        dropped: dict[str, int],
        output_sha256: str,
        replica: str | None = None,
    ) -> None:
        """Mark a shard done and add its counts to the job, in one transaction (once). With a
        ``replica``, only while it holds the job (else ClaimLost, and nothing is recorded)."""
        with self.db.session() as session:
            if session.get(JobShardRow, (job_id, shard)) is not None:
                return
            held = [JobRow.claimed_by == replica] if replica is not None else []
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, *held)
                .values(
                    records_done=JobRow.records_done + records,
                    variants_written=JobRow.variants_written + variants,
                )
            )
            if replica is not None and not result.rowcount:  # type: ignore[attr-defined]
                raise ClaimLost(job_id)
            session.add(
                JobShardRow(
                    job_id=job_id,
                    shard=shard,
                    records=records,
                    variants=variants,
                    dropped=dropped,
                    output_sha256=output_sha256,
                    finished_at=datetime.now(UTC),
                    replica=replica,
                )
            )

    def retry(self, job_id: str) -> bool:
        """Queue a failed or cancelled job again (its done shards stay done); False if it is
        in another state."""
        with self.db.session() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state.in_(("failed", "cancelled")))
                .values(state="queued", error=None, finished_at=None, manifest=None)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def set_state(
        self, job_id: str, state: str, *, holder: str | None = None, **values: Any
    ) -> bool:
        """Move an active job to ``state`` (only if ``holder`` holds it, when given); False if
        it had already left the active states (cancelled meanwhile, say) or was claimed by
        another replica. A final state lets go of the claim."""
        now = datetime.now(UTC)
        if state == "running":  # resumed jobs keep their first start time
            values.setdefault("started_at", func.coalesce(JobRow.started_at, now))
        if state in FINAL:
            values.setdefault("finished_at", now)
            values.update(claimed_by=None, lease_until=None)
        held = [JobRow.claimed_by == holder] if holder is not None else []
        with self.db.session() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state.in_(ACTIVE), *held)
                .values(state=state, **values)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _unclaimed(replica: str, now: datetime) -> ColumnElement[bool]:
    return or_(JobRow.claimed_by.is_(None), JobRow.claimed_by == replica, JobRow.lease_until < now)
