"""Training runs: registered by ``antifit train``, shown by the console."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from app.storage.db import Database, RunEvaluationRow, RunRow, newest

MAX_EVALUATIONS = 10_000  # rows a run may log (an evaluation every few steps of a long run)


class UnknownRun(KeyError):
    pass


class RunFinished(Exception):
    """The run has ended: it takes no more rows and no second report."""


class TooManyEvaluations(Exception):
    pass


class RunStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self,
        name: str,
        config: dict[str, Any],
        dataset_id: str | None,
        job_id: str | None,
        owner: str | None,
    ) -> RunRow:
        now = datetime.now(UTC)
        row = RunRow(
            id=uuid.uuid4().hex,
            name=name,
            owner=owner,
            created_at=now,
            updated_at=now,
            state="running",
            dataset_id=dataset_id,
            job_id=job_id,
            config=config,
            report=None,
            evaluations=0,
        )
        with self.db.session() as session:
            session.add(row)
        return row

    def get(self, run_id: str) -> RunRow:
        with self.db.session() as session:
            row = session.get(RunRow, run_id)
        if row is None:
            raise UnknownRun(run_id)
        return row

    def recent(self, limit: int, owner: str | None = None) -> list[RunRow]:
        return newest(self.db, RunRow, limit, owner)

    def evaluations(self, run_id: str) -> list[dict[str, Any]]:
        query = (
            select(RunEvaluationRow.row)
            .where(RunEvaluationRow.run_id == run_id)
            .order_by(RunEvaluationRow.seq)
        )
        with self.db.session() as session:
            return list(session.scalars(query))

    def add_evaluation(self, run_id: str, row: dict[str, Any]) -> int:
        """Append a row; its sequence number. The count is taken and raised in one statement,
        so concurrent appends to a run never share a number."""
        with self.db.session() as session:
            seq = session.execute(
                update(RunRow)
                .where(
                    RunRow.id == run_id,
                    RunRow.state == "running",
                    RunRow.evaluations < MAX_EVALUATIONS,
                )
                .values(evaluations=RunRow.evaluations + 1, updated_at=datetime.now(UTC))
                .returning(RunRow.evaluations)
            ).scalar_one_or_none()
            if seq is None:
                run = session.get(RunRow, run_id)
                if run is None:
                    raise UnknownRun(run_id)
                if run.state != "running":
                    raise RunFinished(run_id)
                raise TooManyEvaluations(run_id)
            session.add(RunEvaluationRow(run_id=run_id, seq=seq, row=row))
        return int(seq)

    def finish(self, run_id: str, state: str, report: dict[str, Any] | None) -> RunRow:
        with self.db.session() as session:
            done = session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.state == "running")
                .values(state=state, report=report, updated_at=datetime.now(UTC))
                .returning(RunRow.id)
            ).scalar_one_or_none()
            if done is None:
                if session.get(RunRow, run_id) is None:
                    raise UnknownRun(run_id)
                raise RunFinished(run_id)
        return self.get(run_id)
