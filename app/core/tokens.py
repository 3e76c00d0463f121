"""Opaque tokens (page tokens, resume tokens): JSON in URL-safe base64 without padding."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def encode(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str) -> Any:
    """The value a token holds; ValueError when it is not a token of ours."""
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a token: {token!r}") from exc
