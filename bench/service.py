"""Service benchmarks against the real server (uvicorn on loopback), in one run:

    .venv/bin/python bench/service.py [--stream-records 100000] [--job-sizes 100000 1000000]

1. Stream: records/s for one client and for 4 concurrent clients (separate processes), 64-record
   batches, every line parsed by the client; time to first batch (median of 5).
2. POST /v1/augment against the same pipeline called in-process (ratio; target >= 0.7x).
3. Jobs: a noise pipeline over 100k and 1M records, records/s and the peak RSS of the server
   and its workers (memory must stay flat: 1M within +150 MB of 100k).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from app.local_server import running
from augmenters import Pipeline

NOISE = {
    "pipeline": {
        "type": "sequence",
        "steps": [
            {"type": "keyboard", "p": 0.1},
            {"type": "word_swap", "p": 0.1},
            {"type": "punctuation", "p": 0.1},
        ],
    }
}
WORDS = (
    "the battery lasts two full days and charging is quick even with the screen on all day "
    "support answered within an hour and solved my problem"
).split()


def jsonl(n: int) -> bytes:
    out = []
    for i in range(n):
        words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(18)]
        out.append(json.dumps({"id": f"r{i}", "text": " ".join(words), "label": i % 3}))
    return ("\n".join(out) + "\n").encode()


def upload(base: str, n: int) -> str:
    r = httpx.post(
        f"{base}/v1/datasets?id_field=id",
        content=jsonl(n),
        headers={"content-type": "application/x-ndjson"},
        timeout=600,
    )
    r.raise_for_status()
    return str(r.json()["id"])


def consume(url: str) -> tuple[int, float, float]:
    """(records, seconds, seconds to the first batch), parsing every line."""
    t0 = time.perf_counter()
    first = None
    records = 0
    with httpx.stream("GET", url, timeout=600) as resp:
        for line in resp.iter_lines():
            obj = json.loads(line)
            if first is None:
                first = time.perf_counter() - t0
            records += len(obj.get("batch", ()))
    return records, time.perf_counter() - t0, first or 0.0


def _consume_rank(args: tuple[str, int]) -> tuple[int, float, float]:
    base_url, rank = args
    return consume(f"{base_url}&rank={rank}&world_size=4")


def bench_stream(base: str, n: int) -> None:
    ds = upload(base, n)
    url = f"{base}/v1/datasets/{ds}/stream?batch_size=64&seed=1"
    consume(url)  # warm the page cache
    runs = [consume(url) for _ in range(3)]
    rate = statistics.median(r / s for r, s, _ in runs)
    firsts = [
        consume(f"{base}/v1/datasets/{ds}/stream?batch_size=64&seed={s}")[2] for s in range(5)
    ]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        t0 = time.perf_counter()
        parts = pool.map(_consume_rank, [(url, r) for r in range(4)])
        wall = time.perf_counter() - t0
    total = sum(r for r, _, _ in parts)
    print(f"stream, {n} records, 64-record batches, client parses every line:")
    print(f"  1 client : {rate:,.0f} records/s (median of 3; target >= 50,000)")
    print(f"  4 clients: {total / wall:,.0f} records/s together ({total} records, ranks of 4)")
    print(f"  time to first batch: {statistics.median(firsts) * 1000:.1f} ms (median of 5)")


def bench_augment(base: str) -> None:
    records = [json.loads(x) for x in jsonl(1000).decode().splitlines()]
    chunks = [records[i : i + 250] for i in range(0, len(records), 250)]

    client = httpx.Client(timeout=120)  # one kept-alive connection, as a real client would

    def remote() -> float:
        t0 = time.perf_counter()
        for chunk in chunks:
            body = {"records": chunk, "spec": NOISE, "n_variants": 2}
            client.post(f"{base}/v1/augment", json=body).raise_for_status()
        return time.perf_counter() - t0

    def local() -> float:
        t0 = time.perf_counter()
        for chunk in chunks:
            [v.to_dict() for v in Pipeline(NOISE).augment(chunk, 0, 2)]
        return time.perf_counter() - t0

    remote()
    pairs = [(local(), remote()) for _ in range(5)]
    ratio = statistics.median(lo / re for lo, re in pairs)
    print("POST /v1/augment vs in-process, 1,000 records x 2 variants in requests of 250:")
    print(
        f"  in-process {1000 / statistics.median(p[0] for p in pairs):,.0f} records/s, "
        f"service {1000 / statistics.median(p[1] for p in pairs):,.0f} records/s, "
        f"ratio {ratio:.2f}x (target >= 0.7x)"
    )


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set) of a process and its children, in MB."""
    total = 0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1])
    return total / 1024


def bench_job(n: int, workers: int) -> tuple[float, float]:
    env = {
        "ANTIFIT_WORKERS": str(workers),
        "ANTIFIT_SHARD_SIZE": "10000",
        "ANTIFIT_MAX_UPLOAD_BYTES": str(1 << 31),
    }
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp), env) as (base, proc):
        ds = upload(base, n)
        t0 = time.perf_counter()
        job = httpx.post(f"{base}/v1/datasets/{ds}/jobs", json={"spec": NOISE}).json()
        while (state := httpx.get(f"{base}/v1/jobs/{job['id']}").json())["state"] in (
            "queued",
            "running",
        ):
            time.sleep(0.25)
        wall = time.perf_counter() - t0
        assert state["state"] == "succeeded", state
        return n / wall, peak_rss_mb(proc.pid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stream-records", type=int, default=100_000)
    parser.add_argument("--job-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp), {"ANTIFIT_WORKERS": "1"}) as run:
        base = run[0]
        bench_stream(base, args.stream_records)
        bench_augment(base)
    results: dict[int, Any] = {}
    for n in args.job_sizes:
        results[n] = bench_job(n, args.workers)
    print(f"noise job ({args.workers} workers; includes spawning them and loading the pipeline):")
    for n, (rate, rss) in results.items():
        print(f"  {n:>9,} records: {rate:,.0f} records/s, peak RSS server + workers {rss:,.0f} MB")
    if len(results) >= 2:
        sizes = sorted(results)
        growth = results[sizes[-1]][1] - results[sizes[0]][1]
        print(
            f"  peak RSS growth {sizes[0]:,} -> {sizes[-1]:,}: {growth:+,.0f} MB "
            "(target <= +150 MB)"
        )


if __name__ == "__main__":
    main()
