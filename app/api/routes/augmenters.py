"""/v1/augment (synchronous, small batches) and /v1/augmenters (the catalogue)."""

from __future__ import annotations

import asyncio
import json
import time
from functools import partial
from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import RegistryDep, SettingsDep
from app.api.ids import SEED_MAX, SpecBody
from app.api.openapi import V1, problems
from app.api.specs import request_spec
from app.core.config import Settings
from app.core.problems import Problem, invalid
from augmenters import Pipeline, Record, example_pipelines, json_schema, step_schemas
from augmenters.registry import Registry
from augmenters.spec import COMPOSITIONS, FILTERS

router = APIRouter(prefix="/v1", tags=["augment"], responses=problems(*V1))


class AugmentRequest(BaseModel):
    model_config = ConfigDict(strict=True)  # no true for 1, as the schema says
    # validated record by record off the event loop (errors name records[i].field)
    records: list[Any] = Field(description="{id, text, label} objects or texts")
    spec: SpecBody
    seed: int = Field(default=0, ge=0, le=SEED_MAX)
    n_variants: int = Field(default=1, ge=0, le=64)


class AugmentResponse(BaseModel):
    variants: list[dict[str, Any]]
    dropped: dict[str, int] = Field(description="variants dropped, by filter")


@router.post("/augment", response_model=AugmentResponse, responses=problems(503))
async def augment(body: AugmentRequest, settings: SettingsDep, registry: RegistryDep) -> Response:
    """Augment up to ``max_sync_records`` records (and ``max_sync_variants`` variants) now,
    within ``augment_deadline_s``; larger sets are jobs."""
    wanted = len(body.records) * body.n_variants
    if len(body.records) > settings.max_sync_records or wanted > settings.max_sync_variants:
        raise invalid(
            "records",
            f"{len(body.records)} records x {body.n_variants} variants; the synchronous limits "
            f"are {settings.max_sync_records} records and {settings.max_sync_variants} variants: "
            "upload a dataset and start a job instead",
            message=f"at most {settings.max_sync_records} records",
            slug="too-many-records",
            title="Too many records",
            status=413,
        )
    deadline = time.monotonic() + settings.augment_deadline_s
    work = partial(_augment, body, settings, registry, deadline)
    try:
        content = await asyncio.wait_for(
            run_in_threadpool(work), timeout=settings.augment_deadline_s + 1
        )
    except TimeoutError as exc:  # the worker thread stops at its next deadline check
        raise _too_slow(settings.augment_deadline_s) from exc
    return Response(content, media_type="application/json")


def _augment(
    body: AugmentRequest, settings: Settings, registry: Registry, deadline: float
) -> bytes:
    """Everything a request controls runs here, in a worker thread: spec validation, record
    checks, augmentation (checked against the deadline after every batch) and rendering."""
    pipeline = Pipeline(request_spec(body.spec, registry), served=registry)
    records = [_record(value, i, settings.max_text_chars) for i, value in enumerate(body.records)]
    variants: list[dict[str, Any]] = []
    size = 0
    for variant in pipeline.augment(records, body.seed, body.n_variants, batch_size=64):
        if time.monotonic() > deadline:
            raise _too_slow(settings.augment_deadline_s)
        row = variant.to_dict()
        size += len(variant.text) * 4 + 256  # an upper bound of its JSON, checked below
        if size > settings.max_sync_output_bytes:
            raise _too_much(settings.max_sync_output_bytes)
        variants.append(row)
    content = json.dumps(
        {"variants": variants, "dropped": dict(pipeline.dropped)}, ensure_ascii=False
    ).encode()
    if len(content) > settings.max_sync_output_bytes:
        raise _too_much(settings.max_sync_output_bytes)
    return content


def _record(value: Any, index: int, max_chars: int) -> Record:
    record = Record.coerce(value, index)
    if len(record.text) > max_chars:
        raise invalid(
            f"records[{index}].text",
            f"records[{index}].text has {len(record.text)} characters; the limit is {max_chars}",
            message=f"at most {max_chars} characters",
            slug="text-too-long",
            title="Text too long",
            status=413,
        )
    return record


def _too_slow(seconds: float) -> Problem:
    return Problem(
        503,
        "deadline-exceeded",
        "Deadline exceeded",
        f"augmenting took longer than {seconds:g} s: send fewer records or start a job",
        headers={"Retry-After": "1"},
    )


def _too_much(limit: int) -> Problem:
    return Problem(
        413,
        "output-too-large",
        "Output too large",
        f"the variants would exceed {limit} bytes: send fewer records or variants, or start a job",
        limit=limit,
    )


@router.get("/augmenters")
def catalogue(registry: RegistryDep) -> dict[str, Any]:
    """Every augmenter, composition and filter with its JSON Schema, example pipelines, and
    the named lexicons and models specs may use here."""
    schemas = step_schemas()
    return {
        "resources": {
            "lexicons": sorted(registry.lexicons()),
            "models": sorted(registry.models()),
            "words": sorted(registry.word_lists()),
        },
        "augmenters": [
            {"type": t, "schema": s}
            for t, s in schemas.items()
            if t not in FILTERS and t not in COMPOSITIONS
        ],
        "compositions": [{"type": t, "schema": schemas[t]} for t in COMPOSITIONS],
        "filters": [{"type": t, "schema": schemas[t]} for t in FILTERS],
        "spec_schema": json_schema(),
        "examples": {name: spec.to_dict() for name, spec in example_pipelines().items()},
    }
