"""Checkpoints: one file, ``checkpoint.pt`` in the output directory, replaced atomically (temp
file + rename), so a run killed while saving keeps its previous checkpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

NAME = "checkpoint.pt"


def save(directory: Path, state: dict[str, Any]) -> Path:
    path = directory / NAME
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load(directory: Path) -> dict[str, Any] | None:
    path = directory / NAME
    if not path.exists():
        return None
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    return state


def remove(directory: Path) -> None:
    (directory / NAME).unlink(missing_ok=True)
