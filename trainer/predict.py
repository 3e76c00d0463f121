"""``antifit predict``: a saved classifier's predictions for a JSON Lines file — each record's
label and class probabilities (calibrated where the run scaled them) — and, when every record
carries a label the model knows, the accuracy, macro-F1 and ECE on them. Any model
``antifit train`` saved: a transformers classifier, a mean-pooled one, an ensemble."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from augmenters.errors import RecordError


def saved_labels(directory: Path) -> list[str]:
    """The labels a saved classifier predicts, by class index (its config's ``id2label``;
    an ensemble's first member's, a mean-pooled model's encoder's)."""
    from trainer.ensemble import is_ensemble, member_paths
    from trainer.pooled import ENCODER, is_mean_pooled

    if is_ensemble(directory):
        return saved_labels(member_paths(directory)[0])
    config = (directory / ENCODER if is_mean_pooled(directory) else directory) / "config.json"
    if not config.is_file():
        raise ValueError(f"{directory} holds no classifier antifit can load (no {config.name})")
    id2label = json.loads(config.read_text()).get("id2label") or {}
    try:
        return [str(id2label[str(i)]) for i in range(len(id2label))]
    except KeyError as exc:
        raise ValueError(f"{config}: id2label is not indexed 0..{len(id2label) - 1}") from exc


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "predict",
        help="a trained model's predictions (and, with labels, its scores) for a JSONL file",
        description="Predict every record of a JSON Lines file with a model antifit train "
        "saved (runs/NAME/model): its label and class probabilities, as JSON Lines. When every "
        "record has a label the model knows, also print accuracy, macro-F1 and ECE on them.",
    )
    p.add_argument("input", type=Path, help="JSON Lines, one record per line")
    p.add_argument("--model", type=Path, required=True, help="the run's model/ folder")
    p.add_argument("-o", "--output", type=Path, help="output JSON Lines (default: stdout)")
    p.add_argument("--text-field", default="text")
    p.add_argument("--label-field", default="label")
    p.add_argument("--id-field", default="id", help="absent: the line number is the id")
    p.add_argument("--max-length", type=int, default=128, help="tokens per text, at most")
    p.add_argument("--batch-size", type=int, default=16)
    p.set_defaults(run=run_predict)


def run_predict(args: argparse.Namespace) -> int:
    from augmenters.cli import read_records
    from trainer.evalset import predict_items
    from trainer.metrics import evaluate
    from trainer.model import load_classifier
    from trainer.report import write_jsonl

    if not 8 <= args.max_length <= 8192 or not 1 <= args.batch_size <= 4096:
        return _error("--max-length must be 8..8192 and --batch-size 1..4096")
    try:
        labels = saved_labels(args.model)
    except ValueError as exc:
        return _error(str(exc))
    if not args.input.is_file():
        raise RecordError("no such file", field=str(args.input))
    records = list(read_records(args.input, args.text_field, args.label_field, args.id_field))
    if not records:
        return _error(f"{args.input}: no records")
    classifier = load_classifier(args.model, labels)
    # every evaluation item needs a label; the scores below use only the records' own
    known = [r.label is not None and str(r.label) in labels for r in records]
    items = [
        {"text": r.text, "label": str(r.label) if ok else labels[0]}
        for r, ok in zip(records, known, strict=True)
    ]
    logits, targets = predict_items(classifier, items, args.max_length, args.batch_size)
    probabilities = logits.softmax(-1)
    rows: list[dict[str, Any]] = [
        {
            "id": r.id,
            "label": labels[int(p.argmax())],
            "probabilities": {
                label: round(float(x), 6) for label, x in zip(labels, p, strict=True)
            },
        }
        for r, p in zip(records, probabilities, strict=True)
    ]
    if args.output is None:
        sys.stdout.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(args.output, rows)
    if all(known):
        scores = evaluate(logits, targets)
        print(
            f"{len(records)} labelled records: accuracy {scores.accuracy:.4f}, macro-F1 "
            f"{scores.macro_f1:.4f}, ECE {scores.ece:.4f}",
            file=sys.stderr,
        )
    elif any(r.label is not None for r in records):
        print(
            "not scored: some records have no label, or one the model does not know",
            file=sys.stderr,
        )
    return 0


def _error(message: str) -> int:
    print(f"antifit predict: {message}", file=sys.stderr)
    return 2
