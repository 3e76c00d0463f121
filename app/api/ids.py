"""Path and query parameter types shared by the routes, bounded so that no request can send an
id, seed or count the storage layer cannot hold (a 422 naming it, never a 500)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import WithJsonSchema

SEED_MAX = 2**31 - 1  # what an INTEGER column holds on every database here (PostgreSQL: 32 bits)

# an id that is not one of ours is a 404 like any unknown id; only the length is bounded here
DatasetId = Annotated[str, Path(max_length=64, description="a dataset id (32 hex digits)")]
JobId = Annotated[str, Path(max_length=64, description="a job id (32 hex digits)")]
RunId = Annotated[str, Path(max_length=64, description="a training run's id (32 hex digits)")]
MAX_WORLD = 65_536  # ranks of one distributed run

# validated off the event loop against the server's registry (app/api/specs.py); documented
# as the schema of what this server accepts (app/api/openapi.py)
SpecBody = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "allOf": [{"$ref": "#/components/schemas/PipelineSpec"}],
            "description": "a pipeline spec (GET /v1/augmenters lists steps and resources)",
        }
    ),
]
