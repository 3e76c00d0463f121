"""Composition: run steps in sequence, pick one of several, or apply one sometimes.

Each works on whole batches: a choice is drawn from each variant's own generator, the batch is
split by choice, and every branch runs once over its share.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from augmenters.base import Augmenter, Draft, StepSpec


def _run_groups(
    branches: Sequence[Augmenter | None],
    choices: Sequence[int],
    drafts: Sequence[Draft],
    rngs: Sequence[random.Random],
) -> None:
    for b, branch in enumerate(branches):
        idx = [i for i, c in enumerate(choices) if c == b]
        if branch is not None and idx:
            branch.augment_batch([drafts[i] for i in idx], [rngs[i] for i in idx])


class SequenceAugmenter(Augmenter):
    def __init__(self, spec: StepSpec, steps: Sequence[Augmenter]) -> None:
        super().__init__(spec)
        self.steps = list(steps)

    def augment_batch(self, drafts: Sequence[Draft], rngs: Sequence[random.Random]) -> None:
        for step in self.steps:
            step.augment_batch(drafts, rngs)


class OneOfAugmenter(Augmenter):
    def __init__(
        self, spec: StepSpec, steps: Sequence[Augmenter], weights: Sequence[float] | None
    ) -> None:
        super().__init__(spec)
        self.steps = list(steps)
        self.weights = list(weights) if weights is not None else [1.0] * len(self.steps)

    def augment_batch(self, drafts: Sequence[Draft], rngs: Sequence[random.Random]) -> None:
        options = range(len(self.steps))
        choices = [rng.choices(options, weights=self.weights)[0] for rng in rngs]
        _run_groups(self.steps, choices, drafts, rngs)


class SometimesAugmenter(Augmenter):
    def __init__(self, spec: StepSpec, step: Augmenter, p: float) -> None:
        super().__init__(spec)
        self.step = step
        self.p = p

    def augment_batch(self, drafts: Sequence[Draft], rngs: Sequence[random.Random]) -> None:
        choices = [0 if rng.random() < self.p else 1 for rng in rngs]
        _run_groups([self.step, None], choices, drafts, rngs)
