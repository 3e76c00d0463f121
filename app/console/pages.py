"""The console's pages (/ui): server-rendered, with htmx for the live parts.

Every action goes through the same code as the API (the route functions of app/api/routes and
the stores), so limits, ownership and errors are the API's; the pages only render them. Forms
post without JavaScript; htmx, when present, swaps the fragment instead of the page.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from app.api.deps import (
    JobsDep,
    MetricsDep,
    PrincipalDep,
    RegistryDep,
    RunnerDep,
    SettingsDep,
    StoreDep,
    owned_dataset,
    owned_job,
)
from app.api.ids import SEED_MAX, DatasetId, JobId
from app.api.routes import datasets as datasets_api
from app.api.routes import jobs as jobs_api
from app.api.specs import request_spec
from app.console import csrf
from app.console.diff import word_diff
from app.console.render import errors_of, render, see
from app.core.config import Settings
from app.core.guard import KEY_COOKIE
from app.core.keys import Principal, authenticate
from app.core.problems import Problem, field_errors, invalid
from app.storage.datasets import BadPageToken, DatasetStore
from app.storage.shards import job_output_dir, read_records, shard_files
from augmenters import Pipeline, Record, Variant, example_pipelines
from augmenters.registry import Registry

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE = 20  # records a page
FILTER_SCAN = 20_000  # records a text filter looks through at most
LENGTH_SAMPLE = 5_000  # records the length histogram is drawn from
PREVIEW_RECORDS = 8
MAX_SPEC_CHARS = 20_000
MAX_PASTED_CHARS = 4_000


# --- sign-in ------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def home() -> RedirectResponse:
    return see("/ui/datasets")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return render(request, "login.html", error=None)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str, Form(max_length=512)],
    csrf_field: Annotated[str, Form(alias="csrf", max_length=64)] = "",
) -> Response:
    csrf.check(request, csrf_field)
    if settings.api_keys and authenticate(key, settings.api_keys) is None:
        return render(request, "login.html", status=401, error="This key is not valid.")
    response = see("/ui/datasets")
    response.set_cookie(
        KEY_COOKIE, key, httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return response


# --- datasets -----------------------------------------------------------------------------


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    return _datasets(request, store, principal, page_token, errors=None, status=200)


def _datasets(
    request: Request,
    store: DatasetStore,
    principal: Principal,
    page_token: str | None,
    errors: list[dict[str, Any]] | None,
    status: int,
    detail: str | None = None,
) -> HTMLResponse:
    try:
        rows, token = store.page(50, page_token, principal.owner_filter())
    except BadPageToken:  # a stale or edited link: the first page
        rows, token = store.page(50, None, principal.owner_filter())
    return render(
        request,
        "datasets.html",
        status=status,
        datasets=rows,
        next_token=token,
        errors=errors,
        detail=detail,
    )


@router.post("/datasets", response_class=HTMLResponse)
async def upload(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    metrics: MetricsDep,
    principal: PrincipalDep,
    csrf_field: Annotated[str, Query(alias="csrf", max_length=64)] = "",
) -> Response:
    """The upload form posts the file here (multipart ``file``); the token rides in the query
    because the body streams to disk before any field of it is read."""
    csrf.check(request, csrf_field)
    try:
        created = await datasets_api.create_dataset(
            request, Response(), settings, store, metrics, principal
        )
    except Problem as problem:
        page = await run_in_threadpool(
            _datasets,
            request,
            store,
            principal,
            None,
            errors_of(problem),
            problem.status,
            problem.detail,
        )
        return page
    return see(f"/ui/datasets/{created.id}")


@router.get("/datasets/{dataset_id}", response_class=HTMLResponse)
def dataset_page(
    request: Request,
    dataset_id: DatasetId,
    store: StoreDep,
    jobs: JobsDep,
    principal: PrincipalDep,
    page: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    q: Annotated[str, Query(max_length=200)] = "",
    split: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    row = owned_dataset(store, dataset_id, principal)
    directory = store.directory(dataset_id)
    records, more = _record_page(directory, page, q.strip(), split or None)
    context: dict[str, Any] = {
        "dataset": datasets_api.Dataset.of(row),
        "records": records,
        "page": page,
        "more": more,
        "q": q,
        "split": split,
    }
    if request.headers.get("hx-target") == "records":
        return render(request, "_records.html", **context)
    lengths = [len(r.text) for r in islice(read_records(directory), LENGTH_SAMPLE)]
    return render(
        request,
        "dataset.html",
        histogram=_histogram(lengths),
        sampled=len(lengths),
        jobs=jobs.for_dataset(dataset_id),
        **context,
    )


def _record_page(directory: Path, page: int, q: str, split: str | None) -> tuple[list[Any], bool]:
    if not q:
        rows = list(read_records(directory, offset=page * PAGE, limit=PAGE + 1, split=split))
        return rows[:PAGE], len(rows) > PAGE
    needle = q.casefold()
    matches = (
        r
        for r in islice(read_records(directory, split=split), FILTER_SCAN)
        if needle in r.text.casefold()
    )
    rows = list(islice(matches, page * PAGE, (page + 1) * PAGE + 1))
    return rows[:PAGE], len(rows) > PAGE


def _histogram(lengths: list[int], bins: int = 12) -> list[dict[str, Any]]:
    """Bars of the text-length distribution, in characters."""
    if not lengths:
        return []
    low, high = min(lengths), max(lengths)
    width = max(1, -(-(high - low + 1) // bins))
    counts = Counter((n - low) // width for n in lengths)
    peak = max(counts.values())
    return [
        {
            "label": f"{low + i * width}-{low + (i + 1) * width - 1}",
            "count": counts.get(i, 0),
            "share": counts.get(i, 0) / peak,
        }
        for i in range(-(-(high - low + 1) // width))
    ]


# --- playground ---------------------------------------------------------------------------


@router.get("/playground", response_class=HTMLResponse)
def playground_page(
    request: Request,
    store: StoreDep,
    principal: PrincipalDep,
    dataset: Annotated[str, Query(max_length=64)] = "",
    example: Annotated[str, Query(max_length=100)] = "",
) -> HTMLResponse:
    examples = example_pipelines()
    chosen = examples.get(example) or examples.get("noise") or next(iter(examples.values()))
    rows, _ = store.page(50, None, principal.owner_filter())
    return render(
        request,
        "playground.html",
        examples=sorted(examples),
        example=example,
        spec_text=json.dumps(chosen.to_dict(), indent=2, ensure_ascii=False),
        datasets=rows,
        dataset=dataset,
        seed=0,
        variants=3,
        pasted="",
        preview=None,
        errors=None,
    )


@router.post("/playground", response_class=HTMLResponse)
async def preview(
    request: Request,
    store: StoreDep,
    registry: RegistryDep,
    settings: SettingsDep,
    principal: PrincipalDep,
    jobs: JobsDep,
    runner: RunnerDep,
    spec: Annotated[str, Form(max_length=MAX_SPEC_CHARS)],
    seed: Annotated[int, Form(ge=0, le=SEED_MAX)] = 0,
    variants: Annotated[int, Form(ge=1, le=8)] = 3,
    dataset: Annotated[str, Form(max_length=64)] = "",
    pasted: Annotated[str, Form(max_length=MAX_PASTED_CHARS)] = "",
    action: Annotated[str, Form(max_length=16)] = "preview",
    csrf_field: Annotated[str, Form(alias="csrf", max_length=64)] = "",
) -> Response:
    """Preview the spec on a few records (a dataset's first ones, or pasted lines), or with
    ``action=run`` start it as a job on the dataset."""
    csrf.check(request, csrf_field)
    form = {"spec_text": spec, "seed": seed, "variants": variants, "dataset": dataset}
    try:
        parsed = _parse_json(spec)
        if action == "run":
            if not dataset:
                raise invalid(
                    "dataset",
                    "choose a dataset to run a job on",
                    message="choose a dataset",
                    slug="invalid",
                    title="No dataset",
                )
            body = jobs_api.JobRequest.model_validate(
                {"spec": parsed, "seed": seed, "n_variants": variants}
            )
            job = await jobs_api.start_job(
                dataset, body, Response(), store, jobs, runner, registry, principal
            )
            return see(f"/ui/jobs/{job.id}")
        result = await run_in_threadpool(
            _preview,
            parsed,
            seed,
            variants,
            dataset,
            pasted,
            store,
            registry,
            settings,
            principal,
        )
    except Problem as problem:
        return await _playground_again(request, store, principal, form, pasted, errors_of(problem))
    except ValidationError as exc:
        errors = field_errors(exc.errors())
        return await _playground_again(request, store, principal, form, pasted, errors)
    if request.headers.get("hx-request"):
        return render(request, "_preview.html", preview=result)
    return await _playground_again(request, store, principal, form, pasted, None, result)


async def _playground_again(
    request: Request,
    store: DatasetStore,
    principal: Principal,
    form: dict[str, Any],
    pasted: str,
    errors: list[dict[str, Any]] | None,
    result: dict[str, Any] | None = None,
) -> HTMLResponse:
    rows, _ = await run_in_threadpool(store.page, 50, None, principal.owner_filter())
    template = "_preview.html" if request.headers.get("hx-request") else "playground.html"
    return render(
        request,
        template,
        status=422 if errors else 200,
        examples=sorted(example_pipelines()),
        example="",
        datasets=rows,
        pasted=pasted,
        preview=result,
        errors=errors,
        **form,
    )


def _parse_json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise invalid(
            "spec",
            "the spec is nested too deeply",
            message="nested too deeply",
            slug="invalid-json",
            title="Invalid JSON",
        ) from exc
    except json.JSONDecodeError as exc:
        raise Problem(
            422,
            "invalid-json",
            "Invalid JSON",
            f"the spec is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            errors=[
                {
                    "field": "spec",
                    "line": exc.lineno,
                    "message": f"{exc.msg} (line {exc.lineno}, column {exc.colno})",
                }
            ],
        ) from exc
    if not isinstance(value, dict):
        raise invalid(
            "spec",
            "the spec is a JSON object",
            message="must be a JSON object",
            slug="invalid-spec",
            title="Invalid pipeline spec",
        )
    return value


def _preview(
    raw: dict[str, Any],
    seed: int,
    variants: int,
    dataset: str,
    pasted: str,
    store: DatasetStore,
    registry: Registry,
    settings: Settings,
    principal: Principal,
) -> dict[str, Any]:
    """Runs in a worker thread: the spec is the user's, so is the work."""
    pipeline = Pipeline(request_spec(raw, registry), served=registry)
    pipeline.rejected = []
    if dataset:
        owned_dataset(store, dataset, principal)
        records = [
            Record(r.id, r.text, r.label)
            for r in read_records(store.directory(dataset), limit=PREVIEW_RECORDS)
        ]
    else:
        lines = [line.strip() for line in pasted.splitlines() if line.strip()]
        records = [Record(f"line {i + 1}", t, None) for i, t in enumerate(lines[:PREVIEW_RECORDS])]
    if not records:
        raise Problem(
            422,
            "invalid",
            "Nothing to preview",
            "choose a dataset or paste some text",
            errors=[{"field": "pasted", "message": "paste a text or choose a dataset"}],
        )
    deadline = time.monotonic() + settings.augment_deadline_s
    kept = []
    for variant in pipeline.augment(records, seed, variants, batch_size=64):
        kept.append(variant)
        if time.monotonic() > deadline:
            break
    originals = {r.id: r.text for r in records}
    by_record: dict[str, list[dict[str, Any]]] = {r.id: [] for r in records}
    shown = [(v, None) for v in kept] + [(v, reason) for v, reason in pipeline.rejected]
    for variant, dropped_by in shown:
        by_record[variant.record_id].append(
            _shown(originals[variant.record_id], variant, dropped_by, pipeline.scores)
        )
    return {
        "records": [
            {
                "id": r.id,
                "text": r.text,
                "label": r.label,
                "variants": sorted(by_record[r.id], key=lambda v: v["variant"]),
            }
            for r in records
        ],
        "dropped": dict(pipeline.dropped),
    }


def _shown(
    original: str,
    variant: Variant,
    dropped_by: str | None,
    scores: dict[tuple[str, int], dict[str, float]],
) -> dict[str, Any]:
    return {
        "variant": variant.variant,
        "segments": word_diff(original, variant.text),
        "ops": [a.op + (f" ({a.note})" if a.note else "") for a in variant.ops],
        "dropped_by": dropped_by,
        "scores": scores.get((variant.record_id, variant.variant), {}),
    }


# --- jobs ---------------------------------------------------------------------------------


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, jobs: JobsDep, principal: PrincipalDep) -> HTMLResponse:
    rows = jobs.recent(100, principal.owner_filter())
    return render(request, "jobs.html", jobs=[jobs_api.Job.of(r) for r in rows])


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(
    request: Request, job_id: JobId, jobs: JobsDep, store: StoreDep, principal: PrincipalDep
) -> HTMLResponse:
    job = jobs_api.Job.of(owned_job(jobs, job_id, principal))
    if request.headers.get("hx-target") == "progress":
        return render(request, "_progress.html", job=job)
    sample = _sample(store, job) if job.state == "succeeded" else []
    return render(request, "job.html", job=job, sample=sample)


def _sample(store: DatasetStore, job: jobs_api.Job, n: int = 10) -> list[dict[str, Any]]:
    """The first variants of a finished job, each beside its original."""
    import pyarrow.parquet as pq

    directory = store.directory(job.dataset_id)
    originals = {r.id: r.text for r in islice(read_records(directory), 2_000)}
    out: list[dict[str, Any]] = []
    for path in shard_files(job_output_dir(directory, job.id))[:2]:
        table = pq.read_table(path).slice(0, n - len(out)).to_pylist()
        for row in table:
            original = originals.get(row["id"], "")
            out.append(
                {
                    "id": row["id"],
                    "variant": row["variant"],
                    "segments": word_diff(original, row["text"]),
                }
            )
        if len(out) >= n:
            break
    return out


@router.post("/jobs/{job_id}/cancel", response_class=HTMLResponse)
def cancel(
    request: Request,
    job_id: JobId,
    jobs: JobsDep,
    runner: RunnerDep,
    metrics: MetricsDep,
    principal: PrincipalDep,
    csrf_field: Annotated[str, Form(alias="csrf", max_length=64)] = "",
) -> Response:
    csrf.check(request, csrf_field)
    try:
        jobs_api.cancel_job(job_id, jobs, runner, metrics, principal)
    except Problem as problem:
        if problem.status != 409:  # already finished: the page shows how
            raise
    return see(f"/ui/jobs/{job_id}")
