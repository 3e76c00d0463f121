"""Assembles the service: settings, storage, routers, error handling. Nothing loads at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from app import console
from app.api import docs, openapi
from app.api.routes import augmenters, datasets, health, jobs, runs, stream
from app.core import problems
from app.core.config import Settings, get_settings
from app.core.guard import Guard
from app.core.metrics import Metrics
from app.core.streams import StreamSlots
from app.core.tokens import Signer, server_secret
from app.jobs.executor import Executor, ExecutorUnavailable, open_executor
from app.jobs.runner import JobRunner
from app.storage.datasets import DatasetStore
from app.storage.db import Database
from app.storage.jobs import JobStore
from app.storage.runs import RunStore
from app.storage.sweep import sweep
from augmenters.registry import Registry
from augmenters.resources import check as check_resources

log = logging.getLogger("antifit")


def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(s.sqlalchemy_url())
        await run_in_threadpool(db.wait_until_up, s.database_wait_s)
        await run_in_threadpool(db.migrate)
        signer = Signer(await run_in_threadpool(server_secret, s.secret, s.data_dir))
        app.state.store = store = DatasetStore(db, s.data_dir, s.shard_size, signer)
        app.state.jobs = job_store = JobStore(db)
        app.state.runs = RunStore(db)
        await run_in_threadpool(lambda: sweep(s.data_dir, store.ids(), job_store.ids()))
        app.state.stream_slots = StreamSlots(s.max_streams, s.stream_threads)
        app.state.replica_id = s.replica_id
        app.state.runner = None
        app.state.executor_status = "starting"
        executor: Executor | None = None

        async def run_jobs() -> None:
            nonlocal executor
            if executor is None:
                # in the background: a Ray cluster may take a while to answer, or never; the
                # API serves meanwhile and /readyz says the executor is starting
                try:
                    executor = await run_in_threadpool(open_executor, s)
                except ExecutorUnavailable as exc:  # the API serves; jobs wait for a replica
                    log.error("the %s executor is unavailable: %s", s.executor, exc)
                    app.state.executor_status = "unavailable"
                    return
                app.state.executor_status = "ok"
            app.state.runner = runner = JobRunner(
                job_store,
                store,
                executor,
                app.state.metrics,
                app.state.registry,
                s.shard_deadline_s,
                s.max_shard_output_bytes,
                replica=s.replica_id,
                lease=s.job_lease_s,
                poll=s.job_poll_s,
            )
            await runner.run_forever()  # resumes unfinished jobs

        if s.executor == "local":  # a process pool starts at once: ready when the API is
            executor = open_executor(s)
            app.state.executor_status = "ok"
        running = asyncio.create_task(run_jobs())
        # the files only: loading WordNet and the tagger is the workers' business
        app.state.resources = await run_in_threadpool(check_resources, False)
        try:
            yield
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)  # lets go of its job
            if executor is not None:
                await run_in_threadpool(executor.shutdown)
            store.close()
            db.dispose()

    app = FastAPI(
        title="antifit",
        summary="Augment small labelled text datasets and stream them to trainers.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    app.state.metrics = Metrics()
    app.state.registry = Registry(s.resources_dir)
    problems.install(app)
    app.add_middleware(Guard, settings=s)  # keys, roles and body size, before the body
    for router in (datasets.router, stream.router, jobs.router, runs.router, augmenters.router):
        app.include_router(router)
    app.include_router(health.router)
    docs.install(app)
    console.install(app)
    openapi.install(app, app.state.registry)
    return app
