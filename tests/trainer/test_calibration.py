"""Temperature scaling and its class bias (BCTS): the fitted scaling, and folding it into a
model's head."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainer.calibration import Scaling, fit_scaling, fit_temperature, fold_scaling, nll


def test_fit_recovers_the_temperature_the_labels_were_drawn_with() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 4, generator=g) * 4
    for true in (0.5, 2.0):
        labels = torch.multinomial(F.softmax(logits / true, -1), 1, generator=g).squeeze(1)
        fitted = fit_temperature(logits, labels)
        assert fitted == pytest.approx(true, rel=0.1)
        assert nll(logits, labels, fitted) <= nll(logits, labels, 1.0)
    assert fit_temperature(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)) == 1.0


def test_the_class_bias_moves_the_priors_the_labels_were_drawn_with() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 3, generator=g) * 3
    true_bias = torch.tensor([1.0, -0.5, -0.5])
    drawn = F.softmax(logits / 2.0 + true_bias, -1)
    labels = torch.multinomial(drawn, 1, generator=g).squeeze(1)
    alone = fit_scaling(logits, labels, class_bias=False)
    assert alone == Scaling(fit_temperature(logits, labels))  # no bias: the temperature alone
    fitted = fit_scaling(logits, labels, class_bias=True)
    assert fitted.temperature == pytest.approx(2.0, rel=0.1)
    assert fitted.bias is not None
    torch.testing.assert_close(torch.tensor(fitted.bias), true_bias, atol=0.15, rtol=0)
    assert F.cross_entropy(fitted(logits), labels) < F.cross_entropy(alone(logits), labels)
    assert fit_scaling(logits, labels, class_bias=True) == fitted  # deterministic
    # labels drawn with no bias: none is fitted
    unbiased = torch.multinomial(F.softmax(logits / 2.0, -1), 1, generator=g).squeeze(1)
    assert max(map(abs, fit_scaling(logits, unbiased, class_bias=True).bias or (9,))) < 0.15
    empty = fit_scaling(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), class_bias=True)
    assert empty == Scaling(1.0, (0.0, 0.0, 0.0))


def test_folding_scales_the_logits_and_adds_the_bias() -> None:
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    before = model(x).detach()
    fold_scaling(model, 3, Scaling(2.5))
    assert torch.allclose(model(x), before / 2.5, atol=1e-6)
    fold_scaling(model, 3, Scaling(1.0, (1.0, 0.0, -2.0)))
    assert torch.allclose(model(x), before / 2.5 + torch.tensor([1.0, 0.0, -2.0]), atol=1e-6)
    with pytest.raises(ValueError, match="one output per class"):
        fold_scaling(model, 7, Scaling(2.0))
    with pytest.raises(ValueError, match="no bias to take the class bias"):
        fold_scaling(nn.Linear(4, 3, bias=False), 3, Scaling(1.0, (0.0, 0.0, 1.0)))
