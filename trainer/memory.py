"""Will this run fit? A rough estimate of a training step's memory — weights, gradients and
AdamW's two moments for what is trained, activations for the batch — against what the device
has free, checked before the first step so a run that cannot fit says so and why, not after
minutes of loading with an out-of-memory crash."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

GIB = 2**30
# bytes of activations kept per token, layer and hidden unit for the backward pass of a
# transformer block (attention and MLP intermediates, fp32): a round figure, not a bound
ACTIVATION_BYTES = 34


@dataclass(frozen=True)
class Estimate:
    weights: int
    gradients: int
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations

    def describe(self) -> str:
        parts = {
            "weights": self.weights,
            "gradients": self.gradients,
            "optimizer": self.optimizer,
            "activations": self.activations,
        }
        listed = ", ".join(f"{k} {v / GIB:.2f}" for k, v in parts.items())
        return f"about {self.total / GIB:.2f} GiB ({listed})"


def estimate(model: torch.nn.Module, rows: int, length: int, checkpointing: bool) -> Estimate:
    """``rows`` sequences of ``length`` tokens per forward (a batch and its extra rows)."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trained = [p for p in model.parameters() if p.requires_grad]
    gradients = sum(p.numel() * p.element_size() for p in trained)
    optimizer = sum(2 * p.numel() * 4 for p in trained)  # AdamW: two fp32 moments
    config: Any = getattr(model, "config", None)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    layers = int(getattr(config, "num_hidden_layers", 0) or 0)
    per_layer = rows * length * hidden * ACTIVATION_BYTES
    # checkpointing keeps each layer's input and recomputes one layer at a time
    activations = (
        (rows * length * hidden * 4 * layers + per_layer) if checkpointing else (per_layer * layers)
    )
    return Estimate(weights, gradients, optimizer, activations)


def available(device: torch.device) -> int | None:
    """Free bytes on ``device``: CUDA's free memory, or the host's available RAM."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits(need: Estimate, device: torch.device, free: int | None) -> None:
    """ValueError with the figures and what to change, when ``need`` exceeds ``free``."""
    if free is None or need.total <= free:
        return
    raise ValueError(
        f"this run needs {need.describe()} on {device}, which has {free / GIB:.2f} GiB free: "
        "try --lora, gradient_checkpointing, a smaller --batch-size with --grad-accum, a "
        "smaller --max-length, or a larger device"
    )
