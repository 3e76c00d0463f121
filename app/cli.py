"""``antifit serve``: the service under uvicorn; ``antifit keys new``: an API key to configure."""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the augmentation service (settings: ANTIFIT_* env)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log-level", default="info")
    p.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="shut down when the process that started this one is gone",
    )
    p.set_defaults(run=run)
    k = sub.add_parser("keys", help="API keys for the service")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    new = ksub.add_parser("new", help="print a fresh key and its ANTIFIT_API_KEYS entry")
    new.add_argument("name")
    new.add_argument("--role", choices=["read-only", "read-write", "admin"], default="read-write")
    new.set_defaults(run=run_new_key)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposure_error(host: str, keys: int, allow_anonymous: bool) -> str | None:
    """Why the service must not start on ``host``, or None."""
    if keys or allow_anonymous or is_loopback(host):
        return None
    return (
        f"refusing to listen on {host} without API keys: anyone who reaches it could read and "
        "change every dataset. Set ANTIFIT_API_KEYS (antifit keys new NAME prints one), or "
        "ANTIFIT_ALLOW_ANONYMOUS=true to serve without keys anyway"
    )


def run(args: argparse.Namespace) -> int:
    import os

    import uvicorn
    from pydantic import ValidationError

    from app.core.config import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        print(f"antifit serve: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    refusal = exposure_error(args.host, len(settings.api_keys), settings.allow_anonymous)
    if refusal:
        print(f"antifit serve: {refusal}", file=sys.stderr)
        return 2
    who = (
        f"{len(settings.api_keys)} API key(s)"
        if settings.api_keys
        else "no API keys: anyone who can reach it may do anything"
    )
    print(f"antifit serve: http://{args.host}:{args.port}, {who}", file=sys.stderr)

    if args.exit_with_parent:
        from app.core.lifeline import exit_with_parent

        exit_with_parent(os.getppid(), graceful=True)

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
    )
    return 0


def run_new_key(args: argparse.Namespace) -> int:
    from app.core.keys import new_key

    try:
        key, entry = new_key(args.name, args.role)
    except ValueError as exc:
        print(f"antifit keys: {exc}", file=sys.stderr)
        return 2
    print(f"key (give it to {args.name}; it is shown once): {key}")
    print(f"ANTIFIT_API_KEYS entry (the server keeps only this digest): {json.dumps(entry)}")
    return 0
