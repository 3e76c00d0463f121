"""Runs augmentation jobs: one job at a time per replica, its shards in parallel on the
executor.

Replicas sharing a database claim jobs with a lease (``JobStore.claim``) and renew it while
they work; a replica that dies stops renewing, and another one claims the job once the lease
has run out. Progress is persisted per shard, so whoever resumes a job skips the shards recorded
as done and (re)computes the others, replacing their output files whole: the same records, no
duplicates and no gaps. A replica that lost its claim records nothing more (``ClaimLost``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from fastapi.concurrency import run_in_threadpool

from app.core.metrics import Metrics
from app.jobs.executor import Executor
from app.jobs.work import ShardResult, ShardTask
from app.storage.datasets import DatasetStore
from app.storage.db import JobRow
from app.storage.jobs import ClaimLost, JobStore, UnknownJob
from app.storage.shards import (
    ShardMismatch,
    job_output_dir,
    partial_outputs,
    sha256_file,
    shard_files,
    shard_path,
)
from augmenters import PipelineSpec, parse_spec
from augmenters.registry import Registry

log = logging.getLogger("antifit.jobs")


class ShardDeadline(Exception):
    """A shard ran past its deadline."""


VERSIONED = ("antifit", "nltk", "transformers", "torch", "pyarrow", "sentencepiece", "pydantic")


class JobRunner:
    def __init__(
        self,
        jobs: JobStore,
        datasets: DatasetStore,
        executor: Executor,
        metrics: Metrics,
        registry: Registry,
        shard_deadline: float = 3600.0,
        shard_output_bytes: int = 1 << 30,
        replica: str = "local",
        lease: float = 30.0,
        poll: float = 1.0,
    ) -> None:
        self.replica = replica
        # how often an idle replica looks for work a client gave to another replica (its own
        # submissions wake it at once)
        self.poll = min(poll, lease / 3)
        self.lease = lease
        self.claimed: set[str] = set()  # the jobs this replica works on now
        self.renewals = 0
        self.registry = registry
        self.shard_output_bytes = shard_output_bytes
        self.shard_deadline = shard_deadline
        self.jobs = jobs
        self.datasets = datasets
        self.executor = executor
        self.metrics = metrics
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A job was queued or cancelled: look again now."""
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            job = await run_in_threadpool(self.jobs.claim, self.replica, self.lease)
            if job is None:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=self.poll)
                except TimeoutError:
                    pass
                continue
            self.claimed.add(job.id)
            self.metrics.job_claims.inc()
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except ClaimLost:
                self.executor.abort()  # another replica has the job: its shards are its own
                log.warning("job %s: lease lost to another replica", job.id)
                self.metrics.job_claims_lost.inc()
            except Exception as exc:  # noqa: BLE001 -- a failed job must not stop the runner
                self.executor.abort()  # no shard of a failed job keeps running
                log.exception("job %s failed", job.id)  # the details, paths included, stay here
                failed = await run_in_threadpool(
                    functools.partial(
                        self.jobs.set_state,
                        job.id,
                        "failed",
                        holder=self.replica,
                        error=public_error(exc),
                    )
                )
                if failed:
                    self.metrics.jobs.labels("failed").inc()
            finally:
                self.claimed.discard(job.id)
                # at once, not when the lease runs out: on shutdown another replica takes over
                await run_in_threadpool(self.jobs.release, job.id, self.replica)

    def output_dir(self, job: JobRow) -> Path:
        return job_output_dir(self.datasets.directory(job.dataset_id), job.id)

    async def _run(self, job: JobRow) -> None:
        """Run a job's pending shards until they are done, one fails (its siblings are then
        stopped: the job failed), one runs past the shard deadline (likewise), or the job is
        cancelled (running shards are stopped, not waited for)."""
        running = functools.partial(self.jobs.set_state, job.id, "running", holder=self.replica)
        if not await run_in_threadpool(running):
            return  # cancelled meanwhile
        inputs, digests = await run_in_threadpool(self._inputs, job)
        spec = await run_in_threadpool(parse_spec, job.spec)  # a client's spec: off the loop
        done = await run_in_threadpool(self.jobs.done_shards, job.id)
        pending = [i for i in range(len(inputs)) if i not in done]
        # as many shards in flight as workers: a submitted shard starts at once, so its
        # deadline counts its own work, not its wait in the pool's queue
        limit = asyncio.Semaphore(max(1, self.executor.workers))

        async def one(shard: int) -> None:
            async with limit:
                task = ShardTask(
                    job_id=job.id,
                    shard=shard,
                    input_path=str(inputs[shard]),
                    input_sha256=digests[shard] if digests else None,
                    output_path=str(shard_path(self.output_dir(job), shard)),
                    spec=job.spec,
                    loads_models=bool(spec.model_refs()),
                    seed=job.seed,
                    n_variants=job.n_variants,
                    splits=tuple(job.splits),
                    target=job.target,
                    resources_dir=str(self.registry.root) if self.registry.root else None,
                    max_output_bytes=self.shard_output_bytes,
                )
                future = asyncio.wrap_future(self.executor.submit(task))
                try:
                    result = await asyncio.wait_for(future, timeout=self.shard_deadline)
                except TimeoutError:
                    raise ShardDeadline(
                        f"shard {shard} ran longer than {self.shard_deadline:g} s "
                        "(ANTIFIT_SHARD_DEADLINE_S); its worker was stopped"
                    ) from None
                await self._record(result)

        async def shards() -> None:
            async with asyncio.TaskGroup() as group:  # one failure cancels the others
                for i in pending:
                    group.create_task(one(i))

        work = asyncio.create_task(shards())
        watch = asyncio.create_task(self._watch(job.id))
        try:
            await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server is stopping
            work.cancel()
            watch.cancel()
            raise
        if watch.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            self.executor.abort()  # running shards stop now, not when they would finish
            watch.result()  # ClaimLost if the lease was lost rather than the job cancelled
            return
        watch.cancel()
        try:
            work.result()
        except BaseExceptionGroup as group:
            raise group.exceptions[0] from None  # the first failure is the job's
        if await self._cancelled(job.id):
            return
        # every shard is in place: a temp file left is a dead worker's (a server killed -9
        # leaves its pool's workers to die mid-write), not one being written
        for partial in await run_in_threadpool(partial_outputs, self.output_dir(job)):
            partial.unlink(missing_ok=True)
        if digests is None:  # a dataset uploaded before digests were recorded
            digests = await run_in_threadpool(lambda: [sha256_file(p) for p in inputs])
        manifest = await run_in_threadpool(self._manifest, job, spec, digests)
        succeeded = functools.partial(
            self.jobs.set_state, job.id, "succeeded", holder=self.replica, manifest=manifest
        )
        if await run_in_threadpool(succeeded):
            self.metrics.jobs.labels("succeeded").inc()

    def _inputs(self, job: JobRow) -> tuple[list[Path], list[str] | None]:
        """The dataset's input shards, counted against the database (a replica that does not
        share the data folder must not "succeed" with nothing), and their recorded digests,
        which each shard's worker checks as it reads its input."""
        dataset = self.datasets.get(job.dataset_id)
        inputs = shard_files(self.datasets.directory(job.dataset_id))
        if len(inputs) != dataset.shard_count:
            raise ShardMismatch(
                f"replica {self.replica} finds {len(inputs)} of the dataset's "
                f"{dataset.shard_count} input shards in its data folder: replicas must share "
                "ANTIFIT_DATA_DIR"
            )
        return inputs, dataset.shard_sha256

    async def _cancelled(self, job_id: str) -> bool:
        """Cancelled by a client, or gone with its dataset."""
        try:
            return (await run_in_threadpool(self.jobs.get, job_id)).state == "cancelled"
        except UnknownJob:
            return True

    async def _watch(self, job_id: str, every: float = 0.5) -> None:
        """Return when the job is cancelled (read from the database, so a cancel through any
        replica stops it here); renew the lease meanwhile, and raise ClaimLost if it cannot."""
        renewed = time.monotonic()
        while not await self._cancelled(job_id):
            if time.monotonic() - renewed >= self.lease / 3:
                if not await run_in_threadpool(self.jobs.renew, job_id, self.replica, self.lease):
                    raise ClaimLost(job_id)
                renewed = time.monotonic()
                self.renewals += 1
                self.metrics.job_lease_renewals.inc()
            await asyncio.sleep(every)

    async def _record(self, result: ShardResult) -> None:
        await run_in_threadpool(
            self.jobs.record_shard,
            result.job_id,
            result.shard,
            result.records,
            result.variants,
            result.dropped,
            result.output_sha256,
            self.replica,
        )
        self.metrics.job_shards.inc()
        self.metrics.job_records.inc(result.records)
        self.metrics.job_variants.inc(result.variants)

    def _manifest(
        self, job: JobRow, spec: PipelineSpec, input_digests: list[str]
    ) -> dict[str, Any]:
        """What produced this version and what it holds: enough to reproduce and verify it."""
        shards = self.jobs.done_shards(job.id)
        dropped: dict[str, int] = {}
        for row in shards.values():
            for name, n in row.dropped.items():
                dropped[name] = dropped.get(name, 0) + n
        return {
            "spec": spec.to_dict(),
            "spec_digest": spec.digest(),
            "seed": job.seed,
            "n_variants": job.n_variants,
            "splits": job.splits,
            "target": job.target,
            "versions": _versions(),
            "models": _models(spec, self.registry),
            "input": {"shards": len(input_digests), "sha256": _combined(input_digests)},
            "output": {
                "shards": len(shards),
                "records": sum(r.records for r in shards.values()),
                "variants": sum(r.variants for r in shards.values()),
                "dropped": dropped,
                "sha256": _combined(shards[i].output_sha256 for i in sorted(shards)),
            },
        }


_SERVER_PATH = re.compile(r"(?<![\w.:/])(?:~|\.{1,2})?/[^\s'\"]+")


def public_error(exc: BaseException) -> str:
    """What a client may read of a failure: its kind and message, server paths left out."""
    return _SERVER_PATH.sub("<server path>", f"{type(exc).__name__}: {exc}")[:2_000]


def _combined(digests: Any) -> str:
    return hashlib.sha256("".join(digests).encode()).hexdigest()


def _versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _models(spec: PipelineSpec, registry: Registry) -> dict[str, str]:
    """The models a spec names, each with the hash of its config.json (by name: no server
    path reaches a client)."""
    found: dict[str, str] = {}
    for name in spec.model_refs():
        path = registry.named("model", name)
        config = path / "config.json" if path is not None else None
        found[name] = sha256_file(config) if config and config.is_file() else "not registered"
    return found
