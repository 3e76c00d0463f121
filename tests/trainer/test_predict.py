"""``antifit predict`` on saved models: a transformers classifier and an ensemble."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from antifit.cli import main
from tests.trainer.conftest import BAD, GOOD
from trainer.ensemble import member_path, write_manifest
from trainer.evalset import predict_items
from trainer.model import load_classifier
from trainer.predict import saved_labels

LABELS = ["neg", "pos"]


def saved(tiny_mlm: Path, directory: Path, mean_pooling: bool) -> None:
    clf = load_classifier(tiny_mlm, LABELS, mean_pooling=mean_pooling)
    with torch.no_grad():  # a head that tells texts apart
        head = clf.model.classifier.weight
        head.normal_(generator=torch.Generator().manual_seed(3))
    clf.model.save_pretrained(directory)
    clf.tokenizer.save_pretrained(directory)


@pytest.fixture
def ensemble(tiny_mlm: Path, tmp_path: Path) -> Path:
    model = tmp_path / "model"
    saved(tiny_mlm, member_path(model, 0), mean_pooling=True)
    saved(tiny_mlm, member_path(model, 1), mean_pooling=False)
    write_manifest(model, 2)
    return model


def write(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_it_predicts_what_the_loaded_model_does_and_scores_labelled_records(
    ensemble: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert saved_labels(ensemble) == LABELS == saved_labels(member_path(ensemble, 1))
    records = [{"id": "a", "text": GOOD, "label": "pos"}, {"id": "b", "text": BAD, "label": "neg"}]
    data = write(tmp_path / "in.jsonl", records)
    out = tmp_path / "out" / "predictions.jsonl"
    assert main(["predict", str(data), "--model", str(ensemble), "-o", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    clf = load_classifier(ensemble, LABELS)
    expected = predict_items(clf, records, 128)[0].softmax(-1)
    assert [r["id"] for r in rows] == ["a", "b"]
    for row, probabilities in zip(rows, expected, strict=True):
        assert row["probabilities"] == pytest.approx(
            dict(zip(LABELS, probabilities.tolist(), strict=True)), abs=1e-5
        )
        assert row["label"] == LABELS[int(probabilities.argmax())]
    assert "2 labelled records: accuracy" in capsys.readouterr().err
    # unlabelled records (and stdout): predictions only
    data = write(tmp_path / "bare.jsonl", [{"text": GOOD}, {"text": BAD, "label": "maybe"}])
    assert main(["predict", str(data), "--model", str(member_path(ensemble, 1))]) == 0
    printed = capsys.readouterr()
    assert [json.loads(line)["id"] for line in printed.out.splitlines()] == ["1", "2"]
    assert "not scored" in printed.err


def test_bad_input_is_refused_with_where_and_nothing_written(
    ensemble: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.jsonl"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": GOOD}) + "\n{not json\n")
    model = ["--model", str(ensemble), "-o", str(out)]
    assert main(["predict", str(bad), *model]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    no_text = write(tmp_path / "no_text.jsonl", [{"body": GOOD}])
    assert main(["predict", str(no_text), *model]) == 2
    assert "no_text.jsonl:1: field 'text'" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.jsonl"), *model]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "empty.jsonl").write_text("\n")
    assert main(["predict", str(tmp_path / "empty.jsonl"), *model]) == 2
    assert "empty.jsonl: no records" in capsys.readouterr().err
    good = write(tmp_path / "good.jsonl", [{"text": GOOD}])
    assert main(["predict", str(good), "--model", str(tmp_path), "-o", str(out)]) == 2
    assert "holds no classifier antifit can load" in capsys.readouterr().err
    assert main(["predict", str(good), *model, "--max-length", "100000"]) == 2
    assert "--max-length must be" in capsys.readouterr().err
    assert not out.exists()
