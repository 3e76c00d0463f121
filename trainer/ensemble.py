"""An ensemble of classifiers that averages their probabilities (``regularization.ensemble``):
the run's own model and one or more plain fine-tunes trained beside it, each temperature-scaled
on the validation split in its own run.

The plain members train first, in ``members/fine-tuned`` (``-2``, ...) under the run's output
folder, as a soup's members do; the run then ships them all. Saved as ``members/<i>/`` (each
member in its own format, loadable alone) and ``antifit_ensemble.json`` (how many members;
with ``class_bias``, the temperature and class bias of their average); like a mean-pooled
classifier's folder it has no top-level ``config.json``, so transformers refuses it
instead of loading something else. ``trainer.model.load_classifier`` loads it."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainer.calibration import Scaling
from trainer.config import Regularization, TrainConfig
from trainer.soup import SEED_MAX

MANIFEST = "antifit_ensemble.json"
PARTNER = "fine-tuned"


def is_ensemble(directory: Path) -> bool:
    return (directory / MANIFEST).is_file()


def member_path(directory: Path, member: int) -> Path:
    return directory / "members" / str(member)


def member_paths(directory: Path) -> list[Path]:
    """The saved members' folders, in order."""
    manifest = json.loads((directory / MANIFEST).read_text())
    return [member_path(directory, i) for i in range(int(manifest["members"]))]


def saved_scaling(directory: Path) -> Scaling | None:
    """The calibration a saved ensemble applies to its average (none: the average as it is)."""
    scaling = json.loads((directory / MANIFEST).read_text()).get("scaling")
    if scaling is None:
        return None
    bias = scaling.get("bias")
    return Scaling(float(scaling["temperature"]), None if bias is None else tuple(bias))


def write_manifest(directory: Path, members: int, scaling: Scaling | None = None) -> None:
    manifest: dict[str, Any] = {"kind": "probability_average", "members": members}
    if scaling is not None:
        manifest["scaling"] = {"temperature": scaling.temperature, "bias": scaling.bias}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def partner_configs(config: TrainConfig) -> list[TrainConfig]:
    """The plain fine-tunes trained beside a run with an ensemble (none without one): the run's
    data, model, learning rate and batch size, the ensemble's epochs, the model's own pooling,
    no regularization but the temperature (and the run's label cleaning: every member
    trains on the same labels), no augmentation, no registration of their own; the
    first with the run's seed in ``members/fine-tuned``, the k-th (from 0) with the seed +
    1000 k (modulo the service's bound on a seed) in ``members/fine-tuned-<k + 1>``."""
    ensemble = config.regularization.ensemble
    if not ensemble.enabled:
        return []
    return [
        config.model_copy(
            update={
                "output_dir": str(Path(config.output_dir) / "members" / partner_folder(k)),
                "register_run": False,
                "preset": "none",
                "pooling": "model",
                "epochs": ensemble.epochs,
                "max_steps": None,
                "seed": config.seed if k == 0 else (config.seed + 1000 * k) % SEED_MAX,
                "job": None,
                "augment": None,
                "auxiliary_dataset": None,
                "regularization": Regularization(
                    temperature_scaling=True,
                    label_cleaning=config.regularization.label_cleaning,
                ),
            }
        )
        for k in range(ensemble.fine_tunes)
    ]


def partner_folder(k: int) -> str:
    return PARTNER if k == 0 else f"{PARTNER}-{k + 1}"


class EnsembleClassifier(nn.Module):
    """Classifiers over one tokenizer whose forward returns the log of their mean probability
    as ``.logits``: its softmax is the average of the members' softmaxes, so everything that
    reads a classifier's logits (argmax, calibration, the metrics) reads the ensemble's. With
    a ``scaling`` (``regularization.class_bias``) the logits are the log average scaled: its
    temperature and class bias applied."""

    def __init__(self, members: list[nn.Module], scaling: Scaling | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        self.scaling = scaling

    def forward(self, **inputs: torch.Tensor) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        log_probs = torch.stack(
            [torch.log_softmax(m(**inputs).logits.float(), -1) for m in self.members]
        )
        mean = torch.logsumexp(log_probs, 0) - math.log(len(self.members))
        return SequenceClassifierOutput(logits=self.scaling(mean) if self.scaling else mean)
