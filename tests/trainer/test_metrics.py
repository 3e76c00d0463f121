import math

import pytest
import torch

from trainer.metrics import evaluate, expected_calibration_error, macro_f1


def test_macro_f1_against_hand_counts() -> None:
    preds = torch.tensor([0, 0, 1, 1, 2, 2])
    labels = torch.tensor([0, 1, 1, 1, 2, 0])
    # class 0: tp1 fp1 fn1 -> 0.5; class 1: tp2 fp0 fn1 -> 0.8; class 2: tp1 fp1 fn0 -> 2/3
    assert macro_f1(preds, labels, 3) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert macro_f1(labels, labels, 5) == 1.0  # absent classes are not counted


def test_ece_of_a_perfectly_calibrated_and_an_overconfident_model() -> None:
    # 10 examples at confidence 0.8, 8 right: calibrated in their bin
    probs = torch.tensor([[0.8, 0.2]] * 10)
    labels = torch.tensor([0] * 8 + [1] * 2)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-6)
    # confidence 0.9 but half right: ECE 0.4, over-confident
    probs = torch.tensor([[0.9, 0.1]] * 10)
    labels = torch.tensor([0] * 5 + [1] * 5)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4, abs=1e-6)
    logits = torch.log(probs)
    result = evaluate(logits, labels)
    assert result.calibration == "over-confident" and result.accuracy == 0.5
    assert result.loss == pytest.approx(-(math.log(0.9) + math.log(0.1)) / 2, rel=1e-5)
    assert set(result.as_dict("val")) >= {"val_loss", "val_ece", "val_calibration"}
