"""``antifit demo``: plain fine-tuning next to a preset on a small, messy split of real data,
judged on a test split neither has seen (about 5 minutes on 2 CPU cores).

It draws a small split from a real corpus the project does not ship (antifit/corpora.py:
Debian's fortunes by default), with a quarter of the training labels deliberately wrong as in
messy real data, uploads it to the service (the one at ``--service`` if it answers, else one
started for the demo on a temporary directory), and trains ``none`` and the preset side by
side with ``antifit sweep``'s machinery. It prints what each model does on the held-out test
split and draws ``demo.png``: the training and validation loss of both runs, and their
validation accuracy."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, get_args

import httpx

from antifit.corpora import SOURCES, make_split
from trainer.config import PresetName

FIGURE = "demo.png"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser(
        "demo",
        help="plain fine-tuning next to a preset on real data, judged on held-out texts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--corpus", choices=sorted(SOURCES), default="fortunes")
    d.add_argument(
        "--preset",
        default="enhanced",
        choices=[p for p in get_args(PresetName) if p != "none"],
        help="the preset shown next to none",
    )
    d.add_argument("--service", default="http://127.0.0.1:8000")
    d.add_argument("--api-key")
    d.add_argument("--output-dir", type=Path, default=Path("runs/demo"))
    d.add_argument("--per-class", type=int, default=16, help="training examples per class")
    d.add_argument("--noise", type=float, default=0.25, help="share of training labels flipped")
    d.add_argument("--epochs", type=int, default=20)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--model", help="HF model directory (default: the packaged MiniLM)")
    d.set_defaults(run=run_demo)


def _reachable(base: str, api_key: str | None) -> bool:
    headers = {"X-API-Key": api_key} if api_key else {}
    try:
        return httpx.get(f"{base}/readyz", headers=headers, timeout=3).status_code == 200
    except httpx.TransportError:
        return False


def run_demo(args: argparse.Namespace) -> int:
    from augmenters.resources import cache_dir

    def log(message: str) -> None:
        print(f"[antifit demo] {message}", file=sys.stderr, flush=True)

    if not 0.0 <= args.noise < 1.0 or args.per_class < 2 or args.epochs < 1:
        print(
            "antifit demo: error: --noise must lie in [0, 1), --per-class >= 2, --epochs >= 1",
            file=sys.stderr,
        )
        return 2
    try:
        texts = SOURCES[args.corpus](cache_dir() / "corpora")
    except (OSError, ValueError) as exc:
        print(f"antifit demo: error: {exc}", file=sys.stderr)
        return 2
    split = make_split(texts, args.seed, args.per_class, args.per_class, 100, args.noise)
    log(
        f"{args.corpus}: {len(split.of('train'))} training texts ({len(split.flipped)} with a "
        f"wrong label), {len(split.of('validation'))} validation, {len(split.of('test'))} test"
    )
    with ExitStack() as stack:
        base = args.service
        if not _reachable(base, args.api_key):
            from app.local_server import running

            data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            base, _ = stack.enter_context(running(data))
            log(f"no service at {args.service}: started one at {base}")
        headers = {"X-API-Key": args.api_key} if args.api_key else {}
        body = "".join(json.dumps(r) + "\n" for r in split.records)
        response = httpx.post(
            f"{base}/v1/datasets",
            params={"name": f"demo-{args.corpus}", "id_field": "id", "split_field": "split"},
            content=body,
            headers={**headers, "content-type": "application/x-ndjson"},
            timeout=120,
        )
        if response.status_code != 201:
            print(f"antifit demo: the upload failed: {response.text}", file=sys.stderr)
            return 2
        dataset = response.json()["id"]
        result = _train(args, base, dataset, log)
    _print(result, args)
    return 0


def _train(
    args: argparse.Namespace, base: str, dataset: str, log: Any
) -> dict[str, dict[str, Any]]:
    from trainer.report import plot_runs, read_jsonl
    from trainer.sweep import candidate_configs, run_sweep

    common = {
        "service": base,
        "api_key": args.api_key,
        "dataset": dataset,
        "model": args.model,
        "epochs": args.epochs,
        "learning_rate": 5e-5,
        "max_length": 64,
        "seed": args.seed,
    }
    candidates = {"none": {"preset": "none"}, args.preset: {"preset": args.preset}}
    configs = candidate_configs(common, candidates, args.output_dir)
    run_sweep(configs, args.output_dir, on_log=log)
    runs = {}
    for name, config in configs.items():
        out = Path(config.output_dir)
        runs[name] = {
            "report": json.loads((out / "report.json").read_text()),
            "rows": read_jsonl(out / "metrics.jsonl"),
        }
    curves = {name: run["rows"] for name, run in runs.items()}
    plot_runs(curves, args.output_dir / FIGURE, training=True)
    return runs


def _print(runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{'':28s}" + "".join(f"{name:>14s}" for name in runs))
    lines: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("training loss (end)", lambda r: r["rows"][-1]["train_loss"]),
        ("validation loss: lowest", lambda r: min(row["val_loss"] for row in r["rows"])),
        ("validation loss: end", lambda r: r["rows"][-1]["val_loss"]),
        ("saved model: step", lambda r: r["report"]["final"]["step"]),
        ("test accuracy", lambda r: r["report"]["test"]["test_accuracy"]),
        ("test macro-F1", lambda r: r["report"]["test"]["test_macro_f1"]),
        ("test ECE", lambda r: r["report"]["test"]["test_ece"]),
    ]
    for label, value in lines:
        cells = "".join(
            f"{v:14.3f}" if isinstance(v := value(run), float) else f"{v:14d}"
            for run in runs.values()
        )
        print(f"{label:28s}{cells}")
    print(
        f"\ncurves: {args.output_dir / FIGURE}; each run's report, metrics and model in "
        f"{args.output_dir}/<preset>/"
    )
