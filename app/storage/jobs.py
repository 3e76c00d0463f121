"""Job metadata: creation with idempotency keys, state, and per-shard progress."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from app.storage.db import Database, JobRow, JobShardRow

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "cancelled")


class UnknownJob(LookupError):
    pass


class IdempotencyConflict(ValueError):
    """The key was used before with a different request."""


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

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

    def next_active(self) -> JobRow | None:
        """The oldest queued or running job (running ones are resumed after a restart)."""
        query = select(JobRow).where(JobRow.state.in_(ACTIVE)).order_by(JobRow.created_at)
        with self.db.session() as session:
            return session.scalars(query.limit(1)).first()

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
    ) -> None:
        """Mark a shard done and add its counts to the job, in one transaction (once)."""
        with self.db.session() as session:
            if session.get(JobShardRow, (job_id, shard)) is not None:
                return
            session.add(
                JobShardRow(
                    job_id=job_id,
                    shard=shard,
                    records=records,
                    variants=variants,
                    dropped=dropped,
                    output_sha256=output_sha256,
                    finished_at=datetime.now(UTC),
                )
            )
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id)
                .values(
                    records_done=JobRow.records_done + records,
                    variants_written=JobRow.variants_written + variants,
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

    def set_state(self, job_id: str, state: str, **values: Any) -> bool:
        """Move an active job to ``state``; False if it had already left the active states
        (cancelled meanwhile, say)."""
        now = datetime.now(UTC)
        if state == "running":  # resumed jobs keep their first start time
            values.setdefault("started_at", func.coalesce(JobRow.started_at, now))
        if state in FINAL:
            values.setdefault("finished_at", now)
        with self.db.session() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.state.in_(ACTIVE))
                .values(state=state, **values)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]
