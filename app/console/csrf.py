"""Cross-site request forgery protection for the console's forms: double-submit tokens.

Each browser gets a random token in a ``SameSite=Strict`` cookie; every form that changes
state sends it back in a hidden field (htmx requests in a header). A page on another site can
make the browser post, but can neither read the cookie nor guess the token, so its post fails.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from app.core.problems import Problem

COOKIE = "antifit_csrf"
FIELD = "csrf"
HEADER = "x-csrf-token"


def token(request: Request) -> str:
    """This browser's token (a new one if it has none yet; ``remember`` sets it)."""
    existing = request.cookies.get(COOKIE)
    if existing and len(existing) == 43:
        return existing
    fresh: str = getattr(request.state, "csrf_new", "") or secrets.token_urlsafe(32)
    request.state.csrf_new = fresh
    return fresh


def remember(request: Request, response: Response) -> None:
    fresh = getattr(request.state, "csrf_new", None)
    if fresh:
        response.set_cookie(
            COOKIE, fresh, httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )


def check(request: Request, sent: str | None) -> None:
    """403 unless ``sent`` (form field, or the header) matches the browser's cookie."""
    expected = request.cookies.get(COOKIE)
    given = sent or request.headers.get(HEADER)
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise Problem(
            403,
            "csrf",
            "Form expired",
            "this form's anti-forgery token is missing or stale: reload the page and send again",
        )
