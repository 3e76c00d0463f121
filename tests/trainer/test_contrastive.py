"""SetFit's contrastive stage: the pairs it draws, and that it pulls a class together."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from trainer.config import Contrastive
from trainer.regularizers.contrastive import draw_pairs, pair_loss, tune

LABELS = [0, 1, 2, 0, 1, 2, 0, 1, 0]


def test_pairs_one_positive_and_one_negative_per_text_and_iteration_never_self() -> None:
    pairs = draw_pairs(LABELS, Contrastive(iterations=7), seed=3)
    assert len(pairs) == 7 * 2 * len(LABELS)
    for i, j, target in pairs:
        assert i != j
        assert (LABELS[i] == LABELS[j]) == (target == 1.0)
    per_text = [sum(1 for i, _, t in pairs if i == k and t == 1.0) for k in range(len(LABELS))]
    assert per_text == [7] * len(LABELS)
    # every partner is reachable: over many draws each same-class text turns up
    partners = {j for i, j, t in draw_pairs(LABELS, Contrastive(iterations=50), 3) if i == 0}
    assert partners == set(range(1, len(LABELS)))


def test_pairs_are_a_function_of_the_seed_and_cut_to_max_pairs() -> None:
    settings = Contrastive(iterations=5)
    assert draw_pairs(LABELS, settings, 1) == draw_pairs(LABELS, settings, 1)
    assert draw_pairs(LABELS, settings, 1) != draw_pairs(LABELS, settings, 2)
    cut = draw_pairs(LABELS, Contrastive(iterations=5, max_pairs=10), 1)
    assert len(cut) == 10
    # one iteration (18 pairs) covers 10: only it is drawn, every text at most twice first
    assert cut == draw_pairs(LABELS, Contrastive(iterations=1), 1)[:10]
    assert max(Counter(i for i, _, _ in cut).values()) <= 2


def test_only_the_iterations_max_pairs_needs_are_drawn() -> None:
    labels = [i % 7 for i in range(20_000)]
    settings = Contrastive(iterations=100, max_texts=20_000, max_pairs=50_000)
    pairs = draw_pairs(labels, settings, 0)  # 2 iterations of 40,000, not 100
    assert len(pairs) == 50_000
    assert max(Counter(i for i, _, t in pairs if t == 1.0).values()) <= 2


def test_a_lone_text_gets_no_positive_and_one_class_no_negative() -> None:
    pairs = draw_pairs([0, 0, 1], Contrastive(iterations=2), 0)
    assert not [p for p in pairs if p[0] == 2 and p[2] == 1.0]  # class 1 has one text
    assert len([p for p in pairs if p[0] == 2]) == 2  # its negatives only
    assert all(t == 1.0 for _, _, t in draw_pairs([4, 4, 4], Contrastive(iterations=2), 0))


def test_oversampling_pairs_every_two_texts_and_balances_the_kinds() -> None:
    settings = Contrastive(sampling="oversampling")
    pairs = draw_pairs(LABELS, settings, seed=5)
    unordered = [frozenset((i, j)) for i, j, _ in pairs]
    everything = {frozenset((i, j)) for i in range(9) for j in range(i, 9)}
    assert set(unordered) == everything  # self pairs included
    for i, j, target in pairs:
        assert (LABELS[i] == LABELS[j]) == (target == 1.0)
    positives = [p for p, (_, _, t) in zip(unordered, pairs, strict=True) if t == 1.0]
    negatives = [p for p, (_, _, t) in zip(unordered, pairs, strict=True) if t == 0.0]
    assert len(negatives) == len(set(negatives)) == 26  # each negative pair once
    assert len(positives) == 26  # 19 positive pairs (9 with itself), repeated up to 26
    assert draw_pairs(LABELS, settings, 5) == pairs
    assert draw_pairs(LABELS, settings, 6) != pairs
    assert len(draw_pairs(LABELS, Contrastive(sampling="oversampling", max_pairs=7), 5)) == 7
    assert all(t == 1.0 for _, _, t in draw_pairs([4, 4], settings, 0))  # one class: no negatives


def test_oversampling_bounds_the_texts_it_pairs() -> None:
    Contrastive(sampling="oversampling", max_texts=3_000)
    with pytest.raises(ValidationError, match="max_texts at most 3000"):
        Contrastive(sampling="oversampling", max_texts=3_001)


class Bag(nn.Module):
    """Texts' embeddings from a bag of learned word vectors: enough to tune contrastively."""

    def __init__(self, words: list[str]) -> None:
        super().__init__()
        self.index = {w: i for i, w in enumerate(words)}
        self.vectors = nn.Embedding(len(words), 8)
        with torch.no_grad():
            self.vectors.weight.copy_(
                torch.randn(len(words), 8, generator=torch.Generator().manual_seed(0))
            )

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids = [torch.tensor([self.index[w] for w in t.split()]) for t in texts]
        return torch.stack([self.vectors(i).mean(0) for i in ids])


def test_tuning_pulls_a_class_together_and_pushes_classes_apart() -> None:
    texts = ["red apple", "red cherry", "green apple", "blue sky", "blue sea", "grey sky"]
    labels = [0, 0, 0, 1, 1, 1]
    model = Bag(sorted({w for t in texts for w in t.split()}))

    def margin() -> float:
        with torch.no_grad():
            e = F.normalize(model(texts), dim=-1)
        sim = e @ e.T
        same = torch.tensor([[a == b for b in labels] for a in labels]) & ~torch.eye(
            6, dtype=torch.bool
        )
        other = torch.tensor([[a != b for b in labels] for a in labels])
        return float(sim[same].mean() - sim[other].mean())

    before = margin()
    steps = tune(
        model,
        list(model.parameters()),
        texts,
        labels,
        Contrastive(iterations=20, learning_rate=0.05, batch_size=4),
        0,
    )
    assert steps == -(-(20 * 2 * 6) // 4)
    # the targets are 1 within a class and 0 across: a margin of 1 is all of it
    assert before < 0.75 and margin() > 0.9


def test_pair_loss_leaves_out_the_worst_fitting_pairs() -> None:
    similarity = torch.tensor([0.9, 0.5, 0.0, 0.8], requires_grad=True)
    target = torch.tensor([1.0, 0.0, 1.0, 1.0])
    assert pair_loss(similarity, target, 0.0) == F.mse_loss(similarity, target)
    loss = pair_loss(similarity, target, 0.5)  # errors .01 .25 1 .04: the two smallest stay
    assert float(loss.detach()) == pytest.approx((0.01 + 0.04) / 2)
    loss.backward()  # type: ignore[no-untyped-call]
    assert similarity.grad is not None
    assert similarity.grad[1] == 0 and similarity.grad[2] == 0 and similarity.grad[0] != 0
    # one pair stays, however many are dropped
    assert float(pair_loss(similarity, target, 0.9).detach()) == pytest.approx(0.01)


@pytest.mark.parametrize("share", [-0.1, 0.95, 1.0, float("nan")])
def test_drop_hardest_is_refused_outside_its_bounds(share: float) -> None:
    with pytest.raises(ValidationError, match="drop_hardest"):
        Contrastive(drop_hardest=share)


def test_dropping_the_hardest_pairs_keeps_a_mislabelled_text_out_of_the_wrong_class() -> None:
    texts = ["red apple", "red cherry", "green apple", "blue sky", "blue sea", "grey sky"]
    labels = [0, 0, 1, 1, 1, 1]  # "green apple" labelled as a sky

    def pull(drop_hardest: float) -> float:
        """How close the mislabelled text ends to the texts of the class it was given."""
        model = Bag(sorted({w for t in texts for w in t.split()}))
        settings = Contrastive(
            iterations=20, learning_rate=0.05, batch_size=8, drop_hardest=drop_hardest
        )
        tune(model, list(model.parameters()), texts, labels, settings, 0)
        with torch.no_grad():
            e = F.normalize(model(texts), dim=-1)
        return float((e[2] @ e[3:].T).mean())

    assert pull(0.3) < pull(0.0) - 0.2


def test_best_weights_keeps_the_best_scored_ones_the_start_included() -> None:
    from trainer.regularizers.contrastive import BestWeights

    model = nn.Linear(2, 1)
    scores = iter([(0.5, -1.0), (0.7, -0.5), (0.7, -0.9)])
    best = BestWeights(lambda: next(scores), evaluations=2)
    seen = {}
    best.start(model)
    for step in range(1, 5):  # 4 steps, scored every 2 and at the end
        with torch.no_grad():
            model.weight.fill_(step)
        seen[step] = model.weight.clone()
        best.update(model, step, 4)
    # scored: the start, step 2, step 4; the tie on accuracy goes to the lower loss
    assert best.restore(model) == (2, "accuracy 0.700, loss 0.5000")
    assert torch.equal(model.weight, seen[2])
    unscored = BestWeights(lambda: (1.0, 0.0), evaluations=0)
    unscored.start(model)
    unscored.update(model, 1, 1)
    assert unscored.restore(model) is None
