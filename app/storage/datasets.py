"""Datasets: metadata rows plus a directory of record shards, created and deleted atomically."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import and_, or_, select

from app.core.tokens import Signer
from app.storage.db import Database, DatasetRow
from app.storage.ingest import RowError, UploadOptions, ingest
from app.storage.shards import StoredRecord, fsync_dir, read_records
from app.storage.sweep import PENDING, Scratch


class UnknownDataset(LookupError):
    pass


class BadPageToken(ValueError):
    pass


@dataclass(frozen=True)
class Created:
    dataset: DatasetRow
    skipped: list[RowError]


class DatasetStore:
    def __init__(self, db: Database, data_dir: Path, shard_size: int, signer: Signer) -> None:
        self.db = db
        self.signer = signer
        self.root = data_dir / "datasets"
        self.root.mkdir(parents=True, exist_ok=True)
        self._scratch = Scratch(data_dir / "tmp")
        self.tmp = self._scratch.path  # this process's: uploads, staging, deletions
        self.shard_size = shard_size

    def close(self) -> None:
        self._scratch.close()

    def ids(self) -> set[str]:
        with self.db.session() as session:
            return set(session.scalars(select(DatasetRow.id)))

    def directory(self, dataset_id: str) -> Path:
        return self.root / dataset_id

    def create(
        self, upload: Path, options: UploadOptions, name: str, owner: str | None = None
    ) -> Created:
        """Parse ``upload`` into a new dataset. Nothing is left behind if anything fails."""
        dataset_id = uuid.uuid4().hex
        staging = self.tmp / f"ingest-{dataset_id}"
        staging.mkdir()
        final = self.directory(dataset_id)
        try:
            result = ingest(upload, options, staging, self.shard_size)
            row = DatasetRow(
                id=dataset_id,
                name=name,
                created_at=datetime.now(UTC),
                row_count=result.rows,
                shard_count=result.shards,
                shard_sha256=result.shard_sha256,
                summary=result.summary,
                owner=owner,
            )
            # marked until its row exists: the start-up sweep tells a dataset being created
            # (by another replica, say) from a leftover of a crash
            (staging / PENDING).touch()
            fsync_dir(staging)
            staging.rename(final)
            fsync_dir(self.root)
            try:
                with self.db.session() as session:
                    session.add(row)
            except BaseException:
                shutil.rmtree(final, ignore_errors=True)
                raise
            (final / PENDING).unlink()
            return Created(row, result.skipped)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def get(self, dataset_id: str) -> DatasetRow:
        with self.db.session() as session:
            row = session.get(DatasetRow, dataset_id)
        if row is None:
            raise UnknownDataset(dataset_id)
        return row

    def page(
        self, page_size: int, page_token: str | None, owner: str | None = None
    ) -> tuple[list[DatasetRow], str | None]:
        """Newest first (``owner``'s alone, if given); the token continues after the last
        dataset of the previous page."""
        query = select(DatasetRow).order_by(DatasetRow.created_at.desc(), DatasetRow.id.desc())
        if owner is not None:
            query = query.where(DatasetRow.owner == owner)
        if page_token:
            created, last_id = self._decode_token(page_token)
            query = query.where(
                or_(
                    DatasetRow.created_at < created,
                    and_(DatasetRow.created_at == created, DatasetRow.id < last_id),
                )
            )
        with self.db.session() as session:
            rows = list(session.scalars(query.limit(page_size + 1)))
        more = len(rows) > page_size
        rows = rows[:page_size]
        token = self._encode_token(rows[-1]) if more and rows else None
        return rows, token

    def records(
        self, dataset_id: str, *, split: str | None, offset: int, limit: int
    ) -> list[StoredRecord]:
        self.get(dataset_id)
        return list(
            read_records(self.directory(dataset_id), offset=offset, limit=limit, split=split)
        )

    def delete(self, dataset_id: str) -> None:
        with self.db.session() as session:
            row = session.get(DatasetRow, dataset_id)
            if row is None:
                raise UnknownDataset(dataset_id)
            session.delete(row)
        # out of sight first, then removed: a crash leaves only a stray folder under tmp/
        doomed = self.tmp / f"deleted-{dataset_id}"
        if self.directory(dataset_id).exists():
            self.directory(dataset_id).rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def _encode_token(self, row: DatasetRow) -> str:
        return self.signer.encode([row.created_at.isoformat(), row.id])

    def _decode_token(self, token: str) -> tuple[datetime, str]:
        try:
            created, last_id = self.signer.decode(token)
            return datetime.fromisoformat(created), str(last_id)
        except (ValueError, TypeError) as exc:
            raise BadPageToken(token) from exc

    def check(self) -> None:
        """Raise OSError unless the data directory is writable."""
        probe = self.tmp / f".probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"ok")
        probe.unlink()
