"""``antifit augment IN.jsonl --spec spec.json --seed 1 -n 4 -o OUT.jsonl``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from augmenters.errors import RecordError
from augmenters.pipeline import Pipeline, Record


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "augment",
        help="augment a JSONL dataset with a pipeline spec",
        description="Write n augmented variants of every record of a JSONL file.",
    )
    p.add_argument("input", type=Path, help="JSON Lines, one record per line")
    p.add_argument("--spec", type=Path, required=True, help="pipeline spec (JSON)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-n", "--variants", type=int, default=1, help="variants per record")
    p.add_argument("-o", "--output", type=Path, required=True, help="output JSON Lines")
    p.add_argument("--text-field", default="text")
    p.add_argument("--label-field", default="label")
    p.add_argument("--id-field", default="id", help="absent: the line number is the id")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run)


def read_records(path: Path, text_field: str, label_field: str, id_field: str) -> Iterator[Record]:
    """Records of a JSONL file; a bad line raises RecordError naming the line and field."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RecordError(
                    f"not UTF-8 ({exc.reason} at byte {exc.start})", field=where
                ) from exc
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise RecordError(
                    f"invalid JSON: {exc.msg} (column {exc.colno})", field=where
                ) from exc
            if not isinstance(obj, dict):
                raise RecordError("each line must be a JSON object", field=where)
            fields = {
                "id": obj.get(id_field, lineno),
                "text": obj.get(text_field),
                "label": obj.get(label_field),
            }
            try:
                yield Record.coerce(fields, lineno - 1)
            except RecordError as exc:  # name the file's line and field, not the list index
                name = {"id": id_field, "text": text_field}.get((exc.field or "").rsplit(".")[-1])
                raise RecordError(exc.message, field=f"{where}: field {name!r}") from exc


def count_lines(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    pipeline = Pipeline(args.spec)
    if not args.input.is_file():
        raise RecordError("no such file", field=str(args.input))
    total = count_lines(args.input)
    records = read_records(args.input, args.text_field, args.label_field, args.id_field)
    out_dir = args.output.resolve().parent
    out_dir.mkdir(parents=True, exist_ok=True)
    # write to a temp file and rename: a failed run leaves no half-written output
    fd, tmp = tempfile.mkstemp(prefix=f".{args.output.name}.", dir=out_dir)
    written = 0
    try:
        with (
            os.fdopen(fd, "w", encoding="utf-8") as out,
            tqdm(total=total, unit="rec", disable=args.no_progress, file=sys.stderr) as bar,
        ):
            last = None
            for variant in pipeline.augment(records, args.seed, args.variants, args.batch_size):
                row: dict[str, Any] = variant.to_dict()
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                written += 1
                if variant.record_id != last:
                    bar.update(1)
                    last = variant.record_id
        os.replace(tmp, args.output)
    except BaseException:
        os.unlink(tmp)
        raise
    dropped = ", ".join(f"{k}: {v}" for k, v in pipeline.dropped.items() if v)
    print(
        f"wrote {written} variants of {total} records to {args.output}"
        + (f" (dropped by filters: {dropped})" if dropped else ""),
        file=sys.stderr,
    )
    return 0


__all__ = ["add_parser", "read_records", "run"]
