"""Start the service in a subprocess on a free loopback port and wait until it is ready, and
make a scratch PostgreSQL database for it. Used by the tests and the benchmarks, which need the
real server (uvicorn), not an in-process client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    data_dir: Path,
    port: int,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    probe: str = "/readyz",
) -> subprocess.Popen[bytes]:
    """The server, once ``probe`` answers 200 (``/livez``: serving, ready or not)."""
    environ = {**os.environ, "ANTIFIT_DATA_DIR": str(data_dir), **(env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "antifit.cli",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--exit-with-parent",
        ],
        env=environ,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2) as r:
                if r.status == 200:
                    return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(f"the server was not ready in {timeout} s")
        time.sleep(0.2)


@contextmanager
def running(
    data_dir: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    proc = start(data_dir, port, env)
    try:
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def scratch_database(prefix: str, admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A fresh PostgreSQL database on the server of ``admin_url``, dropped afterwards; its URL.
    ``sqlalchemy.exc.OperationalError`` if the server does not answer."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.rsplit("/", 1)[0] + f"/{name}"
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()
