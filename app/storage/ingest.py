"""Parse an uploaded file (JSON Lines, CSV or Parquet) into record shards, one row at a time.

Every bad row is reported with its line (row, for Parquet) and field. With ``on_error="reject"``
(the default) any bad row rejects the whole upload; with ``"skip"`` the good rows are kept and
the skipped ones listed. Structural problems (a CSV without the text column) always reject.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.storage.idset import IdSet
from app.storage.shards import SPLITS, ShardWriter, StoredRecord
from augmenters.rng import stable_digest

Format = Literal["jsonl", "csv", "parquet"]
Task = Literal["classification", "generation"]
ROLES = ("system", "user", "assistant")
MAX_MESSAGES = 256
MAX_LISTED = 100  # errors or skipped rows listed in a response
MAX_LINE_BYTES = 1 << 20  # one JSONL line: a longer one is a row error, never read whole
MAX_ID_CHARS = 200
MAX_ROW_GROUP_BYTES = 1 << 30  # uncompressed, per Parquet row group
BATCH_BYTES = 32 << 20  # decoded Parquet held at once


@dataclass(frozen=True)
class RowError:
    line: int
    field: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}


class UploadRejected(Exception):
    def __init__(self, errors: list[RowError], total: int) -> None:
        super().__init__(f"{total} bad row(s)")
        self.errors = errors
        self.total = total


@dataclass(frozen=True)
class UploadOptions:
    format: Format
    text_field: str = "text"
    label_field: str = "label"
    id_field: str | None = None
    split_field: str | None = None
    split_ratios: dict[str, float] | None = None
    split_seed: int = 0
    on_error: Literal["reject", "skip"] = "reject"
    max_text_chars: int = 20_000
    # a generation dataset: prompt + response columns, or chat messages (see _target)
    prompt_field: str | None = None
    response_field: str | None = None
    messages_field: str | None = None

    def __post_init__(self) -> None:
        if (self.prompt_field is None) != (self.response_field is None):
            raise ValueError("prompt_field and response_field go together")
        if self.messages_field is not None and self.prompt_field is not None:
            raise ValueError("give either messages_field or prompt_field/response_field")

    @property
    def task(self) -> Task:
        generation = self.prompt_field or self.response_field or self.messages_field
        return "generation" if generation else "classification"

    def columns(self) -> list[str | None]:
        """The columns a row must have."""
        if self.messages_field is not None:
            content: list[str | None] = [self.messages_field]
        elif self.task == "generation":
            content = [self.prompt_field, self.response_field]
        else:
            content = [self.text_field, self.label_field]
        return [*content, self.id_field, self.split_field]


@dataclass
class IngestResult:
    rows: int
    shards: int
    summary: dict[str, Any]
    skipped: list[RowError] = field(default_factory=list)
    shard_sha256: list[str] = field(default_factory=list)


def parse_split_ratios(text: str) -> dict[str, float]:
    """``"train:0.8,validation:0.1,test:0.1"`` -> ratios; a ValueError says what is wrong."""
    ratios: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition(":")
        name = name.strip()
        if not sep or name not in SPLITS:
            raise ValueError(
                f"expected name:ratio with names from {', '.join(SPLITS)}, got {part!r}"
            )
        try:
            ratios[name] = float(value)
        except ValueError:
            raise ValueError(f"ratio of {name!r} is not a number: {value!r}") from None
        if not 0 <= ratios[name] <= 1:
            raise ValueError(f"ratio of {name!r} must lie in [0, 1]")
    if abs(sum(ratios.values()) - 1) > 1e-6:
        raise ValueError(f"ratios must sum to 1, not {sum(ratios.values()):g}")
    return ratios


def _rows(path: Path, options: UploadOptions) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    if options.format == "jsonl":
        yield from _jsonl_rows(path)
    elif options.format == "csv":
        yield from _csv_rows(path, options)
    else:
        yield from _parquet_rows(path, options)


def _lines(f: Any, limit: int) -> Iterator[bytes | None]:
    """The file's lines; None for one longer than ``limit`` bytes (skipped in bounded reads)."""
    while raw := f.readline(limit + 1):
        if len(raw) <= limit or raw.endswith(b"\n"):
            yield raw
            continue
        while (rest := f.readline(limit)) and not rest.endswith(b"\n"):
            pass
        yield None


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    with path.open("rb") as f:
        for line_no, raw in enumerate(_lines(f, MAX_LINE_BYTES), start=1):
            if raw is None:
                yield line_no, RowError(line_no, None, f"longer than {MAX_LINE_BYTES} bytes")
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield line_no, RowError(line_no, None, f"not UTF-8 (byte {exc.start})")
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield (
                    line_no,
                    RowError(line_no, None, f"invalid JSON: {exc.msg} (column {exc.colno})"),
                )
                continue
            except (ValueError, RecursionError) as exc:  # a 5,000-digit number, deep nesting
                reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
                yield line_no, RowError(line_no, None, f"invalid JSON: {reason}")
                continue
            if not isinstance(obj, dict):
                yield line_no, RowError(line_no, None, "a line must hold a JSON object")
                continue
            yield line_no, obj


def _require_columns(columns: list[str], options: UploadOptions, what: str) -> None:
    missing = [c for c in options.columns() if c is not None and c not in columns]
    if missing:
        raise UploadRejected(
            [
                RowError(1, m, f"{what} has no column {m!r} (columns: {', '.join(columns)})")
                for m in missing
            ],
            len(missing),
        )


def _csv_rows(
    path: Path, options: UploadOptions
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
        reader = csv.DictReader(text)
        try:
            _require_columns(list(reader.fieldnames or []), options, "the CSV header")
            for row in reader:
                if None in row:  # more cells than header columns
                    yield (
                        reader.line_num,
                        RowError(reader.line_num, None, "more cells than columns"),
                    )
                    continue
                yield reader.line_num, dict(row)
        except UnicodeDecodeError as exc:
            line = reader.line_num + 1
            raise UploadRejected(
                [RowError(line, None, f"not UTF-8 (byte {exc.start} of a read)")], 1
            ) from exc
        except csv.Error as exc:
            raise UploadRejected([RowError(reader.line_num, None, f"bad CSV: {exc}")], 1) from exc


def _parquet_rows(
    path: Path, options: UploadOptions
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    import pyarrow.lib
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except (pyarrow.lib.ArrowException, OSError) as exc:
        raise UploadRejected([RowError(0, None, f"not a Parquet file: {exc}")], 1) from exc
    _require_columns(file.schema_arrow.names, options, "the Parquet schema")
    meta = file.metadata
    for i in range(meta.num_row_groups):  # a decompression bomb is refused before decoding
        size = meta.row_group(i).total_byte_size
        if size > MAX_ROW_GROUP_BYTES:
            raise UploadRejected(
                [
                    RowError(
                        0,
                        None,
                        f"row group {i} holds {size} bytes uncompressed; the "
                        f"limit is {MAX_ROW_GROUP_BYTES}",
                    )
                ],
                1,
            )
    uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    per_row = max(1, uncompressed // max(1, meta.num_rows))
    rows_per_batch = max(1, min(4096, BATCH_BYTES // per_row))  # about BATCH_BYTES decoded
    row_no = 0
    for batch in file.iter_batches(batch_size=rows_per_batch):
        for row in batch.to_pylist():
            row_no += 1
            yield row_no, row


class _Splitter:
    def __init__(self, options: UploadOptions) -> None:
        self.field = options.split_field
        self.seed = options.split_seed
        self.bounds: list[tuple[float, str]] = []
        if options.split_ratios:
            total = 0.0
            for name in SPLITS:
                total += options.split_ratios.get(name, 0.0)
                self.bounds.append((total, name))

    def __call__(self, row: dict[str, Any], record_id: str, line: int) -> str | RowError:
        if self.field is not None:
            value = row.get(self.field)
            if value not in SPLITS:
                return RowError(
                    line, self.field, f"split must be one of {', '.join(SPLITS)}, not {value!r}"
                )
            return str(value)
        if not self.bounds:
            return "train"
        # a pure function of (seed, record id): the same file always splits the same way
        x = int.from_bytes(stable_digest("split", self.seed, record_id, size=8), "big") / 2**64
        return next((name for bound, name in self.bounds if x < bound), self.bounds[-1][1])


def _text(row: dict[str, Any], name: str, line: int, limit: int, what: str) -> str | RowError:
    text = row.get(name)
    if not isinstance(text, str):
        kind = "missing" if text is None else f"a {type(text).__name__}, not a string"
        return RowError(line, name, f"{what} is {kind}")
    if not text.strip():
        return RowError(line, name, f"{what} is empty")
    if len(text) > limit:
        return RowError(line, name, f"{what} has {len(text)} characters; the limit is {limit}")
    return text


def _label(row: dict[str, Any], name: str, line: int) -> Any:
    label = row.get(name)
    if label is None or label == "" or not isinstance(label, str | int | float):
        what = "missing" if label is None or label == "" else "not a string or number"
        return RowError(line, name, f"label is {what}")
    if isinstance(label, float) and not math.isfinite(label):
        return RowError(line, name, f"label is {label}, not a finite number")
    return label


def _chat(row: dict[str, Any], name: str, line: int, limit: int) -> tuple[str, Any] | RowError:
    """A conversation ending in a user turn and the assistant's answer: the user turn is the
    record's text (what augmentation acts on), the answer and the turns before go in its
    label, the generation target."""
    messages = row.get(name)
    if isinstance(messages, str):  # a CSV cell holds the list as JSON text
        try:
            messages = json.loads(messages)
        except ValueError:
            return RowError(line, name, "messages is not a JSON list")
    if not isinstance(messages, list) or len(messages) < 2:
        return RowError(line, name, "messages must be a list of at least two messages")
    if len(messages) > MAX_MESSAGES:
        return RowError(line, name, f"more than {MAX_MESSAGES} messages")
    turns: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        where = f"{name}[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return RowError(
                line, where, f"a message is an object with a role among {', '.join(ROLES)}"
            )
        content = _text(message, "content", line, limit, "content")
        if isinstance(content, RowError):
            return RowError(line, f"{where}.content", content.message)
        turns.append({"role": message["role"], "content": content})
    if turns[-1]["role"] != "assistant" or turns[-2]["role"] != "user":
        return RowError(
            line, name, "messages must end with a user message and the assistant's answer"
        )
    target: dict[str, Any] = {"response": turns[-1]["content"]}
    if len(turns) > 2:
        target["context"] = turns[:-2]
    return turns[-2]["content"], target


def _content(row: dict[str, Any], line: int, options: UploadOptions) -> tuple[str, Any] | RowError:
    """The record's text and label. A generation record's label is its target: an object
    with the response (and, for a chat, the turns before the last user message)."""
    limit = options.max_text_chars
    if options.messages_field is not None:
        return _chat(row, options.messages_field, line, limit)
    if options.prompt_field is not None and options.response_field is not None:
        prompt = _text(row, options.prompt_field, line, limit, "prompt")
        if isinstance(prompt, RowError):
            return prompt
        response = _text(row, options.response_field, line, limit, "response")
        if isinstance(response, RowError):
            return response
        return prompt, {"response": response}
    text = _text(row, options.text_field, line, limit, "text")
    if isinstance(text, RowError):
        return text
    label = _label(row, options.label_field, line)
    return label if isinstance(label, RowError) else (text, label)


def _record(
    row: dict[str, Any], line: int, options: UploadOptions, split_of: _Splitter
) -> StoredRecord | RowError:
    content = _content(row, line, options)
    if isinstance(content, RowError):
        return content
    text, label = content
    if options.id_field is not None:
        raw_id = row.get(options.id_field)
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or raw_id == "":
            return RowError(line, options.id_field, "id must be a non-empty string or integer")
        record_id = str(raw_id)
        if len(record_id) > MAX_ID_CHARS:
            return RowError(line, options.id_field, f"id longer than {MAX_ID_CHARS} characters")
    else:
        record_id = str(line)
    split = split_of(row, record_id, line)
    if isinstance(split, RowError):
        return split
    used = set(options.columns())
    meta = {k: v for k, v in row.items() if k not in used and _jsonable(v)}
    return StoredRecord(record_id, text, label, split, meta)


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def ingest(path: Path, options: UploadOptions, directory: Path, shard_size: int) -> IngestResult:
    """Write the file's good rows as shards into ``directory``; raise UploadRejected."""
    writer = ShardWriter(directory, shard_size)
    split_of = _Splitter(options)
    seen = IdSet(directory.with_name(f"{directory.name}.ids"))
    try:
        return _ingest(path, options, writer, split_of, seen)
    finally:
        seen.close()


class _Lengths:
    """Shortest, longest and mean length in characters."""

    def __init__(self) -> None:
        self.n, self.shortest, self.longest, self.total = 0, 0, 0, 0

    def add(self, text: str) -> None:
        n = len(text)
        self.shortest = n if self.n == 0 else min(self.shortest, n)
        self.longest = max(self.longest, n)
        self.total += n
        self.n += 1

    def to_dict(self) -> dict[str, float]:
        mean = round(self.total / self.n, 1) if self.n else 0.0
        return {"min": self.shortest, "max": self.longest, "mean": mean}


def _ingest(
    path: Path, options: UploadOptions, writer: ShardWriter, split_of: _Splitter, seen: IdSet
) -> IngestResult:
    errors: list[RowError] = []
    n_errors = 0
    splits: Counter[str] = Counter()
    labels: Counter[str] = Counter()
    texts, responses = _Lengths(), _Lengths()
    generation = options.task == "generation"
    rows = 0
    for line, row in _rows(path, options):
        item = row if isinstance(row, RowError) else _record(row, line, options, split_of)
        if isinstance(item, StoredRecord) and not seen.add(item.id):
            item = RowError(line, options.id_field, f"duplicate id {item.id!r}")
        if isinstance(item, RowError):
            n_errors += 1
            if len(errors) < MAX_LISTED:
                errors.append(item)
            continue
        if n_errors and options.on_error == "reject":
            continue  # keep scanning to report more bad rows, but write nothing more
        writer.add(item)
        rows += 1
        splits[item.split] += 1
        texts.add(item.text)
        if generation:
            responses.add(item.label["response"])
        else:
            labels[json.dumps(item.label, ensure_ascii=False)] += 1
    if n_errors and options.on_error == "reject":
        raise UploadRejected(errors, n_errors)
    if rows == 0:
        raise UploadRejected([RowError(0, None, "no records")], 1)
    writer.flush()
    fields: dict[str, str | None]
    if options.messages_field is not None:
        fields = {"messages": options.messages_field}
    elif generation:
        fields = {"prompt": options.prompt_field, "response": options.response_field}
    else:
        fields = {"text": options.text_field, "label": options.label_field}
    summary = {
        "format": options.format,
        "task": options.task,
        "fields": {**fields, "id": options.id_field, "split": options.split_field},
        "splits": {s: splits[s] for s in SPLITS if splits[s]},
        "labels": [{"label": json.loads(k), "count": v} for k, v in sorted(labels.items())],
        "text_length": texts.to_dict(),
        "skipped": n_errors,
    }
    if generation:
        summary["response_length"] = responses.to_dict()
    return IngestResult(
        rows=rows,
        shards=writer.shards,
        summary=summary,
        skipped=errors,
        shard_sha256=writer.digests,
    )
