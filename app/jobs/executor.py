"""Where shard tasks run. The default is a local process pool; anything with ``submit``
returning a ``concurrent.futures.Future`` and an ``abort`` that stops running tasks (a
Ray-backed executor, say) can stand in."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol
from weakref import WeakSet

from app.core.config import Settings
from app.core.lifeline import exit_with_parent
from app.jobs.work import ShardResult, ShardTask, augment_shard

TASKS_PER_WORKER = 64  # shards a worker process runs before it is replaced


class ExecutorUnavailable(RuntimeError):
    """The configured executor cannot run here (Ray missing, or its cluster unreachable)."""


class Executor(Protocol):
    workers: int

    def submit(self, task: ShardTask) -> Future[ShardResult]: ...

    def abort(self) -> None: ...

    def shutdown(self, grace: float = ...) -> None: ...


class LocalPool:
    """A pool of worker processes (spawned: no state forked from the server's threads)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = self._new_pool()
        self._running: WeakSet[Future[ShardResult]] = WeakSet()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=exit_with_parent,
            initargs=(os.getpid(),),
            # a fresh worker now and then, so its memory (caches, models, fragmentation) cannot
            # only grow; the models it loaded load again in the next one
            max_tasks_per_child=TASKS_PER_WORKER,
        )

    def submit(self, task: ShardTask) -> Future[ShardResult]:
        try:
            future = self._pool.submit(augment_shard, task)
        except BrokenProcessPool:  # a worker died (killed, out of memory): start a fresh pool
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            future = self._pool.submit(augment_shard, task)
        self._running.add(future)
        return future

    def abort(self) -> None:
        """Stop every queued and running shard now (a job was cancelled, failed or ran past its
        deadline): the workers are killed and a fresh pool takes their place. What they were
        writing is a temp file that the start-up sweep, or the shard's next run, replaces."""
        old, self._pool = self._pool, self._new_pool()
        _kill(old)

    def shutdown(self, grace: float = 10.0) -> None:
        """Drop queued shards, give running ones ``grace`` seconds, then stop them (they are
        redone on the next start): a stuck shard never holds the server up."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        wait_futures(list(self._running), timeout=grace)
        _kill(self._pool)


def _kill(pool: ProcessPoolExecutor) -> None:
    # the executor has no public handle on its processes; _processes has been there since 3.2
    processes: dict[int, Any] = dict(getattr(pool, "_processes", None) or {})
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes.values():
        if process.is_alive():
            process.kill()
    for process in processes.values():
        process.join(timeout=5)


def open_executor(settings: Settings) -> Executor:
    """The executor the settings ask for; ExecutorUnavailable if it cannot run here."""
    if settings.executor == "ray":
        from app.jobs.ray_executor import RayPool  # Ray is optional, and slow to import

        return RayPool(
            settings.workers,
            address=settings.ray_address,
            num_cpus=settings.ray_num_cpus,
            num_gpus=settings.ray_num_gpus,
            max_retries=settings.ray_max_retries,
            connect_timeout=settings.ray_connect_s,
        )
    return LocalPool(settings.workers)
