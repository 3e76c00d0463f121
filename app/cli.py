"""``antifit serve``: the service under uvicorn."""

from __future__ import annotations

import argparse


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


def run(args: argparse.Namespace) -> int:
    import os

    import uvicorn

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
