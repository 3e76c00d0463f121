"""Run outputs: ``metrics.jsonl`` (one row per evaluation), ``report.json``, and the learning
curve (train vs validation loss and accuracy, the early-stopping point marked)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def _import_pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def append_jsonl(path: Path, row: Row) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=str) + "\n")


def read_jsonl(path: Path) -> list[Row]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_jsonl(path: Path, rows: list[Row]) -> None:
    """Write ``rows`` whole or not at all (a temporary file renamed over ``path``)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    os.replace(tmp, path)


def truncate_jsonl(path: Path, last_step: int) -> None:
    """Keep the rows up to ``last_step`` (a resumed run rewrites what came after)."""
    if path.exists():
        write_jsonl(path, [r for r in read_jsonl(path) if r["step"] <= last_step])


FINAL_KEYS = (
    "step",
    "val_loss",
    "val_calibrated_loss",
    "val_accuracy",
    "val_perplexity",
    "val_token_accuracy",
    "val_macro_f1",
    "val_ece",
    "val_confidence",
    "val_calibration",
    "train_loss",
    "train_accuracy",
    "train_perplexity",
    "gap_loss",
    "gap_accuracy",
)


def pick_rows(
    rows: list[Row], best_step: int | None, restored: bool
) -> tuple[Row | None, Row | None]:
    """The best evaluation's row, and the row of the weights the run ships (the best when
    they were restored, else the last)."""
    best = next((r for r in rows if r["step"] == best_step), None)
    return best, best if restored else (rows[-1] if rows else None)


def final_metrics(row: Row | None, prefix: str = "") -> dict[str, Any] | None:
    """The report's figures (those starting with ``prefix``; None where the row has none:
    one schema whatever the task) from an evaluation row."""
    if row is None:
        return None
    return {key: row.get(key) for key in FINAL_KEYS if key.startswith(prefix)}


def accuracy_key(rows: list[Row]) -> str:
    """``accuracy`` for a classifier's rows, ``token_accuracy`` for a causal LM's."""
    return "accuracy" if not rows or "val_accuracy" in rows[0] else "token_accuracy"


def plot_learning_curve(
    rows: list[Row], path: Path, stop_step: int | None, bins: list[Row] | None = None
) -> None:
    """Loss and accuracy per step (train subset vs validation), and the reliability diagram of
    the saved model when ``bins`` are given."""
    plt = _import_pyplot()
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(1, 3 if bins else 2, figsize=(16 if bins else 11, 4))
    for ax, metric in zip(axes[:2], ("loss", accuracy_key(rows)), strict=True):
        if rows and f"train_{metric}" in rows[0]:
            ax.plot(steps, [r[f"train_{metric}"] for r in rows], marker="o", label="train")
        ax.plot(steps, [r[f"val_{metric}"] for r in rows], marker="o", label="validation")
        if stop_step is not None:
            ax.axvline(stop_step, color="grey", linestyle="--", label="best (early stopping)")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy" if metric == "loss" else metric.replace("_", " "))
        ax.set_title(f"{metric}: train subset vs validation")
        ax.grid(alpha=0.3)
        ax.legend()
    if bins:
        ax = axes[2]
        used = [b for b in bins if b["count"]]
        width = bins[0]["high"] - bins[0]["low"]
        ax.bar(
            [b["low"] for b in used],
            [b["accuracy"] for b in used],
            width=width,
            align="edge",
            edgecolor="black",
            alpha=0.7,
            label="accuracy",
        )
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
        ax.set_xlabel("confidence (top label)")
        ax.set_ylabel("accuracy")
        ax.set_title("reliability on validation (saved model)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_runs(curves: dict[str, list[Row]], path: Path, training: bool = False) -> None:
    """Runs side by side, one colour each: validation loss (solid) and accuracy per step; with
    ``training``, the training subset's loss dashed beside the validation loss."""
    plt = _import_pyplot()
    fig, (loss, accuracy) = plt.subplots(1, 2, figsize=(12, 4))
    key = accuracy_key(next(iter(curves.values()), []))
    for (name, rows), colour in zip(curves.items(), plt.rcParams["axes.prop_cycle"], strict=False):
        steps = [r["step"] for r in rows]
        c = colour["color"]
        if training and rows and "train_loss" in rows[0]:
            loss.plot(steps, [r["train_loss"] for r in rows], "--", color=c, label=f"{name}: train")
        val_label = f"{name}: val" if training else name
        loss.plot(steps, [r["val_loss"] for r in rows], "-o", ms=3, color=c, label=val_label)
        accuracy.plot(steps, [r[f"val_{key}"] for r in rows], "-o", ms=3, color=c, label=name)
    loss.set_title(
        "cross-entropy: training subset (dashed) vs validation"
        if training
        else "validation cross-entropy"
    )
    accuracy.set_title(f"validation {key.replace('_', ' ')}")
    for ax in (loss, accuracy):
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
