"""Pipeline specs arriving in request bodies: errors name the field from the body's root."""

from __future__ import annotations

from typing import Any

from app.core.problems import Problem
from augmenters import PipelineSpec, SpecError, parse_spec
from augmenters.registry import Registry


def request_spec(spec: dict[str, Any], registry: Registry, where: str = "spec") -> PipelineSpec:
    """Validate a spec that came over the network: it names registered resources, no paths.
    Call it off the event loop (it compiles patterns and reads the registry folder)."""
    try:
        return parse_spec(spec, served=registry)
    except SpecError as exc:
        errors = [{**d, "field": f"{where}.{d['field']}".rstrip(".")} for d in exc.details]
        raise Problem(
            422, "invalid-spec", "Invalid pipeline spec", f"{where}.{exc}", errors=errors
        ) from exc
