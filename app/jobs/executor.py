"""Where shard tasks run. The default is a local process pool; anything with ``submit`` returning
a ``concurrent.futures.Future`` (a Ray-backed executor, say) can stand in."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from app.core.lifeline import exit_with_parent
from app.jobs.work import ShardResult, ShardTask, augment_shard

TASKS_PER_WORKER = 64  # shards a worker process runs before it is replaced


class Executor(Protocol):
    workers: int

    def submit(self, task: ShardTask) -> Future[ShardResult]: ...

    def shutdown(self) -> None: ...


class LocalPool:
    """A pool of worker processes (spawned: no state forked from the server's threads)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = self._new_pool()

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
            return self._pool.submit(augment_shard, task)
        except BrokenProcessPool:  # a worker died (killed, out of memory): start a fresh pool
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(augment_shard, task)

    def shutdown(self) -> None:
        """Drop queued shards, let running ones finish (they are recorded on the next start)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
