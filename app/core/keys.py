"""API keys: named, with a role, stored as SHA-256 digests (a leaked configuration or database
leaks no key). ``antifit keys new NAME`` prints a fresh key and the entry to configure."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["read-only", "read-write", "admin"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(BaseModel):
    """One configured key: ``{"name", "role", "sha256"}``; ``{"name", "role", "key"}`` or a bare
    string (an admin key named after its digest) are hashed on load, for quick setups."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
    role: Role = "read-write"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="before")
    @classmethod
    def _hash_plain(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"key": value, "role": "admin", "name": f"key-{digest(value)[:8]}"}
        if isinstance(value, dict) and "key" in value:
            value = dict(value)
            plain = value.pop("key")
            if not isinstance(plain, str) or not plain.strip():
                raise ValueError("an API key must not be empty")
            if len(plain) < 16:
                raise ValueError("an API key needs at least 16 characters")
            value["sha256"] = digest(plain)
        return value


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a key's name and role, or the anonymous user of a keyless server
    (who may do everything: a keyless server listens on loopback only unless told otherwise)."""

    name: str
    role: Role

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    def may(self, method: str) -> bool:
        return self.role != "read-only" or method.upper() in SAFE_METHODS

    def owns(self, owner: str | None) -> bool:
        return self.admin or owner == self.name

    def owner_filter(self) -> str | None:
        """Whose datasets and jobs a listing shows: everyone's (None) to an admin."""
        return None if self.admin else self.name


ANONYMOUS = Principal("anonymous", "admin")


def check_unique(keys: list[ApiKey]) -> list[ApiKey]:
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise ValueError("API key names must be unique")
    if len({k.sha256 for k in keys}) != len(keys):
        raise ValueError("the same API key is configured twice")
    return keys


def presented_key(headers: dict[str, str]) -> str | None:
    """The key a request carries: ``X-API-Key``, or ``Authorization: Bearer``."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return headers.get("x-api-key")


def authenticate(given: str | None, keys: list[ApiKey]) -> Principal | None:
    """The key's principal, or None. Every configured digest is compared (constant time, no
    early exit), so the time taken does not tell which key nearly matched."""
    if given is None:
        return None
    presented = digest(given)
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(presented, key.sha256):
            found = key
    return Principal(found.name, found.role) if found is not None else None


def new_key(name: str, role: Role) -> tuple[str, dict[str, str]]:
    """A fresh random key and the configuration entry that accepts it."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", name):
        raise ValueError(f"{name!r} is not a key name (letters, digits, '.', '_', '@', '-')")
    key = f"af_{secrets.token_urlsafe(32)}"
    return key, {"name": name, "role": role, "sha256": digest(key)}
