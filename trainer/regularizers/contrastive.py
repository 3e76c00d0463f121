"""SetFit's contrastive stage (Tunstall et al. 2022): tune the mean-pooled sentence embeddings
on pairs of training texts, same class to cosine similarity 1, other class to 0 (mean squared
error), before a head is fitted on them.

The pairs are drawn by a generator seeded from the run's seed, so a run draws the same pairs
whatever the machine; dropout masks come from torch's run generator as in the loop."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from trainer.checkpoint import snapshot
from trainer.config import Contrastive
from trainer.lora import load_trainable_state, trainable_state
from trainer.regularizers.weight_decay import adamw
from trainer.step import linear_schedule

Pair = tuple[int, int, float]  # two texts' positions, the target cosine similarity


def draw_pairs(labels: Sequence[int], settings: Contrastive, seed: int) -> list[Pair]:
    """The stage's pairs as ``settings.sampling`` says, shuffled, then cut to ``max_pairs``."""
    generator = torch.Generator().manual_seed(seed)
    if settings.sampling == "oversampling":
        first, second, target = _oversampled(labels, generator)
    else:
        per_iteration = 2 * len(labels)  # at most: iterations past max_pairs would be cut
        iterations = min(settings.iterations, -(-settings.max_pairs // max(per_iteration, 1)))
        first, second, target = _iterated(labels, iterations, generator)
    order = torch.randperm(len(first), generator=generator)[: settings.max_pairs]
    chosen = (first[order].tolist(), second[order].tolist(), target[order].tolist())
    return list(zip(*chosen, strict=True))


Pairs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # first, second, target


def _iterated(labels: Sequence[int], iterations: int, generator: torch.Generator) -> Pairs:
    """Per iteration and text, a positive pair (another text of its class, when the class has
    one) and a negative one (a text of another class, when there is one)."""
    n = len(labels)
    grouped = sorted(range(n), key=lambda i: (labels[i], i))  # each class a contiguous run
    where = {i: p for p, i in enumerate(grouped)}
    size = Counter(labels)
    start: dict[int, int] = {}
    for p, i in enumerate(grouped):
        start.setdefault(labels[i], p)

    def pick(candidates: int) -> int:
        return int(torch.randint(candidates, (1,), generator=generator))

    pairs: list[Pair] = []
    for _ in range(iterations):
        for i, label in enumerate(labels):
            first, count = start[label], size[label]
            if count > 1:  # a member of i's run other than i: skip past i's own place
                p = first + pick(count - 1)
                pairs.append((i, grouped[p + (p >= where[i])], 1.0))
            if n > count:  # a place outside i's run
                p = pick(n - count)
                pairs.append((i, grouped[p + count * (p >= first)], 0.0))
    table = torch.tensor(pairs, dtype=torch.float64).reshape(-1, 3)
    return table[:, 0].long(), table[:, 1].long(), table[:, 2]


def _oversampled(labels: Sequence[int], generator: torch.Generator) -> Pairs:
    """SetFit's ``oversampling``: every pair of texts once, a text with itself included; the
    kind with fewer pairs (usually the positive) repeated, in a shuffled order, to as many as
    the other."""
    y = torch.tensor(list(labels))
    first, second = torch.triu_indices(len(y), len(y))  # offset 0: the diagonal too
    same = y[first] == y[second]
    kinds = [k for k in (same.nonzero().squeeze(1), (~same).nonzero().squeeze(1)) if len(k)]
    count = max(len(k) for k in kinds)
    chosen = torch.cat(
        [
            k[torch.randperm(len(k), generator=generator)].repeat(-(-count // len(k)))[:count]
            for k in kinds
        ]
    )
    return first[chosen], second[chosen], same[chosen].float()


def tune(
    embed: Callable[[list[str]], torch.Tensor],
    parameters: list[torch.nn.Parameter],
    texts: Sequence[str],
    labels: Sequence[int],
    settings: Contrastive,
    seed: int,
    on_progress: Callable[[int, int, float], None] | None = None,
) -> int:
    """One pass over the pairs; ``embed`` gives a batch of texts' mean-pooled embeddings (in
    training mode, on the model's device). Returns the number of steps taken."""
    pairs = draw_pairs(labels, settings, seed)
    size = settings.batch_size
    steps = -(-len(pairs) // size)
    optimizer = adamw(parameters, settings.learning_rate)
    schedule = linear_schedule(optimizer, int(0.1 * steps), steps)
    for step, start in enumerate(range(0, len(pairs), size), 1):
        chunk = pairs[start : start + size]
        a = embed([texts[i] for i, _, _ in chunk])
        b = embed([texts[j] for _, j, _ in chunk])
        target = torch.tensor([t for _, _, t in chunk], device=a.device)
        loss = pair_loss(F.cosine_similarity(a.float(), b.float()), target, settings.drop_hardest)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        schedule.step()
        if on_progress is not None:
            on_progress(step, steps, loss.item())
    return steps


def pair_loss(similarity: torch.Tensor, target: torch.Tensor, drop_hardest: float) -> torch.Tensor:
    """Mean squared error of the pairs' cosine similarities, over the ``1 - drop_hardest``
    share of them that fits best (at least one)."""
    if not drop_hardest:
        return F.mse_loss(similarity, target)
    errors = (similarity - target).square()
    kept = max(1, round((1 - drop_hardest) * len(errors)))
    return errors.topk(kept, largest=False, sorted=False).values.mean()


class BestWeights:
    """Keeps the contrastive stage's best weights: scored before the first step and
    ``evaluations`` times spread over the pass (0: no scoring, the last weights stay)."""

    def __init__(self, score: Callable[[], tuple[float, float]], evaluations: int) -> None:
        self.score, self.evaluations = score, evaluations
        self.best: tuple[float, float] | None = None
        self.step = 0
        self.state: dict[str, torch.Tensor] | None = None

    def start(self, model: Any) -> None:
        """Score the weights before the stage: they are candidates too."""
        if self.evaluations:
            self._consider(model, 0)

    def update(self, model: Any, step: int, total: int) -> None:
        """After step ``step`` of ``total``: score the weights when one is due."""
        if not self.evaluations:
            return
        every = max(1, total // self.evaluations)
        if step % every == 0 or step == total:
            self._consider(model, step)

    def _consider(self, model: Any, step: int) -> None:
        score = self.score()
        if self.best is None or score > self.best:
            self.best, self.step = score, step
            self.state = snapshot(trainable_state(model))

    def restore(self, model: Any) -> tuple[int, str] | None:
        """Load the best weights; (their step, their validation scores), or None unscored."""
        if self.best is None or self.state is None:
            return None
        load_trainable_state(model, self.state)
        accuracy, loss = self.best
        return self.step, f"accuracy {accuracy:.3f}, loss {-loss:.4f}"
