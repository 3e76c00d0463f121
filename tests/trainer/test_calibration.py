"""Temperature scaling: the fitted temperature, and folding it into a model's head."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainer.calibration import fit_temperature, fold_temperature, nll


def test_fit_recovers_the_temperature_the_labels_were_drawn_with() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 4, generator=g) * 4
    for true in (0.5, 2.0):
        labels = torch.multinomial(F.softmax(logits / true, -1), 1, generator=g).squeeze(1)
        fitted = fit_temperature(logits, labels)
        assert fitted == pytest.approx(true, rel=0.1)
        assert nll(logits, labels, fitted) <= nll(logits, labels, 1.0)
    assert fit_temperature(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)) == 1.0


def test_folding_divides_the_logits() -> None:
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    before = model(x).detach()
    fold_temperature(model, 3, 2.5)
    assert torch.allclose(model(x), before / 2.5, atol=1e-6)
    with pytest.raises(ValueError, match="one output per class"):
        fold_temperature(model, 7, 2.0)
