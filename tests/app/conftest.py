"""Service fixtures: an app on a temporary data directory (SQLite), and a throwaway PostgreSQL
database on the local server when one is reachable."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.local_server import scratch_database
from app.main import create_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", max_upload_bytes=200_000, shard_size=10)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards. Needs the server on 127.0.0.1:5432."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    with ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database("antifit_test"))
        except sqlalchemy.exc.OperationalError as exc:
            pytest.skip(f"needs PostgreSQL on 127.0.0.1:5432 (trust auth, database 'test'): {exc}")
        yield url
