"""Confident learning (Northcutt et al., 2021) against wrong training labels: every training
text is scored by a model that never saw its label — logistic regression on the frozen
pretrained encoder's sentence embeddings, fitted on the other folds — and a text is suspect
when that model is confidently sure of another class: its probability of a class other than
its label reaches the class's threshold (the mean probability the class's own texts get) and
exceeds the probability of its label. Suspect texts train without their label (they stay in
the batches for whatever needs no label); the model never learns to reproduce a wrong label
because it never sees it as a target. The cleaning applies only where a probe fitted without
the suspects scores a validation loss lower, by more than ``min_z`` standard errors of the
per-text difference, than one fitted on every label.

A fine-tuned model memorises flipped labels whatever the regularizer (docs/benchmarks.md: ~0.9
of them at 16 texts a class); a frozen encoder's linear model cannot, which is what makes its
out-of-fold disagreement informative."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from trainer.regularizers.probe import fit_probe


@dataclass(frozen=True)
class Suspects:
    """The out-of-fold verdict on each of n training texts."""

    suspect: torch.Tensor  # [n] bool
    probabilities: torch.Tensor  # [n, classes], out of fold

    def suggested(self) -> torch.Tensor:
        """The class the out-of-fold model prefers for each text."""
        return self.probabilities.argmax(-1)


def fold_of(n: int, folds: int, seed: int) -> torch.Tensor:
    """Each of n texts' fold, from a seeded permutation (no global random state)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=generator)
    fold = torch.empty(n, dtype=torch.long)
    fold[order] = torch.arange(n) % folds
    return fold


def out_of_fold(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    folds: int,
    l2: float,
    seed: int,
    draws: int = 1,
) -> torch.Tensor:
    """Every row's class probabilities from a probe fitted on the other folds, averaged over
    ``draws`` fold assignments (draw r seeded ``seed + r``): one draw's verdict on a text
    depends on which texts happened to share its fold."""
    probabilities = torch.zeros(len(y), n_classes)
    for draw in range(draws):
        fold = fold_of(len(y), folds, seed + draw)
        for k in range(folds):
            held = fold == k
            if held.all() or not held.any():
                continue
            weight, bias = fit_probe(x[~held], y[~held], n_classes, l2)
            probabilities[held] += F.softmax(x[held] @ weight.T + bias, -1)
    return probabilities / draws


def find_suspects(
    x: torch.Tensor,
    y: torch.Tensor,
    n_classes: int,
    *,
    folds: int,
    l2: float,
    seed: int,
    max_share: float,
    draws: int = 1,
) -> Suspects:
    """The texts whose label the out-of-fold model confidently disagrees with (cleanlab's
    confident joint, off its diagonal); of each class's texts at most ``max_share``, the
    least likely labels first, so that no class loses most of its examples."""
    p = out_of_fold(F.normalize(x.float(), dim=-1), y, n_classes, folds, l2, seed, draws)
    rows = torch.arange(len(y))
    given = p[rows, y]
    thresholds = torch.stack(
        [p[y == c, c].mean() if (y == c).any() else torch.tensor(1.0) for c in range(n_classes)]
    )
    confident_other = p >= thresholds
    confident_other[rows, y] = False
    rival = torch.where(confident_other, p, torch.zeros_like(p)).max(-1).values
    suspect = confident_other.any(-1) & (rival > given)
    for c in range(n_classes):
        mine = suspect & (y == c)
        cap = int(max_share * int((y == c).sum()))
        if int(mine.sum()) > cap:
            ranked = torch.where(mine, given, torch.full_like(given, 2.0)).argsort(stable=True)
            suspect[mine] = False
            suspect[ranked[:cap]] = True
    return Suspects(suspect, p)


def suspect_rows(
    items: list[dict[str, Any]], y: torch.Tensor, found: Suspects, labels: list[Any]
) -> list[dict[str, Any]]:
    """What ``suspect_labels.jsonl`` says of each suspect among ``items`` (labelled ``y``)."""
    suggested = found.suggested()
    return [
        {
            "id": items[i]["id"],
            "label": items[i]["label"],
            "suggested": labels[int(suggested[i])],
            "p_label": round(float(found.probabilities[i, y[i]]), 4),
            "p_suggested": round(float(found.probabilities[i].max()), 4),
            "text": items[i]["text"],
        }
        for i in found.suspect.nonzero().squeeze(-1).tolist()
    ]


@dataclass(frozen=True)
class ValidationCheck:
    """Validation cross-entropy of a probe fitted on every training label and of one fitted
    without the suspects', and the standard error of their per-text difference."""

    every_label: float
    without_suspects: float
    standard_error: float

    @property
    def z(self) -> float:
        """How many standard errors leaving the suspects out lowers the validation loss."""
        gain = self.every_label - self.without_suspects
        if self.standard_error > 0:
            return gain / self.standard_error
        return math.copysign(math.inf, gain) if gain else 0.0

    @classmethod
    def of(cls, every: torch.Tensor, without: torch.Tensor) -> ValidationCheck:
        """From the per-text losses of the two probes."""
        difference = every - without
        n = len(difference)
        error = float(difference.std() / math.sqrt(n)) if n > 1 else 0.0
        return cls(float(every.mean()), float(without.mean()), error)


def validation_logits(
    x: torch.Tensor,
    y: torch.Tensor,
    suspect: torch.Tensor,
    x_val: torch.Tensor,
    n_classes: int,
    l2: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The validation logits of a probe fitted on every training label and of one fitted
    without the suspects' (both on unit-length embeddings)."""
    x, x_val = F.normalize(x.float(), dim=-1), F.normalize(x_val.float(), dim=-1)

    def logits(keep: torch.Tensor) -> torch.Tensor:
        weight, bias = fit_probe(x[keep], y[keep], n_classes, l2)
        return x_val @ weight.T + bias

    return logits(torch.ones_like(suspect)), logits(~suspect)


def validation_check(
    x: torch.Tensor,
    y: torch.Tensor,
    suspect: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    n_classes: int,
    l2: float,
) -> ValidationCheck:
    """Does leaving the suspects out help a model on held-out labels? On clean data it does
    not beyond the noise, and where the encoder separates the classes poorly the suspects
    are as often right as wrong."""
    every, without = validation_logits(x, y, suspect, x_val, n_classes, l2)
    return ValidationCheck.of(
        F.cross_entropy(every, y_val, reduction="none"),
        F.cross_entropy(without, y_val, reduction="none"),
    )
