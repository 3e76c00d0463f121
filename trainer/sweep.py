"""``antifit sweep``: a few candidate configurations trained on the same data, compared on the
validation split (and the test split, when the dataset has one), with their validation curves
overlaid. Candidates run one after the other, or in ``jobs`` processes at once where there are
cores for them.

A grid of a handful of named candidates, not a tuner: small-data runs are few and cheap, a
table of every candidate says more than a search's single winner, and nothing is sampled, so the
same sweep gives the same table. The winner is the best validation accuracy, ties broken by the
temperature-calibrated validation loss (for generation: the lowest validation loss); the test
split, which no candidate was selected on, is the honest estimate of it."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from trainer.config import TrainConfig, merge
from trainer.report import plot_runs, read_jsonl, write_json

SWEEP = "sweep.json"
CURVES = "sweep.png"
# the table's columns, and how the winner is chosen, per task
COLUMNS = {
    "classification": (
        "val_accuracy",
        "val_macro_f1",
        "val_calibrated_loss",
        "val_ece",
        "test_accuracy",
    ),
    "generation": ("val_loss", "val_perplexity", "val_token_accuracy", "gap_loss", "test_loss"),
}
WINNER = {
    "classification": "best validation accuracy (ties: calibrated validation loss)",
    "generation": "lowest validation loss",
}


def candidate_configs(
    base: dict[str, Any], candidates: dict[str, dict[str, Any]], output_dir: Path
) -> dict[str, TrainConfig]:
    """Each candidate (a preset and regularization overrides) on top of the base config, in an
    output directory of its own."""
    configs = {}
    for name, candidate in candidates.items():
        data = {
            **base,
            **{k: v for k, v in candidate.items() if k != "regularization"},
            "regularization": merge(
                base.get("regularization") or {}, candidate.get("regularization") or {}
            ),
            "output_dir": str(output_dir / name),
        }
        configs[name] = TrainConfig.model_validate(data)
    return configs


def run_sweep(
    configs: dict[str, TrainConfig],
    output_dir: Path,
    jobs: int = 1,
    on_log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train every candidate (resuming any that a previous sweep left unfinished), then write
    the table (``sweep.json``) and the overlaid curves (``sweep.png``)."""
    log = on_log or (lambda message: None)
    output_dir.mkdir(parents=True, exist_ok=True)
    reports: dict[str, dict[str, Any]] = {}
    if jobs <= 1:
        for name, config in configs.items():
            log(f"candidate {name}: training")
            reports[name] = _train(config.model_dump_json(), 0, config.api_key)
            log(f"candidate {name}: {_summary(reports[name])}")
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = {
                name: pool.submit(_train, config.model_dump_json(), threads, config.api_key)
                for name, config in configs.items()
            }
            for name, future in futures.items():
                reports[name] = future.result()
                log(f"candidate {name}: {_summary(reports[name])}")
    rows = [_row(name, report) for name, report in reports.items()]
    task = next(iter(configs.values())).task if configs else "classification"
    result = {"task": task, "best": _best(rows, task), "candidates": rows}
    write_json(output_dir / SWEEP, result)
    curves = {
        name: read_jsonl(Path(config.output_dir) / "metrics.jsonl")
        for name, config in configs.items()
    }
    plot_runs(curves, output_dir / CURVES)
    return result


def _train(config_json: str, threads: int, api_key: str | None) -> dict[str, Any]:
    """One candidate (in a pool process: with ``threads`` torch threads). The API key travels
    apart: a config's JSON never holds it."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    from trainer.loop import train

    config = TrainConfig.model_validate_json(config_json).model_copy(update={"api_key": api_key})
    return train(config, progress=False)


def _best(rows: list[dict[str, Any]], task: str) -> str:
    if task == "generation":
        return str(min(rows, key=lambda r: r["val_loss"])["candidate"])
    best = max(rows, key=lambda r: (r["val_accuracy"], -r["val_calibrated_loss"]))
    return str(best["candidate"])


def _row(name: str, report: dict[str, Any]) -> dict[str, Any]:
    final = report["final"] or {}
    test = report.get("test") or {}
    validation = (
        "val_loss",
        "val_perplexity",
        "val_token_accuracy",
        "val_accuracy",
        "val_macro_f1",
        "val_calibrated_loss",
    )
    return {
        "candidate": name,
        **{key: final.get(key) for key in validation},
        "val_ece": (report["saved_model"] or {}).get("val_ece"),
        **{key: test.get(key) for key in ("test_accuracy", "test_ece", "test_loss")},
        "gap_loss": final.get("gap_loss"),
        "best_step": report["best"]["step"],
        "steps": report["steps"],
        "seconds": report["seconds"],
        "output_dir": report["config"]["output_dir"],
    }


def _summary(report: dict[str, Any]) -> str:
    final = report["final"] or {}
    key = "val_perplexity" if report.get("task") == "generation" else "val_accuracy"
    value = final.get(key)
    return (
        f"{key} {value if value is not None else float('nan'):.3f} "
        f"in {report['steps']} steps, {report['seconds']:.0f} s"
    )


def format_table(result: dict[str, Any]) -> str:
    task = result.get("task", "classification")
    keys = COLUMNS[task]
    lines = [f"{'candidate':16s}" + "".join(f"{k:>21s}" for k in keys) + f"{'steps':>7s}"]
    for row in result["candidates"]:
        cells = "".join(
            f"{row[k]:21.3f}" if isinstance(row[k], float) else f"{'-':>21s}" for k in keys
        )
        mark = " *" if row["candidate"] == result["best"] else ""
        lines.append(f"{row['candidate']:16s}{cells}{row['steps']:7d}{mark}")
    lines.append(f"* {WINNER[task]}")
    return "\n".join(lines)


def parse_candidate(text: str) -> tuple[str, dict[str, Any]]:
    """``NAME=PRESET`` or ``NAME=PRESET:{regularization JSON}`` or just ``PRESET``."""
    name, sep, rest = text.partition("=")
    if not sep:
        return name, {"preset": name}
    preset, _, overrides = rest.partition(":")
    regularization = json.loads(overrides) if overrides else {}
    if not isinstance(regularization, dict):
        raise ValueError(f"candidate {name}: the overrides must be a JSON object")
    return name, {"preset": preset, "regularization": regularization}
