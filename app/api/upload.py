"""Receiving an upload: multipart (field ``file``) or a raw body, spooled to a temp file with a
size cap enforced while it streams in (413 beyond it), so memory stays constant."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import BinaryIO

import anyio
from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from app.core.guard import too_large
from app.core.problems import Problem, invalid

CHUNK = 1 << 16


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise too_large(limit, upload=True)
        yield chunk


async def receive(request: Request, limit: int, directory: Path) -> tuple[Path, str | None]:
    """Spool the upload to a file under ``directory``; return its path and the client's file
    name (multipart only). The caller deletes the file."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit + CHUNK:
        # refused before a byte is read (multipart framing allowed for)
        raise too_large(limit, upload=True)
    fd, name = tempfile.mkstemp(prefix="upload-", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            content_type = request.headers.get("content-type", "")
            if content_type.startswith("multipart/form-data"):
                filename = await _multipart(request, limit, out)
            else:
                filename = None
                async for chunk in _capped(request.stream(), limit):
                    await anyio.to_thread.run_sync(out.write, chunk)
        return path, filename
    except BaseException:
        path.unlink(missing_ok=True)
        raise


async def _multipart(request: Request, limit: int, out: BinaryIO) -> str | None:
    parser = MultiPartParser(
        request.headers, _capped(request.stream(), limit), max_files=1, max_fields=32
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise Problem(400, "bad-multipart", "Malformed multipart body", exc.message) from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise invalid(
            "file",
            "multipart uploads need a 'file' field",
            message="missing",
            slug="missing-file",
            title="No file",
        )
    try:
        while chunk := await upload.read(CHUNK):
            await anyio.to_thread.run_sync(out.write, chunk)
    finally:
        await form.close()
    return upload.filename


def sniff_format(path: Path, filename: str | None, content_type: str) -> str:
    """The format from the file name, else the content type, else the first bytes."""
    lowered = (filename or "").lower()
    for suffix, fmt in (
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "jsonl"),
        (".csv", "csv"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ):
        if lowered.endswith(suffix):
            return fmt
    ctype = content_type.split(";")[0].strip().lower()
    by_type = {
        "application/x-ndjson": "jsonl",
        "application/jsonl": "jsonl",
        "application/json-lines": "jsonl",
        "text/csv": "csv",
        "application/vnd.apache.parquet": "parquet",
    }
    if ctype in by_type:
        return by_type[ctype]
    with path.open("rb") as f:
        head = f.read(64)
    if head.startswith(b"PAR1"):
        return "parquet"
    return "jsonl" if head.lstrip().startswith(b"{") else "csv"
