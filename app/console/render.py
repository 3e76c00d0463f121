"""Rendering the console's templates: every page gets the browser's anti-forgery token and
who is asking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from app.console import csrf
from app.core.problems import Problem

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("csrf_token", csrf.token(request))
    context.setdefault("principal", getattr(request.state, "principal", None))
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    csrf.remember(request, response)
    return response


def see(url: str) -> RedirectResponse:
    """303: after a form's post, the browser fetches the result with a GET."""
    return RedirectResponse(url, status_code=303)


def problem_page(request: Request, problem: Problem) -> HTMLResponse:
    """An error of a console page, as a page (the API answers problem+json)."""
    response = render(request, "error.html", status=problem.status, problem=problem)
    for name, value in (problem.headers or {}).items():
        response.headers[name] = value
    return response


def errors_of(problem: Problem) -> list[dict[str, Any]]:
    return problem.errors or [{"message": problem.detail}]
