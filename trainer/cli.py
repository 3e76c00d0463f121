"""``antifit recommend``: a regularization preset for a scenario, and why."""

from __future__ import annotations

import argparse
import json
from typing import get_args

from trainer.config import Scenario, recommend


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("recommend", help="suggest a regularization preset for a scenario")
    p.add_argument("--scenario", required=True, choices=get_args(Scenario))
    p.add_argument("--auxiliary-dataset", help="general-domain dataset id (cross-domain)")
    p.add_argument("--json", action="store_true", help="print the configuration as JSON only")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    name, config, why = recommend(args.scenario, args.auxiliary_dataset)
    if args.json:
        print(json.dumps({"preset": name, "regularization": config.model_dump()}, indent=2))
        return 0
    print(f"preset: {name}\nwhy: {why}\nregularization:")
    print(json.dumps(config.model_dump(exclude_defaults=True), indent=2))
    return 0
