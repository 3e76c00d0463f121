"""Model soups (Wortsman et al. 2022): the members' configurations, and the average of their
saved weights with the run's own.

Member 0 is the run itself; members 1..n-1 train first, each in ``members/<m>`` under the
run's output folder, from the same initial weights (the model is built under the run's seed
before a member's own generator takes over) with their own batch order and dropout masks. The
run then averages its best weights with theirs, evaluates the average and calibrates it."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from trainer.config import Soup, TrainConfig

SEED_MAX = 2**31 - 1  # the service's bound on a stream's seed
MEMBER_STRIDE = 1_000_003


def member_seed(seed: int, member: int) -> int:
    """The seed of a member's batch order and dropout masks; member 0's is the run's own."""
    return seed if member == 0 else (seed + member * MEMBER_STRIDE) % SEED_MAX


def member_dir(output_dir: str | Path, member: int) -> Path:
    return Path(output_dir) / "members" / str(member)


def member_configs(config: TrainConfig) -> list[TrainConfig]:
    """The configurations of members 1..n-1: the run's, with their index and folder, no soup
    of their own, no temperature scaling (the average is calibrated once) and no
    registration (the run registers itself)."""
    reg = config.regularization
    members = reg.soup.members
    own = reg.model_copy(update={"soup": Soup(), "temperature_scaling": False, "class_bias": False})
    return [
        config.model_copy(
            update={
                "member": m,
                "output_dir": str(member_dir(config.output_dir, m)),
                "register_run": False,
                "regularization": own,
            }
        )
        for m in range(1, members)
    ]


def saved_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    """The tensors ``save_pretrained`` wrote (one file or shards), by parameter name."""
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no safetensors weights in {model_dir}")
    weights: dict[str, torch.Tensor] = {}
    for file in files:
        weights.update(load_file(str(file)))
    return weights


@torch.no_grad()
def average_into(model: nn.Module, model_dirs: list[Path]) -> None:
    """Replace ``model``'s floating-point weights by the mean of its own and those saved in
    ``model_dirs`` (models of the same architecture). Names a save leaves out (weights tied to
    another) follow the tensor they share."""
    state = model.state_dict()
    sums = {
        name: tensor.detach().to(torch.float32, copy=True)
        for name, tensor in state.items()
        if tensor.is_floating_point()
    }
    counts = dict.fromkeys(sums, 1)
    for directory in model_dirs:
        for name, tensor in saved_weights(directory).items():
            if name in sums:
                sums[name] += tensor.to(sums[name].device, torch.float32)
                counts[name] += 1
    n = len(model_dirs) + 1
    partial = [name for name, count in counts.items() if 1 < count < n]
    if partial:
        raise ValueError(f"the members' saved weights differ in their names: {partial[:3]}")
    averaged = {
        name: (total / n).to(state[name].dtype) for name, total in sums.items() if counts[name] == n
    }
    model.load_state_dict(averaged, strict=False)
