"""The ensemble's arithmetic and its saved layout (the loop test trains and ships one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from trainer.ensemble import (
    EnsembleClassifier,
    is_ensemble,
    member_paths,
    write_manifest,
)


class Fixed(nn.Module):
    """A classifier whose logits are given."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, **inputs: torch.Tensor) -> Any:
        return type("Output", (), {"logits": self.logits[inputs["input_ids"][:, 0]]})


def test_its_probabilities_are_the_mean_of_its_members() -> None:
    a = torch.tensor([[4.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    b = torch.tensor([[0.0, 3.0, 0.0], [0.0, -20.0, 2.0]])
    ensemble = EnsembleClassifier([Fixed(a), Fixed(b)])
    logits = ensemble(input_ids=torch.tensor([[0], [1]])).logits
    expected = (a.softmax(-1) + b.softmax(-1)) / 2
    torch.testing.assert_close(logits.softmax(-1), expected)
    torch.testing.assert_close(logits.exp(), expected)  # already normalised: log-probabilities
    # confident members stay finite (no log of an underflowed probability)
    far = EnsembleClassifier([Fixed(torch.tensor([[200.0, -200.0]])), Fixed(torch.zeros(1, 2))])
    assert torch.isfinite(far(input_ids=torch.tensor([[0]])).logits).all()
    alone = EnsembleClassifier([Fixed(a)])
    torch.testing.assert_close(alone(input_ids=torch.tensor([[0], [1]])).logits, a.log_softmax(-1))
    with pytest.raises(ValueError, match="at least one member"):
        EnsembleClassifier([])


def test_the_manifest_names_its_members_in_order(tmp_path: Path) -> None:
    assert not is_ensemble(tmp_path)
    write_manifest(tmp_path, 2)
    assert is_ensemble(tmp_path)
    assert member_paths(tmp_path) == [tmp_path / "members" / "0", tmp_path / "members" / "1"]


def test_a_scaling_moves_the_average_and_travels_in_the_manifest(tmp_path: Path) -> None:
    from trainer.calibration import Scaling
    from trainer.ensemble import saved_scaling

    a = torch.tensor([[4.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    b = torch.tensor([[0.0, 3.0, 0.0], [0.0, -20.0, 2.0]])
    scaling = Scaling(2.0, (0.5, 0.0, -1.0))
    ensemble = EnsembleClassifier([Fixed(a), Fixed(b)], scaling)
    logits = ensemble(input_ids=torch.tensor([[0], [1]])).logits
    average = ((a.softmax(-1) + b.softmax(-1)) / 2).log()
    torch.testing.assert_close(logits, average / 2.0 + torch.tensor([0.5, 0.0, -1.0]))
    write_manifest(tmp_path, 2)
    assert saved_scaling(tmp_path) is None  # an ensemble saved without one
    write_manifest(tmp_path, 2, scaling)
    assert saved_scaling(tmp_path) == scaling
    write_manifest(tmp_path, 2, Scaling(1.5))
    assert saved_scaling(tmp_path) == Scaling(1.5)
