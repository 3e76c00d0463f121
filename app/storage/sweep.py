"""What a crash leaves behind, and its removal at start-up.

Each server process spools uploads, stages datasets and moves deleted ones out of sight in a
scratch folder of its own under ``data/tmp/``, locked (``flock``) while the process lives: a
folder whose lock can be taken belongs to a process that is gone, and goes whole. A dataset
folder without a row goes too: at once if it is a delete cut short, after a grace period if it
is still marked ``.pending`` (a create between its rename and its row: another replica sharing
the data directory may be finishing it). Outputs of jobs that no longer exist and temp files of
killed shard workers go once older than the grace period, for the same reason.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import IO

from app.storage.shards import partial_outputs

log = logging.getLogger("antifit.sweep")
GRACE_SECONDS = 60.0
LOCK = ".lock"
PENDING = ".pending"  # in a dataset folder until its row is written


class Scratch:
    """This process's own temp folder, locked for as long as the process lives."""

    def __init__(self, parent: Path) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.path = parent / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.path.mkdir()
        self._lock: IO[str] | None = (self.path / LOCK).open("w")
        fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
            shutil.rmtree(self.path, ignore_errors=True)


def _abandoned(folder: Path) -> bool:
    """A scratch folder whose process is gone (its lock is free), or no scratch folder."""
    try:
        with (folder / LOCK).open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True  # released when the file closes
    except BlockingIOError:
        return False
    except FileNotFoundError:
        return True


def _old(path: Path, now: float, grace: float) -> bool:
    try:
        return now - path.lstat().st_mtime > grace
    except FileNotFoundError:
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep(
    data_dir: Path,
    datasets: Collection[str],
    jobs: Collection[str],
    grace: float = GRACE_SECONDS,
) -> Counter[str]:
    """Remove what crashed processes left in ``data_dir``; the counts of what went, by kind.
    ``datasets`` and ``jobs``: the ids the database holds."""
    removed: Counter[str] = Counter()
    now = time.time()
    tmp = data_dir / "tmp"
    for entry in tmp.iterdir() if tmp.is_dir() else ():
        if (entry / LOCK).exists() and not _abandoned(entry):
            continue  # a live process's scratch folder
        if (entry / LOCK).exists() or _old(entry, now, grace):
            _remove(entry)
            removed["temp"] += 1
    root = data_dir / "datasets"
    for folder in root.iterdir() if root.is_dir() else ():
        if folder.name not in datasets:
            if not (folder / PENDING).exists() or _old(folder / PENDING, now, grace):
                _remove(folder)
                removed["dataset folders without a dataset"] += 1
            continue
        outputs = folder / "jobs"
        for job in outputs.iterdir() if outputs.is_dir() else ():
            if job.name not in jobs:
                if _old(job, now, grace):
                    _remove(job)
                    removed["outputs of deleted jobs"] += 1
                continue
            for partial in partial_outputs(job):
                if _old(partial, now, grace):
                    partial.unlink(missing_ok=True)
                    removed["partial shard outputs"] += 1
    if removed:
        log.warning("start-up sweep removed %s", dict(removed))
    return removed
