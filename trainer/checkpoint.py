"""Checkpoints: one file, ``checkpoint.pt`` in the output directory, replaced atomically (temp
file + rename), so a run killed while saving keeps its previous checkpoint. ``Writer`` saves on
a background thread from a CPU snapshot taken when asked, so training goes on while the file is
written."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import Any

import torch

NAME = "checkpoint.pt"
# the weights the model-preparation stages (the contrastive stage) leave, which a resumed run
# starts its anchors from instead of running them again
PREPARED = "prepared.pt"


def save(directory: Path, state: dict[str, Any], name: str = NAME) -> Path:
    path = directory / name
    tmp = path.with_name(f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        torch.save(state, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load(directory: Path, name: str = NAME) -> dict[str, Any] | None:
    path = directory / name
    if not path.exists():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def remove(directory: Path) -> None:
    (directory / NAME).unlink(missing_ok=True)


def remove_partial(directory: Path) -> None:
    """Temp files of a save that a killed process never finished."""
    for name in (NAME, PREPARED):
        for leftover in directory.glob(f".{name}.*.tmp"):
            leftover.unlink(missing_ok=True)


def snapshot(value: Any) -> Any:
    """A copy of every tensor in a nested state, on the CPU, detached from later updates."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(snapshot(v) for v in value)
    return value


class Writer:
    """One checkpoint written at a time, in the background; ``wait`` for the last one (and its
    error, if it failed)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, state: dict[str, Any], background: bool = True) -> None:
        self.wait()
        if not background:
            save(self.directory, state)
            return
        copy = snapshot(state)
        self._thread = threading.Thread(target=self._save, args=(copy,), daemon=True)
        self._thread.start()

    def _save(self, state: dict[str, Any]) -> None:
        try:
            save(self.directory, state)
        except BaseException as exc:  # reported to the training thread by wait()
            self._error = exc

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
