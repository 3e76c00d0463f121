"""A set of record ids that stays small in memory however large the upload: ids are kept in
memory up to a limit, then in a SQLite file beside the upload's staging folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path

IN_MEMORY = 500_000  # ids held in a Python set (about 50 MB) before spilling to disk


class IdSet:
    def __init__(self, spill: Path, in_memory: int = IN_MEMORY) -> None:
        self._spill = spill
        self._limit = in_memory
        self._ids: set[str] | None = set()
        self._db: sqlite3.Connection | None = None

    def add(self, record_id: str) -> bool:
        """Add an id; False when it was there already."""
        if self._ids is not None:
            if record_id in self._ids:
                return False
            self._ids.add(record_id)
            if len(self._ids) > self._limit:
                self._to_disk(self._ids)
                self._ids = None
            return True
        assert self._db is not None
        try:
            self._db.execute("INSERT INTO ids VALUES (?)", (record_id,))
        except sqlite3.IntegrityError:
            return False
        return True

    def _to_disk(self, ids: set[str]) -> None:
        self._db = sqlite3.connect(self._spill, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE ids (id TEXT PRIMARY KEY) WITHOUT ROWID")
        self._db.execute("BEGIN")  # one transaction: committed never, dropped with the file
        self._db.executemany("INSERT INTO ids VALUES (?)", ((i,) for i in ids))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        self._spill.unlink(missing_ok=True)
