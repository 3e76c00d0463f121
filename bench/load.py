"""A bounded load test of the service on loopback: uploads (and deletes), synchronous augment
calls, job creation and 16 concurrent streams at once for a fixed time, against a real server
(uvicorn, the default embedded settings). Prints per-route latency (p50/p99), the number of
unexpected answers, and the server's memory (RSS, server process plus its job workers) at
start and end.

    .venv/bin/python bench/load.py --seconds 60
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from app.core.keys import digest
from app.local_server import running

KEY = "load-test-key-0123456789"
HEADERS = {"X-API-Key": KEY}
EDA = {
    "pipeline": {
        "type": "one_of",
        "steps": [{"type": "word_swap", "p": 0.1}, {"type": "keyboard", "p": 0.1}],
    }
}


def _jsonl(n: int, prefix: str) -> str:
    return "".join(
        json.dumps(
            {
                "id": f"{prefix}{i}",
                "text": f"review {i}: the battery lasts {i % 9} days "
                "and the screen is bright enough outdoors",
                "label": i % 3,
            }
        )
        + "\n"
        for i in range(n)
    )


def _rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (the job workers), in kB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            continue
    return total


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.unexpected: list[str] = []
        self.lock = threading.Lock()

    def timed(
        self,
        route: str,
        client: httpx.Client,
        method: str,
        url: str,
        ok: tuple[int, ...],
        **kwargs: Any,
    ) -> Any:
        start = time.perf_counter()
        try:
            response = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            with self.lock:
                self.unexpected.append(f"{route}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - start
        with self.lock:
            self.latencies[route].append(elapsed)
            if response.status_code not in ok:
                self.unexpected.append(f"{route}: {response.status_code} {response.text[:200]}")
        return response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--streams", type=int, default=16)
    args = parser.parse_args()

    env = {
        "ANTIFIT_API_KEYS": json.dumps([{"name": "load", "role": "admin", "sha256": digest(KEY)}]),
        "ANTIFIT_WORKERS": "2",
    }
    rec = Recorder()
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp), env) as (base, proc):
        client = httpx.Client(base_url=base, headers=HEADERS, timeout=120)
        ds = client.post(
            "/v1/datasets?id_field=id",
            content=_jsonl(2_000, "r"),
            headers={"content-type": "application/x-ndjson"},
        ).json()["id"]
        job = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": EDA, "n_variants": 2}).json()
        while client.get(f"/v1/jobs/{job['id']}").json()["state"] != "succeeded":
            time.sleep(0.2)
        client.post("/v1/augment", json={"records": ["warm up"], "spec": EDA})
        rss_start = _rss_kb(proc.pid)
        deadline = time.monotonic() + args.seconds
        streams_done = [0]
        rss: list[int] = []

        def uploader(k: int) -> None:
            c = httpx.Client(base_url=base, headers=HEADERS, timeout=120)
            i = 0
            while time.monotonic() < deadline:
                r = rec.timed(
                    "POST /v1/datasets",
                    c,
                    "POST",
                    "/v1/datasets?id_field=id",
                    (201,),
                    content=_jsonl(300, f"u{k}-{i}-"),
                    headers={"content-type": "application/x-ndjson"},
                )
                if r is not None and r.status_code == 201:
                    url = f"/v1/datasets/{r.json()['id']}"
                    rec.timed("DELETE /v1/datasets/{id}", c, "DELETE", url, (204,))
                i += 1

        def augmenter(k: int) -> None:
            c = httpx.Client(base_url=base, headers=HEADERS, timeout=120)
            texts = [f"sample {k} {i} with words to change here" for i in range(16)]
            while time.monotonic() < deadline:
                body = {"records": texts, "spec": EDA, "n_variants": 4}
                rec.timed("POST /v1/augment", c, "POST", "/v1/augment", (200,), json=body)

        def job_starter() -> None:
            c = httpx.Client(base_url=base, headers=HEADERS, timeout=120)
            seed = 100
            while time.monotonic() < deadline:
                body = {"spec": EDA, "seed": seed}
                url = f"/v1/datasets/{ds}/jobs"
                r = rec.timed("POST /v1/datasets/{id}/jobs", c, "POST", url, (202,), json=body)
                seed += 1
                while r is not None and time.monotonic() < deadline:
                    url = f"/v1/jobs/{r.json()['id']}"
                    g = rec.timed("GET /v1/jobs/{id}", c, "GET", url, (200,))
                    if g is None or g.json()["state"] in ("succeeded", "failed", "cancelled"):
                        break
                    time.sleep(0.5)

        def streamer(k: int) -> None:
            c = httpx.Client(base_url=base, headers=HEADERS, timeout=120)
            epoch = 0
            while time.monotonic() < deadline:
                params = {"job": job["id"], "batch_size": 32, "seed": k, "epoch": epoch}
                start = time.perf_counter()
                try:
                    with c.stream("GET", f"/v1/datasets/{ds}/stream", params=params) as r:
                        lines = r.iter_lines()
                        first = next(lines)
                        with rec.lock:
                            rec.latencies["GET stream (first batch)"].append(
                                time.perf_counter() - start
                            )
                        n = 1 + sum(1 for _ in lines)
                    with rec.lock:
                        rec.latencies["GET stream (whole epoch)"].append(
                            time.perf_counter() - start
                        )
                        streams_done[0] += 1
                        if r.status_code != 200 or not json.loads(first).get("batch") or n < 2:
                            rec.unexpected.append(f"stream: {r.status_code} {first[:200]}")
                except httpx.HTTPError as exc:
                    with rec.lock:
                        rec.unexpected.append(f"stream: {type(exc).__name__}: {exc}")
                epoch += 1

        def pinger() -> None:
            c = httpx.Client(base_url=base, timeout=30)
            while time.monotonic() < deadline:
                rec.timed("GET /livez", c, "GET", "/livez", (200,))
                time.sleep(0.1)

        def sampler() -> None:
            while time.monotonic() < deadline:
                rss.append(_rss_kb(proc.pid))
                time.sleep(5)

        threads = [threading.Thread(target=uploader, args=(k,)) for k in range(2)]
        threads += [threading.Thread(target=augmenter, args=(k,)) for k in range(4)]
        threads += [threading.Thread(target=f) for f in (job_starter, pinger, sampler)]
        threads += [threading.Thread(target=streamer, args=(k,)) for k in range(args.streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        rss_end = _rss_kb(proc.pid)

    print(
        f"load for {args.seconds:g} s: 2 uploaders, 4 augmenters, 1 job starter, "
        f"{args.streams} streams, 1 liveness probe (median and 99th percentile, ms)"
    )
    print(f"{'route':32s}{'requests':>10s}{'p50':>10s}{'p99':>10s}")
    for route, values in sorted(rec.latencies.items()):
        values.sort()
        p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
        print(
            f"{route:32s}{len(values):10d}{statistics.median(values) * 1e3:10.1f}{p99 * 1e3:10.1f}"
        )
    print(f"whole-epoch streams completed: {streams_done[0]}")
    print(f"unexpected answers: {len(rec.unexpected)}")
    for line in rec.unexpected[:10]:
        print("  ", line)
    print(
        f"server RSS (with job workers), MB: before {rss_start / 1024:.0f}, every 5 s "
        + " ".join(f"{kb / 1024:.0f}" for kb in rss)
        + f", after {rss_end / 1024:.0f}"
    )


if __name__ == "__main__":
    main()
