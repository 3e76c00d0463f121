"""The OpenAPI document, exact: every error a route answers is documented as problem+json, and
request bodies carry the pipeline spec's schema as this server accepts it — registered resource
names only, no paths (so generated clients and fuzzers send what it takes)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from app.core.problems import MEDIA_TYPE
from augmenters.registry import RESOURCE_MARK, Registry
from augmenters.spec import PipelineSpec

_DESCRIPTIONS = {
    400: "Malformed request (a body that is not JSON, bad multipart framing)",
    401: "No valid API key",
    403: "The key's role does not allow this",
    404: "No such dataset or job (or not this key's)",
    409: "Not in a state that allows this",
    413: "A body, upload, text, record count or output over its limit",
    422: "Invalid request: what and where in `errors`",
    429: "Too many streams at once; retry after `Retry-After` seconds",
    503: "Deadline exceeded, or a resource is not installed",
    507: "The server's storage is full; nothing was stored",
}


class ProblemDetails(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="urn:antifit:problem:<slug>")
    title: str
    status: int
    detail: str
    instance: str
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="{field, message} (uploads: {line, field, message}) each"
    )


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: these statuses, as problem+json."""
    return {
        code: {
            "description": _DESCRIPTIONS[code],
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}},
        }
        for code in codes
    }


V1 = (400, 401, 403, 413, 422, 507)  # any /v1 route: body, key, role, size, fields, disk


def served_spec_schemas(registry: Registry) -> dict[str, Any]:
    """The pipeline spec's JSON Schemas (components) as this server accepts specs."""
    schema = PipelineSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = schema.pop("$defs")
    components["PipelineSpec"] = schema
    names = {
        "model": sorted(registry.models()),
        "lexicon": sorted(registry.lexicons()),
        "words": sorted(registry.word_lists()),
    }

    def served(node: Any) -> Any:
        if isinstance(node, list):
            return [served(n) for n in node]
        if not isinstance(node, dict):
            return node
        kind = node.get(RESOURCE_MARK)
        if kind is not None:
            known = names.get(kind, [])
            if not known:  # nothing registered: no value is accepted here
                return {"not": {}, "description": f"no {kind} is registered on this server"}
            return {"type": "string", "enum": known, "description": f"a registered {kind}"}
        out = {k: served(v) for k, v in node.items()}
        if isinstance(out.get("properties"), dict):  # a server path is no field here
            original = node["properties"]
            out["properties"] = {
                k: v for k, v in out["properties"].items() if not _is_path(original[k])
            }
        return out

    served_components: dict[str, Any] = served(components)
    return served_components


def _is_path(schema: dict[str, Any]) -> bool:
    """A path field's schema, required or optional (``{"anyOf": [path, null]}``)."""
    options = [schema, *schema.get("anyOf", [])]
    return any(option.get(RESOURCE_MARK) == "path" for option in options)


def install(app: FastAPI, registry: Registry) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(served_spec_schemas(registry))
            schemas["ProblemDetails"] = ProblemDetails.model_json_schema()
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
