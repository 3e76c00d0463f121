"""Start the real server (`antifit serve`, uvicorn) on a loopback port for a test."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(data_dir: Path, port: int, **env: str) -> subprocess.Popen[bytes]:
    environ = {**os.environ, "ANTIFIT_DATA_DIR": str(data_dir), **env}
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
        ],
        cwd=ROOT,
        env=environ,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert proc.poll() is None, "server exited"
        assert time.monotonic() < deadline, "server not ready in 60 s"
        time.sleep(0.2)


@contextmanager
def running(data_dir: Path, **env: str) -> Iterator[str]:
    port = free_port()
    proc = start(data_dir, port, **env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
