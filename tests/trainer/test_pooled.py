"""The mean-pooled classifier: what its head reads, and the folder antifit saves it as."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from trainer.config import Dropout
from trainer.model import load_classifier
from trainer.pooled import ENCODER, HEAD, MANIFEST, mean_pool, write_sentence_encoder
from trainer.regularizers.adversarial import DomainClassifier
from trainer.regularizers.probe import features
from trainer.task_module import TaskModule

SHORT, LONG = "the cat sat", "the battery lasts two days and charging is quick"


def test_mean_pool_ignores_padding() -> None:
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_the_head_reads_the_mean_of_real_tokens_whatever_the_padding(tiny_mlm: Path) -> None:
    clf = load_classifier(tiny_mlm, ["neg", "pos", "odd"], Dropout(classifier=0.3), None, True)
    assert clf.pooling == "mean" and clf.model.dropout.p == 0.3
    assert not [n for n, _ in clf.model.named_parameters() if "pooler" in n]  # never read
    clf.model.eval()
    padded = clf.encode([SHORT, LONG], 64)
    assert padded["attention_mask"][0, -1] == 0  # the short text is padded on the right
    with torch.no_grad():
        alone = clf.model(**clf.encode([SHORT], 64)).logits
        together = clf.model(**padded).logits
        head = DomainClassifier(clf.model.config.hidden_size)
        module = TaskModule(clf.model, head, "mean").eval()
        from_embeds = module.logits_from_embeds(module.embed(padded["input_ids"]), padded)
        pooled = clf.model.embeddings(**padded)
        out = module(padded, n_task=2, lam=1.0)
    torch.testing.assert_close(together[0], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_embeds, together)
    assert out.domain is not None  # the domain head reads what the classifier reads
    torch.testing.assert_close(out.domain, module.domain_head(pooled, 1.0))
    x = features(clf.model, 3, [padded], lambda b: clf.model(**b))  # what the probe fits on
    torch.testing.assert_close(x, pooled)


def test_saved_and_loaded_it_predicts_the_same(tiny_mlm: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    clf = load_classifier(tiny_mlm, ["neg", "pos"], mean_pooling=True)
    with torch.no_grad():
        clf.model.classifier.weight.normal_(generator=torch.Generator().manual_seed(1))
    clf.model.save_pretrained(tmp_path)
    clf.tokenizer.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {ENCODER, HEAD, MANIFEST}
    loaded = load_classifier(tmp_path, ["neg", "pos"])  # found by its manifest
    assert loaded.pooling == "mean" and not loaded.model.normalize
    batch = clf.encode([SHORT, LONG], 64)
    with torch.no_grad():
        torch.testing.assert_close(
            loaded.model.eval()(**batch).logits, clf.model.eval()(**batch).logits
        )
    # a plain transformers classifier does not load it with a random head: it fails
    with pytest.raises((OSError, ValueError)):
        AutoModelForSequenceClassification.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="3 classes, the data 2"):
        head = tmp_path / "other"
        load_classifier(tiny_mlm, list("abc"), mean_pooling=True).model.save_pretrained(head)
        clf.tokenizer.save_pretrained(head)
        load_classifier(head, ["neg", "pos"])


def test_normalized_the_head_reads_unit_length_embeddings_and_stays_so_saved(
    tiny_mlm: Path, tmp_path: Path
) -> None:
    clf = load_classifier(tiny_mlm, ["neg", "pos"], None, None, True, normalize=True)
    clf.model.eval()
    batch = clf.encode([SHORT, LONG], 64)
    with torch.no_grad():
        pooled = clf.model.embeddings(**batch)
        raw = mean_pool(clf.model.encoder(**batch).last_hidden_state, batch["attention_mask"])
        logits = clf.model(**batch).logits
    torch.testing.assert_close(pooled.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(pooled, raw / raw.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(features(clf.model, 2, [batch], lambda b: clf.model(**b)), pooled)
    clf.model.save_pretrained(tmp_path)
    clf.tokenizer.save_pretrained(tmp_path)
    loaded = load_classifier(tmp_path, ["neg", "pos"])  # no flag: the manifest says so
    assert loaded.model.normalize
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.eval()(**batch).logits, logits)


def test_a_decoder_is_not_mean_pooled(tiny_decoders: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="mean pooling is for encoders"):
        load_classifier(tiny_decoders["gpt2"], ["neg", "pos"], mean_pooling=True)


@pytest.mark.parametrize("normalize", [False, True])
def test_the_saved_encoder_is_a_sentence_transformer_embedding_as_the_head_reads(
    tiny_mlm: Path, tmp_path: Path, normalize: bool
) -> None:
    from sentence_transformers import SentenceTransformer

    clf = load_classifier(tiny_mlm, ["neg", "pos"], None, None, True, normalize=normalize)
    clf.model.save_pretrained(tmp_path)
    write_sentence_encoder(tmp_path, clf.model, clf.tokenizer, 64)
    st = SentenceTransformer(str(tmp_path / ENCODER), device="cpu")
    assert st.max_seq_length == 64
    embedded = st.encode([SHORT, LONG], convert_to_tensor=True)
    with torch.no_grad():
        read = clf.model.eval().embeddings(**clf.encode([SHORT, LONG], 64))
    torch.testing.assert_close(embedded, read, atol=1e-5, rtol=1e-4)
    assert torch.linalg.vector_norm(embedded, dim=-1).allclose(torch.ones(2)) == normalize
