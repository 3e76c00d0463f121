"""Opaque tokens (page tokens, resume tokens): JSON in URL-safe base64, HMAC-signed with the
server's secret, so a client can neither forge nor tamper with one (a bad token is a 400/422,
never another stream or a 500)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

MAX_TOKEN_CHARS = 2_048
_MAC_BYTES = 16


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the token secret needs at least 16 bytes")
        self._key = hashlib.sha256(b"antifit-tokens\0" + secret).digest()

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, value: Any) -> str:
        payload = json.dumps(value, separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def decode(self, token: str) -> Any:
        """The value a token holds; ValueError when this server did not issue it."""
        try:
            if len(token) > MAX_TOKEN_CHARS:
                raise ValueError("too long")
            body, _, mac = token.partition(".")
            payload = _unb64(body)
            if not hmac.compare_digest(_unb64(mac), self._mac(payload)):
                raise ValueError("bad signature")
            return json.loads(payload)
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError("not a token this server issued") from exc


def server_secret(configured: str | None, data_dir: Path) -> bytes:
    """``ANTIFIT_SECRET`` if set (replicas share it), else one generated once and kept in the
    data directory, readable by the server's user alone."""
    if configured:
        return configured.encode()
    path = data_dir / "secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    fresh = secrets.token_hex(32).encode()
    tmp = path.with_name(f".secret.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(fresh)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # first writer wins when two start together
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()
