"""/v1/augment (synchronous, small batches) and /v1/augmenters (the catalogue)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.deps import SettingsDep
from app.api.specs import request_spec
from app.core.problems import invalid
from augmenters import Pipeline, example_pipelines, json_schema, step_schemas
from augmenters.spec import COMPOSITIONS, FILTERS

router = APIRouter(prefix="/v1", tags=["augment"])


class AugmentRequest(BaseModel):
    # validated record by record by the library (errors name records[i].field)
    records: list[Any] = Field(description="{id, text, label} objects or texts")
    spec: dict[str, Any] = Field(description="a pipeline spec (see GET /v1/augmenters)")
    seed: int = 0
    n_variants: int = Field(default=1, ge=0, le=64)


class AugmentResponse(BaseModel):
    variants: list[dict[str, Any]]
    dropped: dict[str, int] = Field(description="variants dropped, by filter")


@router.post("/augment", response_model=AugmentResponse)
async def augment(body: AugmentRequest, settings: SettingsDep) -> JSONResponse:
    """Augment up to ``max_sync_records`` records now; larger sets are jobs."""
    if len(body.records) > settings.max_sync_records:
        raise invalid(
            "records",
            f"{len(body.records)} records; the synchronous limit is {settings.max_sync_records}: "
            "upload a dataset and start a job instead",
            message=f"at most {settings.max_sync_records}",
            slug="too-many-records",
            title="Too many records",
            status=413,
        )
    pipeline = Pipeline(request_spec(body.spec))

    def run() -> list[dict[str, Any]]:
        return [v.to_dict() for v in pipeline.augment(body.records, body.seed, body.n_variants)]

    variants = await run_in_threadpool(run)
    # built by the library already: returned as is, without a second validation pass
    return JSONResponse({"variants": variants, "dropped": dict(pipeline.dropped)})


@router.get("/augmenters")
def catalogue() -> dict[str, Any]:
    """Every augmenter, composition and filter with its JSON Schema, and example pipelines."""
    schemas = step_schemas()
    return {
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
