"""The door of /v1 and of the console (/ui): who is asking, may they, and how large a body they
may send — decided from the headers alone, before a byte of the body is read (ASGI middleware).
The console's browser carries its key in a cookie set by its sign-in page."""

from __future__ import annotations

from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.keys import ANONYMOUS, authenticate, presented_key
from app.core.problems import Problem, send_problem

KEY_COOKIE = "antifit_key"
UPLOADS = ("/v1/datasets", "/ui/datasets")
OPEN_CONSOLE_PATHS = ("/ui/login", "/ui/static/")


def is_upload(scope: Scope) -> bool:
    """Dataset uploads stream to disk under their own cap (app/api/upload.py)."""
    return bool(scope["method"] == "POST" and scope["path"].rstrip("/") in UPLOADS)


def capped(path: str) -> bool:
    """Paths whose request bodies are read: the API and the console's forms."""
    return path.startswith(("/v1", "/ui"))


def guarded(path: str) -> bool:
    """Paths that need a key when the server has keys: all of those but the console's sign-in
    page and static files."""
    return capped(path) and not path.startswith(OPEN_CONSOLE_PATHS)


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not capped(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        console = scope["path"].startswith("/ui")
        principal = ANONYMOUS
        if self.settings.api_keys and guarded(scope["path"]):
            given = presented_key(headers)
            if given is None and console:
                given = cookie_parser(headers.get("cookie", "")).get(KEY_COOKIE)
            found = authenticate(given, self.settings.api_keys)
            if found is None:
                if console and scope["method"] == "GET":
                    await _redirect(send, "/ui/login")
                    return
                await send_problem(scope, send, _unauthorized())
                return
            principal = found
        if not principal.may(scope["method"]):
            await send_problem(scope, send, _forbidden(principal.name, scope["method"]))
            return
        scope.setdefault("state", {})["principal"] = principal
        if is_upload(scope):
            await self.app(scope, receive, send)
            return
        limit = self.settings.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await send_problem(scope, send, too_large(limit))
            return
        body = await _read_capped(receive, limit)
        if body is None:
            await send_problem(scope, send, too_large(limit))
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_capped(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes ``limit`` (the rest is never read)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the app sees an empty body and then the disconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _redirect(send: Send, location: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [(b"location", location.encode())],
        }
    )
    await send({"type": "http.response.body", "body": b""})


def too_large(limit: int, *, upload: bool = False) -> Problem:
    what = "upload" if upload else "request body"
    return Problem(
        413,
        f"{'upload' if upload else 'body'}-too-large",
        f"{what.capitalize()} too large",
        f"the {what} exceeds the limit of {limit} bytes",
        limit=limit,
    )


def _unauthorized() -> Problem:
    return Problem(
        401,
        "unauthorized",
        "Unauthorized",
        "a valid API key is required (X-API-Key or Authorization: Bearer)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _forbidden(name: str, method: str) -> Problem:
    return Problem(
        403,
        "forbidden",
        "Forbidden",
        f"key {name!r} is read-only: {method} is not allowed",
    )
