"""Scale-out costs on this machine, against the real server (uvicorn on loopback):

    .venv/bin/python bench/scale.py [--noise-records 200000] [--apertium-records 4000]

1. Executor overhead: records/s of a noise job and of an Apertium back-translation job on the
   local process pool and on Ray (a local Ray cluster with as many CPUs as the pool has
   workers), the same server settings otherwise; the ratio Ray / local. A warm-up job loads the
   pipelines; each timed job runs over a fresh upload with unique texts (no translation cache
   hits).
2. Replicas: a set of jobs over one dataset on PostgreSQL, finished by one replica and by two
   (one worker each): wall time and the ratio.
3. Per-shard costs measured along the way (seconds per shard, bytes in and out, database rows
   written per shard), from which docs/benchmarks.md works out on paper what 10M and 100M
   records need.

Needs PostgreSQL on 127.0.0.1:5432 for part 2 (skipped if absent) and Apertium for part 1's
second job. Medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.local_server import running, scratch_database  # noqa: E402
from bench.service import NOISE, jsonl  # noqa: E402

APERTIUM = {"pipeline": {"type": "back_translation", "pivots": [["spa"]]}}


def unique_jsonl(n: int, salt: str) -> bytes:
    """``jsonl(n)`` with every text made unique: a translation cache must not serve a timed
    run what the warm-up run translated."""
    lines = jsonl(n).decode().splitlines()
    out = []
    for i, line in enumerate(lines):
        record = json.loads(line)
        record["text"] += f" review {salt} {i}"
        out.append(json.dumps(record))
    return ("\n".join(out) + "\n").encode()


def upload(base: str, n: int, salt: str | None = None) -> str:
    r = httpx.post(
        f"{base}/v1/datasets?id_field=id",
        content=jsonl(n) if salt is None else unique_jsonl(n, salt),
        headers={"content-type": "application/x-ndjson"},
        timeout=600,
    )
    r.raise_for_status()
    return str(r.json()["id"])


def submit(base: str, dataset: str, spec: dict[str, Any], seed: int) -> str:
    r = httpx.post(f"{base}/v1/datasets/{dataset}/jobs", json={"spec": spec, "seed": seed})
    r.raise_for_status()
    return str(r.json()["id"])


def wait(base: str, jobs: list[str]) -> list[dict[str, Any]]:
    done = []
    for job in jobs:
        while (state := httpx.get(f"{base}/v1/jobs/{job}").json())["state"] in (
            "queued",
            "running",
        ):
            time.sleep(0.05)
        if state["state"] != "succeeded":
            raise RuntimeError(f"job {job}: {state['state']} {state.get('error')}")
        done.append(state)
    return done


def timed_job(base: str, dataset: str, spec: dict[str, Any], seed: int) -> tuple[float, Any]:
    start = time.perf_counter()
    (state,) = wait(base, [submit(base, dataset, spec, seed)])
    return time.perf_counter() - start, state


def executors(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    print(f"\n1. executor overhead ({args.workers} workers / Ray CPUs)")
    cases = [("noise", NOISE, args.noise_records), ("apertium", APERTIUM, args.apertium_records)]
    rates: dict[str, dict[str, list[float]]] = {name: {} for name, _, _ in cases}
    shard_seconds: dict[str, float] = {}
    for executor in ("local", "ray"):
        env = {
            "ANTIFIT_EXECUTOR": executor,
            "ANTIFIT_WORKERS": str(args.workers),
            "ANTIFIT_SHARD_SIZE": str(args.shard_size),
            "RAY_ADDRESS": "",
        }
        with tempfile.TemporaryDirectory() as tmp, running(Path(tmp), env) as (base, _):
            for name, spec, n in cases:
                # loads the pipelines in the workers
                timed_job(base, upload(base, n, salt="warm"), spec, seed=0)
                for r in range(args.repeats):
                    dataset = upload(base, n, salt=f"run{r}")  # fresh texts: no cache hits
                    seconds, state = timed_job(base, dataset, spec, seed=r + 1)
                    rates[name].setdefault(executor, []).append(n / seconds)
                    if executor == "local":
                        shards = state["manifest"]["output"]["shards"]
                        shard_seconds[name] = seconds * args.workers / shards
    out: dict[str, dict[str, float]] = {}
    print(f"{'job':<10}{'records':>9}{'local rec/s':>14}{'ray rec/s':>12}{'ray/local':>11}")
    for name, _, n in cases:
        local = statistics.median(rates[name]["local"])
        ray = statistics.median(rates[name]["ray"])
        out[name] = {"local": local, "ray": ray, "shard_seconds": shard_seconds[name]}
        print(f"{name:<10}{n:>9}{local:>14.0f}{ray:>12.0f}{ray / local:>10.2f}x")
    for name in out:
        print(
            f"  {name}: {out[name]['shard_seconds']:.2f} s of one worker per shard of "
            f"{args.shard_size} records"
        )
    return out


@contextmanager
def pg_database() -> Iterator[str | None]:
    """A scratch database, or None (and a note) where no PostgreSQL answers."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(scratch_database("antifit_bench"))
        except Exception as exc:  # noqa: BLE001 -- no server: part 2 is skipped
            print(f"  (no PostgreSQL on 127.0.0.1:5432: {exc.__class__.__name__}; skipped)")
            url = None
        yield url


def replicas(args: argparse.Namespace) -> None:
    print(f"\n2. replicas on PostgreSQL: {args.jobs} noise jobs, {args.replica_records} records")
    walls: dict[int, list[float]] = {1: [], 2: []}
    for count in (1, 2):
        for r in range(args.repeats):
            with pg_database() as url:
                if url is None:
                    return
                env = {
                    "ANTIFIT_DATABASE_URL": url,
                    "ANTIFIT_WORKERS": "1",
                    "ANTIFIT_SHARD_SIZE": str(args.shard_size),
                }
                with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
                    bases = [
                        stack.enter_context(
                            running(Path(tmp), {**env, "ANTIFIT_REPLICA_ID": f"replica-{i}"})
                        )[0]
                        for i in range(count)
                    ]
                    dataset = upload(bases[0], args.replica_records)
                    wait(bases[0], [submit(bases[0], dataset, NOISE, seed=99)])  # warm
                    start = time.perf_counter()
                    jobs = [
                        submit(bases[i % count], dataset, NOISE, seed=r * 100 + i)
                        for i in range(args.jobs)
                    ]
                    wait(bases[0], jobs)
                    walls[count].append(time.perf_counter() - start)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    print(f"one replica  {one:7.1f} s")
    print(f"two replicas {two:7.1f} s   speed-up {one / two:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--noise-records", type=int, default=200_000)
    parser.add_argument("--apertium-records", type=int, default=4_000)
    parser.add_argument("--replica-records", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], choices=["executors", "replicas"])
    args = parser.parse_args()
    if "executors" not in args.skip:
        executors(args)
    if "replicas" not in args.skip:
        replicas(args)


if __name__ == "__main__":
    main()
