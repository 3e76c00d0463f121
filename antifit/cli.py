"""The ``antifit`` command: one subcommand per job, each defined beside the code it runs."""

from __future__ import annotations

import argparse
import sys

from antifit import demo
from app import cli as serve_cli
from augmenters import cli as augment_cli
from augmenters.errors import AugmentError
from trainer import cli as train_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="antifit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    augment_cli.add_parser(sub)
    serve_cli.add_parser(sub)
    train_cli.add_parser(sub)
    demo.add_parser(sub)
    res = sub.add_parser("resources", help="prepare and check the offline resources")
    res.add_argument("--prepare", action="store_true", help="exit 1 unless all are usable")
    res.set_defaults(run=_resources)
    return parser


def _resources(args: argparse.Namespace) -> int:
    from augmenters.resources import main

    return main(["--prepare"] if args.prepare else [])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except AugmentError as exc:
        print(f"antifit {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
