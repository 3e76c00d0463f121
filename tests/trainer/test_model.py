from pathlib import Path

import pytest
import torch

from tests.conftest import DECODERS
from trainer.config import Dropout
from trainer.model import load_classifier
from trainer.regularizers.adversarial import DomainClassifier
from trainer.regularizers.probe import features
from trainer.task_module import TaskModule


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


@pytest.mark.parametrize("kind", DECODERS)
def test_decoders_classify_from_their_last_token_whatever_the_padding(
    tiny_decoders: dict[str, Path], kind: str
) -> None:
    clf = load_classifier(tiny_decoders[kind], ["neg", "pos"])
    assert clf.pooling == "last" and clf.tokenizer.padding_side == "left"
    assert clf.tokenizer.pad_token == "<|endoftext|>"  # there was none: end-of-text serves
    assert clf.model.config.pad_token_id == clf.tokenizer.pad_token_id
    clf.model.eval()
    short, long = "the cat sat", "the battery lasts two days and charging is quick"
    with torch.no_grad():
        alone = clf.model(**clf.encode([short], 64)).logits
        padded = clf.encode([short, long], 64)
        assert padded["attention_mask"][0, 0] == 0  # padded on the left
        together = clf.model(**padded).logits
        # the smoothness regularizers' path: word embeddings in, no input_ids to find pads by
        module = TaskModule(clf.model, pooling=clf.pooling)
        from_embeds = module.logits_from_embeds(module.embed(padded["input_ids"]), padded)
    torch.testing.assert_close(together[0], alone[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(from_embeds, together, atol=1e-5, rtol=1e-5)


def test_an_encoder_keeps_first_token_pooling_and_right_padding(tiny_mlm: Path) -> None:
    clf = load_classifier(tiny_mlm, [0, 1])
    assert clf.pooling == "first" and clf.tokenizer.padding_side == "right"
    assert "position_ids" not in clf.encode(["a b", "a b c d"], 16)


def test_domain_head_and_probe_read_the_pooled_position(tiny_decoders: dict[str, Path]) -> None:
    clf = load_classifier(tiny_decoders["llama"], ["neg", "pos"])
    batch = clf.encode(["the cat sat", "the battery lasts two days"], 64)
    hidden = clf.model.config.hidden_size
    module = TaskModule(clf.model, DomainClassifier(hidden), clf.pooling).eval()
    with torch.no_grad():
        out = module(batch, n_task=2, lam=1.0)
        last = clf.model(**batch, output_hidden_states=True).hidden_states[-1][:, -1]
        assert out.domain is not None
        torch.testing.assert_close(out.domain, module.domain_head(last, 1.0))
    x = features(clf.model, 2, [batch], lambda b: clf.model(**b))
    assert x.shape == (2, hidden)
    torch.testing.assert_close(x, last.float())


def test_gpt2_dropout_names_are_set(tiny_decoders: dict[str, Path]) -> None:
    from trainer.generation import load_generator

    model = load_generator(tiny_decoders["gpt2"], Dropout(hidden=0.0, attention=0.25)).model
    config = model.config
    assert (config.resid_pdrop, config.embd_pdrop, config.attn_pdrop) == (0.0, 0.0, 0.25)
    assert model.transformer.drop.p == 0.0
