from pathlib import Path

import torch

from trainer.config import Dropout
from trainer.model import load_classifier


def test_local_model_with_configured_dropout_and_dynamic_padding(tiny_mlm: Path) -> None:
    clf = load_classifier(
        tiny_mlm, ["neg", "pos", 7], Dropout(hidden=0.3, attention=0.2, classifier=0.4)
    )
    config = clf.model.config
    assert (
        config.hidden_dropout_prob,
        config.attention_probs_dropout_prob,
        config.classifier_dropout,
    ) == (0.3, 0.2, 0.4)
    assert clf.model.dropout.p == 0.4
    items = [
        {"text": "the cat sat", "label": "pos"},
        {"text": "the battery lasts two days and charging is quick", "label": 7},
    ]
    batch = clf.encode([item["text"] for item in items], max_length=64)
    assert batch["input_ids"].shape[1] < 64  # padded to the longest text only
    assert clf.label_ids(items).tolist() == [1, 2]
    clf.model.eval()
    with torch.no_grad():
        out = clf.model(**batch)
    assert out.logits.shape == (2, 3)


def test_default_model_is_the_packaged_minilm() -> None:
    clf = load_classifier(None, [0, 1])
    assert clf.model.config.model_type == "bert" and clf.model.config.num_hidden_layers == 6
    n_params = sum(p.numel() for p in clf.model.bert.parameters())
    assert 22_000_000 < n_params < 23_500_000
