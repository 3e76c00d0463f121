"""RFC 9457 problem details: one exception type and the handlers that render every error."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import Message, Scope, Send

from augmenters.errors import AugmentError, ResourceMissing, SpecError

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("antifit.api")


class Problem(Exception):
    """An error the API reports as problem+json. ``errors`` lists {field/line, message}."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers
        self.extra = extra

    def response(self, instance: str) -> JSONResponse:
        return JSONResponse(
            self.body(instance),
            status_code=self.status,
            media_type=MEDIA_TYPE,
            headers=self.headers,
        )

    def body(self, instance: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:antifit:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


def invalid(
    field: str,
    detail: str,
    *,
    message: str | None = None,
    slug: str = "invalid-request",
    title: str = "Invalid request",
    status: int = 422,
) -> Problem:
    """A problem with one field of the request (``message`` defaults to ``detail``)."""
    return Problem(
        status, slug, title, detail, errors=[{"field": field, "message": message or detail}]
    )


def not_found(what: str, ident: str) -> Problem:
    return Problem(404, "not-found", f"{what} not found", f"no {what.lower()} with id {ident!r}")


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's validation errors as problem+json ``errors``: ``{field, message}``."""
    return [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in errors]


def _response(problem: Problem, request: Request) -> Response:
    """problem+json; a console page (/ui) gets the console's HTML page of it instead."""
    page: Callable[[Request, Problem], Response] | None = getattr(
        request.app.state, "problem_page", None
    )
    if page is not None and request.url.path.startswith("/ui/"):
        return page(request, problem)
    return problem.response(request.url.path)


async def send_problem(scope: Scope, send: Send, problem: Problem) -> None:
    """Answer from ASGI middleware, outside the app's exception handlers."""
    await problem.response(scope["path"])(scope, _no_body, send)


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


def from_augment_error(exc: AugmentError) -> Problem:
    if isinstance(exc, ResourceMissing):
        return Problem(503, "resource-missing", "Resource not installed", str(exc))
    slug, title = (
        ("invalid-spec", "Invalid pipeline spec")
        if isinstance(exc, SpecError)
        else ("invalid-input", "Invalid input")
    )
    return Problem(422, slug, title, str(exc), errors=exc.details)


def _allowed(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.routes:
        # PARTIAL: the path matches, the method does not; FULL: both
        if isinstance(route, Route) and route.methods:
            if route.matches(request.scope)[0] is not Match.NONE:
                methods |= route.methods
    return sorted(methods)


def install(app: FastAPI) -> None:
    """Route every error through problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return _response(exc, request)

    @app.exception_handler(AugmentError)
    async def _augment(request: Request, exc: AugmentError) -> Response:
        return _response(from_augment_error(exc), request)

    @app.exception_handler(OSError)
    async def _os(request: Request, exc: OSError) -> Response:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            log.error("unhandled %s on %s", type(exc).__name__, request.url.path, exc_info=exc)
            problem = Problem(500, "internal-error", "Internal error", "see the server log")
            return _response(problem, request)
        log.error("storage full on %s: %s", request.url.path, exc)
        problem = Problem(
            507,
            "insufficient-storage",
            "Insufficient storage",
            "the server's storage is full; nothing was stored — try again once space is freed",
        )
        return _response(problem, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = field_errors(exc.errors())
        first = errors[0] if errors else {"field": "", "message": "invalid request"}
        problem = Problem(
            422,
            "invalid-request",
            "Invalid request",
            f"{first['field']}: {first['message']}",
            errors=errors,
        )
        return _response(problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        slug = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}.get(
            exc.status_code, "http-error"
        )
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:  # every method of every route on this path, not the first's
            headers["Allow"] = ", ".join(_allowed(request))
        problem = Problem(exc.status_code, slug, str(exc.detail), str(exc.detail), headers=headers)
        return _response(problem, request)
