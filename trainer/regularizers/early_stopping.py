"""Early stopping that tracks its own best value (not a checkpoint side effect), with patience
and min_delta, and an optional tie-break metric for evaluations whose metric is equal (accuracy
on a small validation split often is); its state goes into checkpoints. Restoring the best
weights is the loop's job: ``update`` tells it when to keep a copy."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass
class EarlyStopping:
    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: int = 3
    min_delta: float = 0.0
    tie_metric: str | None = None
    tie_mode: Literal["min", "max"] = "min"
    best: float | None = None
    best_tie: float | None = None
    best_step: int | None = None
    bad_evaluations: int = 0
    stopped: bool = False

    def __post_init__(self) -> None:
        if self.patience < 1 or self.min_delta < 0:
            raise ValueError("patience must be >= 1 and min_delta >= 0")

    def update(self, value: float, step: int, tie: float | None = None) -> bool:
        """Record an evaluation; True when it is a new best: better by more than min_delta, or
        equal and better on the tie-break metric."""
        better = self.best is None or _better(value, self.best, self.mode, self.min_delta)
        if not better and value == self.best and tie is not None and self.best_tie is not None:
            better = _better(tie, self.best_tie, self.tie_mode, 0.0)
        if better:
            self.best, self.best_tie, self.best_step, self.bad_evaluations = value, tie, step, 0
        else:
            self.bad_evaluations += 1
        self.stopped = self.bad_evaluations >= self.patience
        return better

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def _better(value: float, best: float, mode: Literal["min", "max"], min_delta: float) -> bool:
    return value < best - min_delta if mode == "min" else value > best + min_delta
