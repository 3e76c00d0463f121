"""Evaluation metrics: loss (plain cross-entropy, whatever the training loss), accuracy,
macro-F1, and top-label expected calibration error with its direction."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    macro_f1: float
    ece: float
    confidence: float  # mean top-label probability

    @property
    def calibration(self) -> str:
        """Over-confident when the mean confidence exceeds the accuracy."""
        if abs(self.confidence - self.accuracy) < 1e-3:
            return "calibrated"
        return "over-confident" if self.confidence > self.accuracy else "under-confident"

    def as_dict(self, prefix: str) -> dict[str, float | str]:
        return {
            f"{prefix}_loss": self.loss,
            f"{prefix}_accuracy": self.accuracy,
            f"{prefix}_macro_f1": self.macro_f1,
            f"{prefix}_ece": self.ece,
            f"{prefix}_confidence": self.confidence,
            f"{prefix}_calibration": self.calibration,
        }


def macro_f1(predictions: torch.Tensor, labels: torch.Tensor, n_classes: int) -> float:
    scores = []
    for c in range(n_classes):
        tp = int(((predictions == c) & (labels == c)).sum())
        fp = int(((predictions == c) & (labels != c)).sum())
        fn = int(((predictions != c) & (labels == c)).sum())
        if tp + fp + fn == 0:
            continue  # a class absent from both: not counted
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores) if scores else 0.0


@dataclass(frozen=True)
class Bin:
    """One bin of a reliability diagram: top-label confidences in (low, high]."""

    low: float
    high: float
    count: int
    accuracy: float
    confidence: float


def reliability(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> list[Bin]:
    """Equal-width confidence bins (the empty ones too) with their accuracy and mean
    confidence."""
    confidence, predictions = probs.max(dim=-1)
    correct = (predictions == labels).float()
    edges = torch.linspace(0, 1, bins + 1).tolist()
    out = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        n = int(in_bin.sum())
        out.append(
            Bin(
                low,
                high,
                n,
                float(correct[in_bin].mean()) if n else 0.0,
                float(confidence[in_bin].mean()) if n else 0.0,
            )
        )
    return out


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """Top-label ECE: sum over equal-width confidence bins of |accuracy - confidence|, weighted
    by the share of examples in the bin."""
    total = len(labels)
    return sum(
        b.count / total * abs(b.accuracy - b.confidence) for b in reliability(probs, labels, bins)
    )


def evaluate(logits: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> Evaluation:
    logits = logits.float()
    probs = F.softmax(logits, dim=-1)
    predictions = probs.argmax(dim=-1)
    return Evaluation(
        loss=float(F.cross_entropy(logits, labels)),
        accuracy=float((predictions == labels).float().mean()),
        macro_f1=macro_f1(predictions, labels, logits.shape[-1]),
        ece=expected_calibration_error(probs, labels, bins),
        confidence=float(probs.max(dim=-1).values.mean()),
    )
