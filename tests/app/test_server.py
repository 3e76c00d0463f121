"""The real server under uvicorn on a loopback port: uploads, streaming with a disconnect and a
resume, and a kill in the middle of a job."""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from app.local_server import free_port, running, start
from augmenters import augment
from tests.conftest import EXAMPLES, needs_apertium


def lines_of(text: str) -> str:
    return "".join(
        json.dumps({"id": f"r{i}", "text": f"{text} {i}", "label": i % 2}) + "\n"
        for i in range(600)
    )


def test_upload_and_stream_with_disconnect_and_resume(tmp_path: Path) -> None:
    with running(tmp_path) as (base, _):
        with (EXAMPLES / "reviews.jsonl").open("rb") as f:
            r = httpx.post(
                f"{base}/v1/datasets?id_field=id&split_field=split",
                files={"file": ("reviews.jsonl", f)},
                timeout=30,
            )
        assert r.status_code == 201, r.text
        assert (tmp_path / "antifit.db").exists()
        body = "".join(
            json.dumps({"id": f"r{i}", "text": f"text {i}", "label": i % 2}) + "\n"
            for i in range(5000)
        )
        ds = httpx.post(f"{base}/v1/datasets?id_field=id", content=body, timeout=30).json()["id"]
        url = f"{base}/v1/datasets/{ds}/stream"
        full = [
            json.loads(x)
            for x in httpx.get(
                url, params={"batch_size": 64, "seed": 9}, timeout=60
            ).text.splitlines()
        ]
        received = []
        with httpx.stream("GET", url, params={"batch_size": 64, "seed": 9}, timeout=60) as resp:
            for raw in resp.iter_lines():
                received.append(json.loads(raw))
                if len(received) == 10:
                    break  # the client goes away mid-stream
        token = received[-1]["resume_token"]
        rest = [
            json.loads(x)
            for x in httpx.get(url, params={"resume_token": token}, timeout=60).text.splitlines()
        ]
        ids = [i["id"] for line in received + rest if "batch" in line for i in line["batch"]]
        assert ids == [i["id"] for line in full if "batch" in line for i in line["batch"]]
        assert len(ids) == 5000 and len(set(ids)) == 5000
        assert httpx.get(f"{base}/metrics").text.count("antifit_streams_total 3.0") == 1


@needs_apertium
def test_killed_mid_job_then_restarted_completes_exactly(tmp_path: Path) -> None:
    env = {"ANTIFIT_SHARD_SIZE": "25", "ANTIFIT_WORKERS": "1"}
    spec = {"pipeline": {"type": "back_translation", "pivots": [["spa"]]}}
    port = free_port()
    proc = start(tmp_path, port, env)
    base = f"http://127.0.0.1:{port}"
    texts = "the customer said that the battery of this phone lasts for many days, test"
    ds = httpx.post(f"{base}/v1/datasets?id_field=id", content=lines_of(texts), timeout=30).json()
    job = httpx.post(
        f"{base}/v1/datasets/{ds['id']}/jobs", json={"spec": spec, "seed": 5, "n_variants": 2}
    ).json()
    deadline = time.monotonic() + 120
    while True:
        state = httpx.get(f"{base}/v1/jobs/{job['id']}").json()
        if state["records_done"] > 0:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state["state"] == "running" and state["records_done"] < 600, "job ended too soon"
    proc.kill()  # no clean shutdown
    proc.wait()

    with running(tmp_path, env) as (base, _):
        deadline = time.monotonic() + 300
        while (state := httpx.get(f"{base}/v1/jobs/{job['id']}").json())["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert state["state"] == "succeeded", state
    assert state["records_done"] == 600 and state["variants_written"] == 1200
    out = tmp_path / "datasets" / ds["id"] / "jobs" / job["id"]
    assert not list(out.glob(".*tmp"))
    rows = [r for p in sorted(out.glob("shard-*.parquet")) for r in pq.read_table(p).to_pylist()]
    records = [json.loads(line) for line in lines_of(texts).splitlines()]
    expected = augment(records, spec, seed=5, n_variants=2)
    assert [(r["id"], r["variant"], r["text"]) for r in rows] == [
        (v.record_id, v.variant, v.text) for v in expected
    ]


def _batches_sent(base: str) -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("antifit_stream_batches_total "):
            return float(line.split()[1])
    raise AssertionError("no stream batch counter")


def test_a_stalled_client_stalls_only_its_stream(tmp_path: Path) -> None:
    """Backpressure: while the client reads nothing, the server stops producing batches (what
    it holds is bounded by the socket buffers), and other requests are still served; beyond
    the maximum of open streams (1 here) a stream is a 429 until one ends."""
    n = 300_000
    with running(tmp_path, {"ANTIFIT_MAX_STREAMS": "1"}) as (base, _):
        body = "".join(
            json.dumps({"text": f"record {i} " + "words " * 20, "label": i % 2}) + "\n"
            for i in range(n)
        )
        ds = httpx.post(f"{base}/v1/datasets", content=body, timeout=120).json()["id"]
        with httpx.stream(
            "GET", f"{base}/v1/datasets/{ds}/stream", params={"batch_size": 64}, timeout=120
        ) as resp:
            lines = resp.iter_lines()
            next(lines)
            time.sleep(3)  # the client stalls
            stalled_at = _batches_sent(base)
            assert httpx.get(f"{base}/livez", timeout=5).status_code == 200
            another = httpx.get(f"{base}/v1/datasets/{ds}/stream", params={"split": "test"})
            assert another.status_code == 429, another.text
            time.sleep(1)
            assert _batches_sent(base) == stalled_at  # nothing more while stalled
            total_batches = -(-n // 64)
            assert stalled_at < total_batches / 2
            received = 1 + sum(1 for _ in lines)
        assert received == total_batches + 1  # every batch, then the end line
        after = httpx.get(f"{base}/v1/datasets/{ds}/stream", params={"split": "test"})
        assert after.status_code == 200  # the slot came back


def test_a_server_started_for_a_process_ends_with_it(tmp_path: Path) -> None:
    """A test or benchmark killed mid-run leaves no server behind (nor its pool workers)."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from app.local_server import free_port,"
            " start; p = start(Path(sys.argv[1]), free_port()); print(p.pid, flush=True);"
            " time.sleep(600)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
    )
    assert parent.stdout is not None
    server = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 30
    while _alive(server):
        assert time.monotonic() < deadline, "the server outlived the process that started it"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")  # a zombie (exited, not yet reaped by init) is gone
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_serve_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTIFIT_")}
    env["ANTIFIT_DATA_DIR"] = str(tmp_path)
    command = [sys.executable, "-m", "antifit.cli", "serve", "--host", "0.0.0.0"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0 without API keys" in proc.stderr
    bad = subprocess.run(
        command, env={**env, "ANTIFIT_API_KEYS": '[""]'}, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "must not be empty" in bad.stderr


def test_keys_new_prints_a_key_and_only_its_digest_for_the_server() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "antifit.cli", "keys", "new", "alice", "--role", "read-only"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    key = proc.stdout.split("it is shown once): ")[1].split()[0]
    entry = json.loads(proc.stdout.split("digest): ")[1])
    from app.core.keys import digest

    assert entry == {"name": "alice", "role": "read-only", "sha256": digest(key)}


def test_killed_mid_upload_then_restarted_leaves_no_orphans(tmp_path: Path) -> None:
    """kill -9 while an upload streams in; stale leftovers of other crashes planted beside it;
    the next start sweeps them all and keeps every real dataset whole."""
    data = tmp_path / "data"
    port = free_port()
    proc = start(data, port)
    base = f"http://127.0.0.1:{port}"
    body = "".join(json.dumps({"text": f"text {i}", "label": i % 2}) + "\n" for i in range(50))
    kept = httpx.post(f"{base}/v1/datasets", content=body, timeout=30).json()["id"]

    def slow_upload() -> Iterator[bytes]:
        yield body.encode()
        for _ in range(300):  # the server dies while this upload trickles in
            time.sleep(0.1)
            yield b"\n"

    spooled: list[Path] = []

    def killer() -> None:
        while not spooled:
            spooled.extend(p for p in (data / "tmp").rglob("upload-*"))
            time.sleep(0.05)
        proc.kill()

    thread = threading.Thread(target=killer)
    thread.start()
    with pytest.raises(httpx.HTTPError):
        httpx.post(f"{base}/v1/datasets", content=slow_upload(), timeout=60)
    thread.join()
    proc.wait(timeout=10)
    assert spooled[0].exists()  # what the crash left
    old = time.time() - 3_600
    planted = [
        data / "datasets" / ("f" * 32),  # a dataset folder whose row was never written
        data / "datasets" / kept / "jobs" / ("e" * 32),  # outputs of a job that is gone
    ]
    for folder in planted:
        folder.mkdir(parents=True)
        (folder / "shard-00000.parquet").write_bytes(b"x")
        os.utime(folder, (old, old))
    cut_short = data / "datasets" / ("d" * 32)  # a delete killed between its row and folder
    creating = data / "datasets" / ("c" * 32)  # another replica's create, row not yet written
    for folder in (cut_short, creating):
        folder.mkdir()
        (folder / "shard-00000.parquet").write_bytes(b"x")
    (creating / ".pending").touch()
    with running(data) as (base, _):
        assert not spooled[0].exists()
        assert not any(p.exists() for p in planted)
        assert not cut_short.exists() and creating.exists()
        records = httpx.get(f"{base}/v1/datasets/{kept}/records", params={"page_size": 100})
        assert len(records.json()["records"]) == 50
        leftovers = [p for p in (data / "tmp").rglob("*") if p.is_file() and p.name != ".lock"]
        assert leftovers == []


def test_a_client_that_takes_nothing_loses_its_stream_and_slot(tmp_path: Path) -> None:
    env = {"ANTIFIT_MAX_STREAMS": "1", "ANTIFIT_STREAM_WRITE_TIMEOUT_S": "1"}
    n = 150_000
    with running(tmp_path, env) as (base, _):
        body = "".join(
            json.dumps({"text": f"record {i} " + "words " * 20, "label": i % 2}) + "\n"
            for i in range(n)
        )
        ds = httpx.post(f"{base}/v1/datasets", content=body, timeout=120).json()["id"]
        url = f"{base}/v1/datasets/{ds}/stream"
        with httpx.stream("GET", url, params={"batch_size": 64}, timeout=120) as resp:
            lines = resp.iter_lines()
            next(lines)
            time.sleep(4)  # the client stalls; the server gives up after 1 s of it
            assert httpx.get(url, params={"split": "test"}).status_code == 200  # slot free
            with pytest.raises(httpx.HTTPError):
                sum(1 for _ in lines)  # cut short, never the end line


def test_shutdown_does_not_hang_on_a_stuck_shard(tmp_path: Path) -> None:
    with running(tmp_path, {"ANTIFIT_WORKERS": "1"}) as (base, proc):
        body = "".join(json.dumps({"text": f"t {i}", "label": i % 2}) + "\n" for i in range(5))
        ds = httpx.post(f"{base}/v1/datasets", content=body, timeout=30).json()["id"]
        shard = tmp_path / "datasets" / ds / "shard-00000.parquet"
        shard.unlink()
        os.mkfifo(shard)  # a worker reading it never returns
        spec = {"pipeline": {"type": "mask"}}
        job = httpx.post(f"{base}/v1/datasets/{ds}/jobs", json={"spec": spec}).json()
        while httpx.get(f"{base}/v1/jobs/{job['id']}").json()["state"] != "running":
            time.sleep(0.05)
        time.sleep(0.5)
        started = time.monotonic()
        proc.terminate()
        proc.wait(timeout=40)  # the grace period (10 s), then the worker is killed
        assert time.monotonic() - started < 30
