from pathlib import Path

import pytest
import torch

from antifit.cli import main
from trainer.label_check import SUSPECTS, LabelVerdict
from trainer.regularizers.label_cleaning import ValidationCheck

ROWS = [{"id": 3, "label": "a", "suggested": "b"}, {"id": "x7", "label": "b", "suggested": "a"}]
GIVEN, PROBABILITIES = torch.zeros(40, dtype=torch.long), torch.full((40, 2), 0.5)


def verdict_of(
    rows: list[dict[str, object]], check: ValidationCheck | None, applied: bool
) -> LabelVerdict:
    return LabelVerdict(40, rows, check, applied, GIVEN, PROBABILITIES)


def test_an_applied_verdict_leaves_the_suspects_unlabelled_and_says_so() -> None:
    check = ValidationCheck(every_label=1.0, without_suspects=0.7, standard_error=0.1)
    verdict = verdict_of(ROWS, check, applied=True)
    assert verdict.unlabelled() == frozenset({"3", "x7"})  # ids as the stream's records carry them
    summary = verdict.summary()
    assert summary["suspects"] == summary["unlabelled"] == 2 and summary["checked"] == 40
    assert summary["validation_check"]["z"] == check.z and summary["file"] == SUSPECTS
    assert verdict.sentence() == (
        f"2 of 40 training labels look wrong ({SUSPECTS}); those texts train without their label"
    )


def test_a_refused_verdict_keeps_every_label_and_says_why() -> None:
    check = ValidationCheck(every_label=1.0, without_suspects=0.99, standard_error=0.1)
    verdict = verdict_of(ROWS, check, applied=False)
    assert verdict.unlabelled() == frozenset()
    assert verdict.summary()["unlabelled"] == 0 and verdict.summary()["suspects"] == 2
    assert verdict.sentence().endswith("does not lower a probe's validation loss beyond the noise")
    nothing = verdict_of([], None, applied=False)
    assert nothing.sentence().endswith("every label kept")
    assert nothing.summary()["validation_check"] is None


def test_antifit_labels_refuses_generation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = ["labels", "--dataset", "d", "--task", "generation", "--model", str(tmp_path)]
    assert main(command) == 2
    assert "label cleaning checks a classifier's labels" in capsys.readouterr().err
