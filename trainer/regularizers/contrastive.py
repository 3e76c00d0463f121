"""SetFit's contrastive stage (Tunstall et al. 2022): tune the mean-pooled sentence embeddings
on pairs of training texts, same class to cosine similarity 1, other class to 0 (mean squared
error), before a head is fitted on them.

The pairs are drawn by a generator seeded from the run's seed, so a run draws the same pairs
whatever the machine; dropout masks come from torch's run generator as in the loop. A text is
never paired with itself (SetFit's own sampler may: a pair that teaches nothing)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from trainer.config import Contrastive
from trainer.step import linear_schedule

Pair = tuple[int, int, float]  # two texts' positions, the target cosine similarity


def draw_pairs(labels: Sequence[int], settings: Contrastive, seed: int) -> list[Pair]:
    """Per iteration and text, a positive pair (another text of its class, when the class has
    one) and a negative one (a text of another class, when there is one); shuffled, then cut
    to ``max_pairs``."""
    generator = torch.Generator().manual_seed(seed)
    n = len(labels)
    grouped = sorted(range(n), key=lambda i: (labels[i], i))  # each class a contiguous run
    where = {i: p for p, i in enumerate(grouped)}
    start: dict[int, int] = {}
    size: dict[int, int] = {}
    for p, i in enumerate(grouped):
        start.setdefault(labels[i], p)
        size[labels[i]] = size.get(labels[i], 0) + 1

    def pick(candidates: int) -> int:
        return int(torch.randint(candidates, (1,), generator=generator))

    pairs: list[Pair] = []
    for _ in range(settings.iterations):
        for i, label in enumerate(labels):
            first, count = start[label], size[label]
            if count > 1:  # a member of i's run other than i: skip past i's own place
                p = first + pick(count - 1)
                pairs.append((i, grouped[p + (p >= where[i])], 1.0))
            if n > count:  # a place outside i's run
                p = pick(n - count)
                pairs.append((i, grouped[p + count * (p >= first)], 0.0))
    order = torch.randperm(len(pairs), generator=generator).tolist()
    return [pairs[i] for i in order[: settings.max_pairs]]


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
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=0.01)
    schedule = linear_schedule(optimizer, int(0.1 * steps), steps)
    for step, start in enumerate(range(0, len(pairs), size), 1):
        chunk = pairs[start : start + size]
        a = embed([texts[i] for i, _, _ in chunk])
        b = embed([texts[j] for _, j, _ in chunk])
        target = torch.tensor([t for _, _, t in chunk], device=a.device)
        loss = F.mse_loss(F.cosine_similarity(a.float(), b.float()), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        schedule.step()
        if on_progress is not None:
            on_progress(step, steps, float(loss))
    return steps
