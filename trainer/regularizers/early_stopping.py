"""Early stopping that tracks its own best value (not a checkpoint side effect), with patience
and min_delta; its state goes into checkpoints. Restoring the best weights is the loop's job:
``improved`` tells it when to keep a copy."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal


@dataclass
class EarlyStopping:
    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: int = 3
    min_delta: float = 0.0
    best: float | None = None
    best_step: int | None = None
    bad_evaluations: int = 0
    stopped: bool = False

    def __post_init__(self) -> None:
        if self.patience < 1 or self.min_delta < 0:
            raise ValueError("patience must be >= 1 and min_delta >= 0")

    def update(self, value: float, step: int) -> bool:
        """Record an evaluation; True when it is a new best (by more than min_delta)."""
        better = self.best is None or (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if better:
            self.best, self.best_step, self.bad_evaluations = value, step, 0
        else:
            self.bad_evaluations += 1
            self.stopped = self.bad_evaluations >= self.patience
        return better

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
