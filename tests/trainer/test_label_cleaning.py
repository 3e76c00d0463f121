"""Label cleaning: the out-of-fold probe finds flipped labels in separable data, leaves clean
data alone, respects its cap, and folds are drawn from the seed alone."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.regularizers.label_cleaning import (
    ValidationCheck,
    find_suspects,
    fold_of,
    out_of_fold,
    validation_check,
)

CLASSES = 3


def clusters(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Three well-separated Gaussian clusters in 16 dimensions, and their true labels."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.eye(16)[:CLASSES] * 8
    y = torch.arange(CLASSES).repeat_interleave(per_class)
    x = centres[y] + torch.randn(len(y), 16, generator=generator)
    return x, y


def flip(y: torch.Tensor, every: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every ``every``-th label moved to the next class; the mask of the flipped ones."""
    flipped = torch.arange(len(y)) % every == 0
    return torch.where(flipped, (y + 1) % CLASSES, y), flipped


def test_the_flipped_labels_are_the_suspects() -> None:
    x, y = clusters(20, seed=0)
    noisy, flipped = flip(y, every=5)  # 12 of 60
    found = find_suspects(x, noisy, CLASSES, folds=5, l2=1e-2, seed=0, max_share=0.5)
    assert torch.equal(found.suspect, flipped)
    assert torch.equal(found.suggested()[flipped], y[flipped])  # it names the true class
    assert found.probabilities.shape == (60, CLASSES)
    torch.testing.assert_close(found.probabilities.sum(-1), torch.ones(60))


def test_clean_labels_are_left_alone() -> None:
    x, y = clusters(20, seed=1)
    found = find_suspects(x, y, CLASSES, folds=5, l2=1e-2, seed=0, max_share=0.5)
    assert not found.suspect.any()


def test_the_cap_keeps_each_classes_least_likely_labels() -> None:
    x, y = clusters(20, seed=2)
    noisy, flipped = flip(y, every=5)  # 4 of each class's 20 texts
    uncapped = find_suspects(x, noisy, CLASSES, folds=5, l2=1e-2, seed=0, max_share=0.5)
    capped = find_suspects(x, noisy, CLASSES, folds=5, l2=1e-2, seed=0, max_share=0.1)
    given = capped.probabilities[torch.arange(60), noisy]
    for c in range(CLASSES):
        mine = noisy == c
        assert int((capped.suspect & mine).sum()) == 2 < int((uncapped.suspect & mine).sum())
        kept, dropped = (
            given[capped.suspect & mine],
            given[uncapped.suspect & ~capped.suspect & mine],
        )
        assert kept.max() <= dropped.min()


def test_the_validation_check_sees_that_leaving_out_flipped_labels_helps() -> None:
    x, y = clusters(20, seed=3)
    x_val, y_val = clusters(10, seed=4)
    noisy, flipped = flip(y, every=5)
    check = validation_check(x, noisy, flipped, x_val, y_val, CLASSES, 1e-2)
    assert check.without_suspects < check.every_label and check.z > 2
    nothing = torch.zeros(60, dtype=torch.bool)  # no suspects: the same probe twice
    same = validation_check(x, noisy, nothing, x_val, y_val, CLASSES, 1e-2)
    assert same.every_label == same.without_suspects == check.every_label and same.z == 0.0
    assert ValidationCheck(1.0, 0.9, 0.0).z == math.inf
    assert ValidationCheck(1.0, 0.9, 0.05).z == pytest.approx(2.0)


def test_folds_are_balanced_and_drawn_from_the_seed_alone() -> None:
    fold = fold_of(23, 4, seed=5)
    assert sorted(torch.bincount(fold).tolist()) == [5, 6, 6, 6]
    with torch.random.fork_rng():
        torch.manual_seed(0)  # the global generator plays no part
        assert torch.equal(fold, fold_of(23, 4, seed=5))
    assert not torch.equal(fold, fold_of(23, 4, seed=6))


def test_several_fold_draws_average_the_out_of_fold_probabilities() -> None:
    x, y = clusters(10, seed=1)
    x = torch.nn.functional.normalize(x, dim=-1)  # as find_suspects fits it
    noisy, _ = flip(y, every=4)
    one = [out_of_fold(x, noisy, CLASSES, 5, 1e-2, seed) for seed in (7, 8, 9)]
    averaged = out_of_fold(x, noisy, CLASSES, 5, 1e-2, seed=7, draws=3)
    torch.testing.assert_close(averaged, torch.stack(one).mean(0))
    assert not torch.allclose(one[0], one[1])  # the draws do differ
    found = find_suspects(x, noisy, CLASSES, folds=5, l2=1e-2, seed=7, max_share=0.5, draws=3)
    # find_suspects normalises again: the probe sees rounding-level differences
    torch.testing.assert_close(found.probabilities, averaged, atol=1e-4, rtol=0)
