"""The real server: `antifit serve` under uvicorn on a loopback port."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import EXAMPLES, ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_upload_and_fetch_over_loopback(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "ANTIFIT_DATA_DIR": str(tmp_path)}
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
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "server exited"
            assert time.monotonic() < deadline, "server not ready in 60 s"
            time.sleep(0.2)
        with (EXAMPLES / "reviews.jsonl").open("rb") as f:
            r = httpx.post(
                f"{base}/v1/datasets?id_field=id&split_field=split",
                files={"file": ("reviews.jsonl", f)},
                timeout=30,
            )
        assert r.status_code == 201, r.text
        assert httpx.get(f"{base}{r.headers['location']}").json()["rows"] == 36
        assert (tmp_path / "antifit.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
