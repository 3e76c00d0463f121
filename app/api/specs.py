"""Pipeline specs arriving in request bodies: errors name the field from the body's root."""

from __future__ import annotations

from typing import Any

from app.core.problems import Problem
from augmenters import PipelineSpec, SpecError, parse_spec


def request_spec(spec: dict[str, Any], where: str = "spec") -> PipelineSpec:
    try:
        return parse_spec(spec)
    except SpecError as exc:
        errors = [{**d, "field": f"{where}.{d['field']}".rstrip(".")} for d in exc.details]
        raise Problem(
            422, "invalid-spec", "Invalid pipeline spec", f"{where}.{exc}", errors=errors
        ) from exc
