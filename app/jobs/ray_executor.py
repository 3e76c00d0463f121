"""Shard tasks on a Ray cluster (``ANTIFIT_EXECUTOR=ray``; the optional ``antifit[ray]``).

The same ``augment_shard`` as the local pool runs on Ray workers, so a job gives the same
bytes wherever its shards run. Pipelines without models run as Ray tasks (a worker process
keeps the pipelines it built, like a local pool worker); pipelines that load models
(contextual fill, Marian, the similarity filter: ``ShardTask.loads_models``) run in actors,
each of which loads the models once and keeps them — Ray gives GPU tasks a fresh process per
call, actors keep theirs. Ray retries a shard whose worker died; that is safe because a
shard's output is written whole under a unique temp name and renamed into place, the same
bytes each time. A shard that keeps failing fails its job with its error.

Workers read and write the shards through the shared data folder, at the same path as the API
(a shared volume), and find the offline resources at the same path too (the same image).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from concurrent.futures import Future
from typing import Any

from app.jobs.executor import ExecutorUnavailable
from app.jobs.work import ShardResult, ShardTask, augment_shard

log = logging.getLogger("antifit.ray")


class ShardActor:
    """Holds the pipelines (and their models) it built, for every shard sent to it."""

    def run(self, task: ShardTask) -> ShardResult:
        return augment_shard(task)


class RayPool:
    def __init__(
        self,
        workers: int,
        *,
        address: str | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        max_retries: int = 3,
        connect_timeout: float = 120.0,
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ExecutorUnavailable(
                "ANTIFIT_EXECUTOR=ray needs Ray: pip install 'antifit[ray]'"
            ) from exc
        self._ray = ray
        if not ray.is_initialized():
            # address None: RAY_ADDRESS if set, else a new local cluster of `workers` CPUs
            target = address or os.environ.get("RAY_ADDRESS") or ""
            options: dict[str, Any] = {"address": address, "namespace": "antifit"}
            if not target.startswith("ray://"):  # a Ray Client connection takes no more
                options.update(log_to_driver=False, configure_logging=False)
            if not target:
                options.update(
                    num_cpus=workers,
                    include_dashboard=False,
                    object_store_memory=256 * 1024 * 1024,  # shard tasks pass paths, not data
                )
            # a cluster starting next to the API (compose) answers after a while
            deadline = time.monotonic() + connect_timeout
            while True:
                try:
                    _init_from_a_lasting_thread(ray, options)
                    break
                except Exception as exc:  # noqa: BLE001 -- any failure to connect
                    if time.monotonic() >= deadline:
                        raise ExecutorUnavailable(
                            f"cannot start or reach a Ray cluster: {exc}"
                        ) from exc
                    log.warning("Ray cluster not reachable yet (%s); retrying", exc)
                    time.sleep(2.0)
        self.workers = workers
        self._task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries)(
            augment_shard
        )
        self._actor_class = ray.remote(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            max_restarts=max_retries,
            max_task_retries=max_retries,
        )(ShardActor)
        self._actors: list[Any] = []
        self._next_actor = itertools.count()
        self._running: dict[Any, None] = {}  # object refs of tasks in flight

    def submit(self, task: ShardTask) -> Future[ShardResult]:
        if task.loads_models:
            ref = self._actor().run.remote(task)
        else:
            ref = self._task.remote(task)
        self._running[ref] = None
        future: Future[ShardResult] = ref.future()
        future.add_done_callback(lambda _: self._running.pop(ref, None))
        return future

    def _actor(self) -> Any:
        if len(self._actors) < self.workers:
            self._actors.append(self._actor_class.remote())
        return self._actors[next(self._next_actor) % len(self._actors)]

    def abort(self) -> None:
        """Stop every shard in flight: tasks are cancelled (their workers killed), actors
        killed (new ones load the models again when needed)."""
        for ref in list(self._running):
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 -- an actor task: its actor goes below
                pass
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        self._running.clear()

    def shutdown(self, grace: float = 10.0) -> None:
        if self._running:
            self._ray.wait(list(self._running), num_returns=len(self._running), timeout=grace)
        self.abort()
        self._ray.shutdown()  # this process's connection; an external cluster keeps running


def _init_from_a_lasting_thread(ray: Any, options: dict[str, Any]) -> None:
    """``ray.init`` from a thread that lives as long as the process. The processes of a local
    cluster (GCS, raylet) are started with PR_SET_PDEATHSIG, which fires when the *thread* that
    started them ends: started from a pool thread (``run_in_threadpool``), they are killed
    when that thread is retired for being idle."""
    started: Future[None] = Future()

    def keep() -> None:
        try:
            ray.init(**options)
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller
            started.set_exception(exc)
            return
        started.set_result(None)
        threading.Event().wait()  # for good: a daemon thread, gone with the process

    threading.Thread(target=keep, name="ray-init", daemon=True).start()
    started.result()
