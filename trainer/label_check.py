"""Label cleaning's verdict on a classifier's training labels (``regularization.label_cleaning``,
``trainer.regularizers.label_cleaning``): the frozen encoder embeds the training and validation
texts, the out-of-fold probe names the suspects, the validation check says whether leaving them
out helps. What a training run applies, what ``antifit labels`` lists without training, and what
``bench/label_cleaning.py`` measures against known flips."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from trainer.config import LabelCleaning, TrainConfig
from trainer.distributed import choose_device
from trainer.evalset import EvalSet
from trainer.model import Classifier, load_classifier
from trainer.pooled import mean_pool
from trainer.regularizers.label_cleaning import (
    ValidationCheck,
    find_suspects,
    suspect_rows,
    validation_check,
)
from trainer.service import Service
from trainer.task_module import Inputs

SUSPECTS = "suspect_labels.jsonl"  # where a training run lists the suspects


@dataclass(frozen=True)
class LabelVerdict:
    """The suspects among ``checked`` training texts (``suspect_labels.jsonl``'s rows), the
    validation check (None when off or nothing is suspect) and whether the cleaning applies;
    with each checked text's given class and out-of-fold probabilities, in the order checked."""

    checked: int
    rows: list[dict[str, Any]]
    check: ValidationCheck | None
    applied: bool
    given: torch.Tensor  # [checked] class indices
    probabilities: torch.Tensor  # [checked, classes]

    def unlabelled(self) -> frozenset[str]:
        """The ids of the records that train without their label."""
        return frozenset(str(row["id"]) for row in self.rows) if self.applied else frozenset()

    def summary(self) -> dict[str, Any]:
        """The training report's ``label_cleaning``."""
        check = self.check
        return {
            "checked": self.checked,
            "suspects": len(self.rows),
            "unlabelled": len(self.rows) if self.applied else 0,
            "validation_check": {**asdict(check), "z": check.z} if check else None,
            "file": SUSPECTS,
        }

    def sentence(self, listed: str = SUSPECTS) -> str:
        """One log line (the suspects ``listed`` in that file)."""
        found = f"{len(self.rows)} of {self.checked} training labels look wrong ({listed}); "
        if self.applied:
            return found + "those texts train without their label"
        if not self.rows:
            return found + "every label kept"
        return (
            found + "every label kept: leaving them out does not lower a probe's validation "
            "loss beyond the noise"
        )


def sentence_embeddings(model: Any, inputs: Inputs) -> torch.Tensor:
    """A classifier's mean-pooled last hidden states: a sentence encoder's embedding."""
    hidden = model(**inputs, output_hidden_states=True).hidden_states[-1]
    return mean_pool(hidden, inputs["attention_mask"])


@torch.no_grad()
def check_labels(
    classifier: Classifier,
    train: Sequence[dict[str, Any]],
    validation: Sequence[dict[str, Any]],
    settings: LabelCleaning,
    *,
    seed: int,
    max_length: int,
    batch_size: int,
    device: torch.device,
) -> LabelVerdict:
    """Label cleaning's verdict on ``train``'s labels, from ``classifier``'s encoder as it is
    (eval mode, moved to ``device``). Deterministic: the same records, seed and weights give
    the same verdict on every rank."""
    model = classifier.model.to(device)
    model.eval()
    n_classes = len(classifier.labels)

    def embedded(items: Sequence[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
        texts = EvalSet.build(classifier, list(items), max_length, batch_size)
        return texts.logits(lambda inputs: sentence_embeddings(model, inputs), device), texts.labels

    x, y = embedded(train)
    found = find_suspects(
        x,
        y,
        n_classes,
        folds=settings.folds,
        draws=settings.fold_draws,
        l2=settings.l2,
        seed=seed,
        max_share=settings.max_share,
    )
    rows = suspect_rows(list(train), y, found, classifier.labels)
    check = None
    if settings.validation_check and rows and validation:
        check = validation_check(x, y, found.suspect, *embedded(validation), n_classes, settings.l2)
    applied = bool(rows) and (check is None or check.z > settings.min_z)
    return LabelVerdict(len(train), rows, check, applied, y, found.probabilities)


def checked_records(service: Service, config: TrainConfig) -> list[dict[str, Any]]:
    """The training records label cleaning checks: all of them, or a seeded draw of
    ``max_texts``."""
    limit = config.regularization.label_cleaning.max_texts
    return service.originals(config.dataset, "train", limit=limit, seed=config.seed)


def served_verdict(config: TrainConfig) -> LabelVerdict:
    """The verdict a training run with ``config`` would reach on its dataset's labels (its
    service, model, seed, maximum length and ``regularization.label_cleaning`` settings)."""
    service = Service(config.service, config.api_key)
    labels = service.labels(service.dataset(config.dataset))
    settings, device = config.regularization.label_cleaning, choose_device(config.device)
    return check_labels(
        load_classifier(config.model, labels),
        checked_records(service, config),
        service.originals(config.dataset, "validation"),
        settings,
        seed=config.seed,
        max_length=config.max_length,
        batch_size=config.evaluation_batch(device.type),
        device=device,
    )
