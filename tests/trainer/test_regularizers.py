"""The math of each regularizer unit."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainer.regularizers.adversarial import DomainClassifier, dann_lambda, reverse_gradient
from trainer.regularizers.early_stopping import EarlyStopping
from trainer.regularizers.label_smoothing import LabelSmoother
from trainer.regularizers.mixout import MixoutLinear, apply_mixout
from trainer.regularizers.weight_decay import L2SP, decayed_parameters, param_groups


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)  # local generators only, never the global one


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(4, 8), nn.LayerNorm(8), nn.Dropout(0.1), nn.Linear(8, 8)
        )
        self.classifier = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(x))  # type: ignore[no-any-return]


def test_no_decay_on_biases_and_norm_weights() -> None:
    model = Tiny()
    decay, rest = decayed_parameters(model)
    assert {id(p) for p in decay} == {
        id(model.encoder[0].weight),
        id(model.encoder[3].weight),
        id(model.classifier.weight),
    }
    assert len(rest) == 5  # three biases, the LayerNorm's weight and bias
    groups = param_groups(model, 0.01)
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]


def test_l2sp_decays_toward_the_pretrained_weights() -> None:
    model = Tiny()
    l2sp = L2SP(model, strength=0.5)
    w0 = model.classifier.weight.detach().clone()
    with torch.no_grad():
        model.classifier.weight.add_(1.0)
        bias0 = model.classifier.bias.detach().clone()
        model.classifier.bias.add_(1.0)
    l2sp.step(lr=0.1)
    # w - w0 shrinks by exactly (1 - lr * strength); biases are not pulled
    assert torch.allclose(model.classifier.weight - w0, torch.full_like(w0, 0.95))
    assert torch.allclose(model.classifier.bias, bias0 + 1.0)
    assert l2sp.distance() == pytest.approx(0.95**2 * w0.numel(), rel=1e-5)


def test_label_smoothing_matches_its_formula_and_torch() -> None:
    logits = torch.randn(6, 4, generator=gen(0))
    labels = torch.tensor([0, 3, 1, -100, 2, 2])
    eps = 0.2
    got = LabelSmoother(eps)(logits, labels)
    keep = labels != -100
    logp = F.log_softmax(logits[keep], -1)
    target = torch.full_like(logp, eps / 4)
    target[torch.arange(5), labels[keep]] += 1 - eps
    assert got == pytest.approx(float(-(target * logp).sum(-1).mean()), rel=1e-6)
    assert got == pytest.approx(
        float(F.cross_entropy(logits, labels, label_smoothing=eps)), rel=1e-6
    )
    assert LabelSmoother(0.0)(logits, labels) == pytest.approx(
        float(F.cross_entropy(logits, labels))
    )


def test_mixout_expected_weight_is_the_current_weight() -> None:
    base = nn.Linear(5, 3)
    layer = MixoutLinear(base, p=0.4)
    with torch.no_grad():
        layer.weight.add_(torch.randn(3, 5, generator=gen(1)))  # W differs from U
    g = gen(2)
    total = torch.zeros(3, 5)
    n = 20000
    for _ in range(n):
        mask = torch.rand(5, generator=g) >= layer.p
        total += layer.mixed_weight(mask).detach()
    assert torch.allclose(total / n, layer.weight.detach(), atol=0.03)


def test_mixout_gradient_is_the_true_gradient() -> None:
    layer = MixoutLinear(nn.Linear(4, 2), p=0.3)
    with torch.no_grad():
        layer.weight.add_(0.5)
    mask = torch.tensor([1, 0, 1, 1], dtype=torch.bool)
    x = torch.randn(7, 4, generator=gen(3))
    out = F.linear(x, layer.mixed_weight(mask), layer.bias)
    upstream = torch.randn(out.shape, generator=gen(4))
    out.backward(upstream)
    # d out / d W through W~ = (M W + ...)/(1-p): the mixed weight's gradient times M/(1-p)
    grad_mixed = upstream.t() @ x
    expected = grad_mixed * mask.float().unsqueeze(0) / (1 - layer.p)
    assert torch.allclose(layer.weight.grad, expected, atol=1e-6)
    assert not torch.allclose(layer.weight.grad, grad_mixed * mask.float().unsqueeze(0))


def test_mixout_eval_uses_the_weights_as_they_are() -> None:
    base = nn.Linear(4, 2)
    layer = MixoutLinear(base, p=0.9).eval()
    x = torch.randn(3, 4, generator=gen(5))
    assert torch.equal(layer(x), base(x))
    layer.train()
    assert not torch.equal(layer(x), base(x))  # masks resampled in training


def test_apply_mixout_replaces_linears_and_switches_dropout_off() -> None:
    model = Tiny()
    replaced = apply_mixout(model, 0.1, select=lambda name, _: name.startswith("encoder"))
    assert replaced == ["encoder.0", "encoder.3"]
    assert isinstance(model.encoder[0], MixoutLinear) and type(model.classifier) is nn.Linear
    assert model.encoder[2].p == 0.0


def test_gradient_reversal_is_exactly_minus_lambda() -> None:
    x = torch.randn(3, 5, generator=gen(6), requires_grad=True)
    w = torch.randn(5, generator=gen(7))
    (x * w).sum().backward()
    plain = x.grad.clone()
    x.grad = None
    y = reverse_gradient(x, 0.37)
    assert torch.equal(y, x)
    (y * w).sum().backward()
    assert torch.equal(x.grad, -0.37 * plain)
    logits = DomainClassifier(5)(x, 0.5)
    assert logits.shape == (3, 2)


def test_dann_lambda_schedule() -> None:
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_lambda(0.5) > dann_lambda(0.1)


def test_early_stopping_patience_min_delta_and_state() -> None:
    stop = EarlyStopping(mode="min", patience=2, min_delta=0.01)
    assert stop.update(1.0, step=1)
    assert not stop.update(0.995, step=2)  # not better by min_delta
    assert stop.update(0.9, step=3) and stop.best_step == 3
    assert not stop.update(0.95, step=4) and not stop.stopped
    state = stop.state_dict()
    assert not stop.update(0.95, step=5) and stop.stopped
    again = EarlyStopping()
    again.load_state_dict(state)
    assert again.best == 0.9 and again.bad_evaluations == 1 and not again.stopped
    up = EarlyStopping(metric="val_accuracy", mode="max", patience=1)
    assert up.update(0.5, 1) and not up.update(0.5, 2) and up.stopped
    with pytest.raises(ValueError):
        EarlyStopping(patience=0)


class Encoder(nn.Module):
    """Embeddings (batch, tokens, hidden) -> logits, standing in for a transformer."""

    def __init__(self, hidden: int = 6, classes: int = 3) -> None:
        super().__init__()
        self.head = nn.Linear(hidden, classes)

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(embeds).mean(dim=1))  # type: ignore[no-any-return]


def test_smart_perturbation_stays_in_the_epsilon_ball() -> None:
    from trainer.regularizers.smoothness import SMART

    model = Encoder()
    embeds = torch.randn(4, 5, 6, generator=gen(8))
    clean = model(embeds)
    for steps in (1, 3):
        for eps in (1e-3, 1e-1):
            smart = SMART(epsilon=eps, sigma=1.0, eta=10.0, steps=steps)  # eta far past eps
            delta = smart.perturbation(model, embeds, clean, generator=gen(9))
            assert (delta.flatten(1).norm(dim=1) <= eps * (1 + 1e-5)).all()
    reg = SMART(epsilon=0.5, sigma=0.1, eta=0.5, steps=2)(model, embeds, clean, generator=gen(10))
    assert reg > 0
    reg.backward()
    assert model.head.weight.grad is not None  # the regularizer trains the model


def test_smoothness_regularizers_are_zero_for_a_constant_model() -> None:
    from trainer.regularizers.smoothness import R3F, SMART

    bias = nn.Parameter(torch.tensor([0.3, -1.0, 2.0]))

    def constant(embeds: torch.Tensor) -> torch.Tensor:
        return bias.expand(embeds.shape[0], 3) + 0 * embeds.sum()

    embeds = torch.randn(3, 4, 6, generator=gen(11))
    clean = constant(embeds)
    assert SMART(epsilon=1.0, sigma=0.5, steps=2)(constant, embeds, clean, gen(12)).item() == 0.0
    assert R3F(sigma=0.5)(constant, embeds, clean, gen(13)).item() == 0.0
    assert SMART(kind="mse")(constant, embeds, clean, gen(14)).item() == 0.0


def test_symmetric_kl_and_the_momentum_teacher() -> None:
    from trainer.regularizers.smoothness import MomentumTeacher, symmetric_kl

    a = torch.randn(4, 3, generator=gen(15))
    b = torch.randn(4, 3, generator=gen(16))
    assert float(symmetric_kl(a, a)) == pytest.approx(0.0, abs=1e-7)
    assert symmetric_kl(a, b) == pytest.approx(float(symmetric_kl(b, a)), rel=1e-6)
    p, q = F.softmax(a, -1), F.softmax(b, -1)
    manual = ((p * (p / q).log()).sum(-1) + (q * (q / p).log()).sum(-1)).mean()
    assert float(symmetric_kl(a, b)) == pytest.approx(float(manual), rel=1e-5)

    student = Encoder()
    teacher = MomentumTeacher(student, beta=0.9, mu=2.0)
    before = teacher.teacher.head.weight.clone()
    with torch.no_grad():
        student.head.weight[0].add_(1.0)  # one class only: a shift of every logit would cancel
    teacher.update(student)
    assert torch.allclose(teacher.teacher.head.weight, 0.9 * before + 0.1 * student.head.weight)
    assert not any(p.requires_grad for p in teacher.teacher.parameters())
    x = torch.randn(2, 5, 6, generator=gen(17))
    assert teacher.penalty(student(x), teacher.teacher(x)).item() > 1e-6
