"""The regularized step: with nothing on it is plain fine-tuning; with Mixout the weights still
save and load as a plain model; the evaluated weights (the average's too) can be put back."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from trainer.checkpoint import snapshot
from trainer.config import Averaging, Dropout, Mixout, Regularization
from trainer.model import load_classifier
from trainer.regularizers.mixout import MixoutLinear
from trainer.step import Stepper

NO_DROPOUT = Dropout(hidden=0.0, attention=0.0, classifier=0.0)
TEXTS = ["the cat sat on the mat", "support answered within an hour", "terrible instructions"]


def test_no_regularizer_is_a_plain_adamw_step(tiny_mlm: Path) -> None:
    ours = load_classifier(tiny_mlm, [0, 1], NO_DROPOUT)
    peer = load_classifier(tiny_mlm, [0, 1], NO_DROPOUT)
    peer.model.load_state_dict(ours.model.state_dict())
    inputs = ours.encode(TEXTS, 16)
    labels = torch.tensor([0, 1, 1])

    stepper = Stepper(ours, Regularization(), learning_rate=1e-3, total_steps=100, grad_clip=None)
    optimizer = torch.optim.AdamW(peer.model.parameters(), lr=1e-3, weight_decay=0.0)
    for _ in range(2):
        objective = stepper.step(inputs, labels)
        peer.model.train()
        loss = F.cross_entropy(peer.model(**inputs).logits, labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        for group in optimizer.param_groups:  # the same linear decay over 100 steps
            group["lr"] = 1e-3 * (100 - stepper.steps_done) / 100
    assert abs(objective - float(loss.detach())) < 1e-6
    theirs = peer.model.state_dict()
    for name, value in ours.model.state_dict().items():
        assert torch.allclose(value, theirs[name], atol=1e-6), name


def test_mixout_model_saves_as_a_plain_one(tiny_mlm: Path, tmp_path: Path) -> None:
    clf = load_classifier(tiny_mlm, ["a", "b"])
    reg = Regularization(mixout=Mixout(enabled=True, p=0.3))
    stepper = Stepper(clf, reg, learning_rate=1e-3, total_steps=10)
    assert any(isinstance(m, MixoutLinear) for m in stepper.module.modules())
    stepper.step(clf.encode(TEXTS, 16), torch.tensor([0, 1, 0]))
    assert not any(k.endswith("target") for k in stepper.state_dict()["module"])
    clf.model.save_pretrained(tmp_path)

    from transformers import AutoModelForSequenceClassification

    plain, info = AutoModelForSequenceClassification.from_pretrained(
        tmp_path, output_loading_info=True
    )
    assert not info["unexpected_keys"] and not info["missing_keys"]
    for name, value in plain.state_dict().items():
        assert torch.equal(value, clf.model.state_dict()[name])


def test_the_weight_averages_best_state_puts_its_weights_back(tiny_mlm: Path) -> None:
    # the average's own parameters are frozen; the trained model says which ones to keep
    clf = load_classifier(tiny_mlm, ["a", "b"], NO_DROPOUT)
    reg = Regularization(averaging=Averaging(enabled=True, half_life=0.5))
    stepper = Stepper(clf, reg, learning_rate=1e-2, total_steps=10, steps_per_epoch=2)
    inputs, labels = clf.encode(TEXTS, 16), torch.tensor([0, 1, 0])
    stepper.step(inputs, labels)
    best = snapshot(stepper.evaluated_state())
    assert set(best) == set(stepper.evaluated.state_dict())
    before = stepper.predict(inputs)
    for _ in range(3):
        stepper.step(inputs, labels)
    assert not torch.allclose(stepper.predict(inputs), before)
    stepper.load_evaluated_state(best)
    torch.testing.assert_close(stepper.predict(inputs), before, rtol=0, atol=0)


def test_unlabelled_records_train_without_their_label(tiny_mlm: Path) -> None:
    """Label cleaning's suspects stay in the batch but out of the supervised loss."""
    ours = load_classifier(tiny_mlm, [0, 1], NO_DROPOUT)
    inputs = ours.encode(TEXTS, 16)
    labels = torch.tensor([0, 1, 1])
    stepper = Stepper(ours, Regularization(), learning_rate=1e-3, total_steps=10, grad_clip=None)
    stepper.unlabelled = frozenset({"b"})
    with torch.no_grad():
        logits = ours.model(**inputs).logits
    expected = F.cross_entropy(logits[[0, 2]], labels[[0, 2]])
    objective = stepper.accumulate(inputs, labels, ids=["a", "b", "c"])
    assert abs(objective - float(expected)) < 1e-6
    stepper.optimizer.zero_grad(set_to_none=True)
    # a batch of suspects only: nothing to learn, no NaN
    stepper.unlabelled = frozenset({"a", "b", "c"})
    assert stepper.accumulate(inputs, labels, ids=["a", "b", "c"]) == 0.0
    grads = [p.grad for p in ours.model.parameters() if p.grad is not None]
    assert grads and all(not g.any() for g in grads)
