"""Metadata in a SQL database through SQLAlchemy 2: a SQLite file by default, PostgreSQL by URL.
The schema is managed by Alembic migrations (``app/storage/migrations``), applied at start-up."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    create_engine,
    event,
    select,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger("antifit.db")


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    pass


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    row_count: Mapped[int] = mapped_column(Integer)
    shard_count: Mapped[int] = mapped_column(Integer)
    # rows per split, label counts, text length stats, source format and fields
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(String(64), index=True)  # the API key's name
    # sha256 of each input shard, in order: a replica checks its data folder against them
    shard_sha256: Mapped[list[str] | None] = mapped_column(JSON)


class JobRow(Base):
    """An augmentation job; once succeeded, an immutable augmented version of its dataset."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    seed: Mapped[int] = mapped_column(Integer)
    n_variants: Mapped[int] = mapped_column(Integer)
    splits: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    records_total: Mapped[int] = mapped_column(Integer)
    records_done: Mapped[int] = mapped_column(Integer, default=0)
    variants_written: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(64))
    # what the pipeline rewrites: "text" (a generation record's prompt) or "response"
    target: Mapped[str] = mapped_column(String(16), default="text", server_default="text")
    # the replica working on the job, while its lease runs (renewed by its heartbeat)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class JobShardRow(Base):
    """Progress of one input shard of a job: done once its output file is in place."""

    __tablename__ = "job_shards"

    job_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    records: Mapped[int] = mapped_column(Integer)
    variants: Mapped[int] = mapped_column(Integer)
    dropped: Mapped[dict[str, int]] = mapped_column(JSON)
    output_sha256: Mapped[str] = mapped_column(String(64))
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    replica: Mapped[str | None] = mapped_column(String(64))  # the one that finished it


class RunRow(Base):
    """A training run registered by ``antifit train``: its config (no secrets), what it trained
    on, and its final report once it ends."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    state: Mapped[str] = mapped_column(String(16))  # running, succeeded, failed
    dataset_id: Mapped[str | None] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    evaluations: Mapped[int] = mapped_column(Integer, default=0)


class RunEvaluationRow(Base):
    """One evaluation row of a run, as the trainer logged it (its metrics.jsonl line)."""

    __tablename__ = "run_evaluations"

    run_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    row: Mapped[dict[str, Any]] = mapped_column(JSON)


Owned = TypeVar("Owned", "JobRow", "RunRow")


def newest(db: Database, model: type[Owned], limit: int, owner: str | None) -> list[Owned]:
    """The newest ``limit`` rows of a table of owned rows (``owner``'s alone, if given)."""
    query = select(model).order_by(model.created_at.desc(), model.id.desc())
    if owner is not None:
        query = query.where(model.owner == owner)
    with db.session() as session:
        return list(session.scalars(query.limit(limit)))


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        connect_args: dict[str, Any] = {}
        if url.startswith("sqlite"):
            connect_args["check_same_thread"] = False
        self.engine: Engine = create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def wait_until_up(self, timeout: float, every: float = 1.0) -> None:
        """Return once the database accepts connections (a PostgreSQL container starting next
        to the API, say); raise its last error after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ping()
                return
            except OperationalError as exc:
                if time.monotonic() >= deadline:
                    raise
                log.warning("database not up yet (%s); retrying", exc.orig.__class__.__name__)
                time.sleep(every)

    def migrate(self) -> None:
        """Bring the schema to the newest migration (idempotent)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
