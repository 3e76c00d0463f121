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
from trainer.regularizers.weight_decay import L2SP, adamw, decayed_parameters, param_groups


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
    groups = param_groups(model, 0.01, learning_rate=1e-3)
    assert sorted(g["weight_decay"] for g in groups) == [0.0, 0.01]
    assert all(g["lr"] == 1e-3 for g in groups)


def test_layerwise_learning_rates() -> None:
    from trainer.regularizers.layers import depth, n_layers

    assert depth("bert.embeddings.word_embeddings.weight", 6) == 0
    assert depth("bert.encoder.layer.0.attention.self.query.weight", 6) == 1
    assert depth("model.layers.11.mlp.up_proj.weight", 12) == 12
    assert depth("classifier.weight", 6) == depth("bert.pooler.dense.bias", 6) == 7

    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.Embedding(5, 4)
            self.layer = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
            self.classifier = nn.Linear(4, 2)

    model = Stack()
    assert n_layers(model) == 3
    groups = param_groups(model, 0.01, learning_rate=1.0, layer_decay=0.5)
    lr = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert lr[id(model.classifier.weight)] == 1.0
    assert lr[id(model.layer[2].weight)] == lr[id(model.layer[2].bias)] == 0.5
    assert lr[id(model.layer[0].weight)] == 0.125 and lr[id(model.embeddings.weight)] == 0.0625
    decayed = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert decayed[id(model.layer[0].weight)] == 0.01 and decayed[id(model.layer[0].bias)] == 0.0


def test_adamw_is_fused_where_torch_has_the_kernel_and_steps_as_the_loop_does() -> None:
    fused_model, loop_model = Tiny(), Tiny()
    loop_model.load_state_dict(fused_model.state_dict())
    fused_model.eval()  # no dropout: both get the same gradients
    loop_model.eval()
    fused = adamw(param_groups(fused_model, 0.01, learning_rate=0.1), 0.1)
    assert fused.defaults["fused"]  # on CPU: 4x faster than the per-tensor loop for MiniLM
    loop = torch.optim.AdamW(param_groups(loop_model, 0.01, learning_rate=0.1), lr=0.1)
    for model, optimizer in ((fused_model, fused), (loop_model, loop)):
        for _ in range(3):
            model(torch.ones(2, 4)).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    for a, b in zip(fused_model.parameters(), loop_model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    on_meta = adamw([nn.Parameter(torch.zeros(2, device="meta"))], 0.1)
    assert not on_meta.defaults["fused"]


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
    # equal accuracy: the lower validation loss wins, without it the first stays
    tied = EarlyStopping(mode="max", patience=2, tie_metric="val_loss", tie_mode="min")
    assert tied.update(0.5, 1, tie=0.9) and tied.update(0.5, 2, tie=0.8)
    assert not tied.update(0.5, 3, tie=0.85) and tied.best_step == 2
    assert not tied.update(0.4, 4, tie=0.1) and tied.stopped
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


def test_weight_average_warms_up_and_copies_buffers() -> None:
    from trainer.regularizers.averaging import WeightAverage, half_life_decay

    assert half_life_decay(1.0) == 0.5 and half_life_decay(10.0) ** 10 == pytest.approx(0.5)
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    average = WeightAverage(model, decay=0.99, warmup=True)
    before = average.model[0].weight.clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(3.0)
    assert average.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    average.update(model)
    assert torch.allclose(average.model[0].weight, 0.1 * before + 0.9 * model[0].weight)
    assert torch.equal(average.model[1].running_mean, model[1].running_mean)
    assert not any(p.requires_grad for p in average.model.parameters())
    state = average.state_dict()
    again = WeightAverage(model, decay=0.99, warmup=True)
    again.load_state_dict(state)
    assert again.updates == 1 and again.current_decay() == pytest.approx(2 / 11)


def test_generalized_cross_entropy() -> None:
    from trainer.regularizers.robust_loss import generalized_cross_entropy

    logits = torch.randn(5, 3, generator=gen(20))
    labels = torch.tensor([0, 1, 2, 1, 0])
    p_y = F.softmax(logits, -1).gather(1, labels[:, None]).squeeze(1)
    assert float(generalized_cross_entropy(logits, labels, 1.0)) == pytest.approx(
        float((1 - p_y).mean()), rel=1e-6
    )
    # q -> 0 tends to cross-entropy
    near_ce = float(generalized_cross_entropy(logits, labels, 1e-4))
    assert near_ce == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-3)
    with pytest.raises(ValueError):
        generalized_cross_entropy(logits, labels, 0.0)


def test_early_learning_regularization() -> None:
    from trainer.regularizers.robust_loss import EarlyLearning

    elr = EarlyLearning(n_classes=3, beta=0.5, weight=2.0)
    logits = torch.randn(2, 3, generator=gen(21), requires_grad=True)
    labels = torch.tensor([0, 2])
    loss = elr(logits, labels, ["a", "b"])
    p = F.softmax(logits.detach(), -1).clamp(1e-4, 1 - 1e-4)
    p = p / p.sum(-1, keepdim=True)
    expected = (
        F.cross_entropy(logits.detach(), labels) + 2.0 * torch.log(1 - (p * p).sum(-1)).mean()
    )
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    loss.backward()
    # the target moves halfway toward the new prediction, per record id
    newer = torch.randn(1, 3, generator=gen(22))
    elr(newer, torch.tensor([1]), ["a"])
    q = F.softmax(newer, -1).clamp(1e-4, 1 - 1e-4)
    assert torch.allclose(elr.targets["a"], 0.5 * p[0] + 0.5 * (q / q.sum())[0], atol=1e-6)
    again = EarlyLearning(3)
    again.load_state_dict(elr.state_dict())
    assert again.targets.keys() == {"a", "b"} and torch.equal(again.targets["b"], elr.targets["b"])


def test_uda_consistency() -> None:
    from trainer.regularizers.consistency import uda_consistency

    original = torch.tensor([[2.0, 0.0, 0.0], [0.1, 0.0, 0.0]])
    assert float(uda_consistency(original, original, temperature=1.0)) == pytest.approx(0, abs=1e-6)
    variant = torch.zeros(2, 3, requires_grad=True)
    loss = uda_consistency(variant, original, temperature=0.5)
    target = F.softmax(original / 0.5, -1)
    kl = (target * (target.log() - F.log_softmax(variant.detach(), -1))).sum(-1)
    assert float(loss.detach()) == pytest.approx(float(kl.mean()), rel=1e-5)
    loss.backward()
    assert variant.grad is not None and variant.grad.abs().sum() > 0
    # the second original is not confident enough: masked
    masked = uda_consistency(variant, original, temperature=0.5, threshold=0.5)
    assert float(masked.detach()) == pytest.approx(float(kl[0] / 2), rel=1e-5)
    assert float(uda_consistency(torch.zeros(0, 3), torch.zeros(0, 3))) == 0.0


def test_linear_probe_fits_the_head_on_frozen_features() -> None:
    from trainer.regularizers.probe import features, fit_probe, set_head

    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Dropout(0.5), nn.Linear(6, 3))
    x = torch.randn(60, 4, generator=gen(30))
    with torch.no_grad():
        model[3].weight.mul_(20.0)  # wide margins: labels a linear head on the features can fit
        y = model.eval()(x).argmax(-1)
    model.train()
    batches = [{"x": x[:32]}, {"x": x[32:]}]
    feats = features(model, 3, batches, lambda b: model(b["x"]))
    assert feats.shape == (60, 6) and model.training  # eval for the probe, train mode back
    assert torch.allclose(feats, torch.tanh(model[0](x)).detach(), atol=1e-6)  # no dropout
    weight, bias = fit_probe(feats, y, 3, l2=1e-4)
    set_head(model, 3, weight, bias)
    model.eval()
    assert (model(x).argmax(-1) == y).float().mean() > 0.95
    assert torch.equal(model[3].weight.detach(), weight)


def test_neftune_noise_is_bounded_uniform_in_training_and_off_in_eval() -> None:
    from trainer.regularizers.neftune import add_neftune

    embeddings = torch.nn.Embedding(50, 64)
    ids = torch.randint(0, 50, (4, 25))
    clean = embeddings(ids).detach()
    handle = add_neftune(embeddings, alpha=5.0)
    bound = 5.0 / (25 * 64) ** 0.5
    noise = embeddings(ids).detach() - clean
    assert noise.abs().max() <= bound + 1e-6
    assert abs(noise.abs().mean().item() - bound / 2) < bound * 0.05  # uniform: mean |x| = b/2
    embeddings.eval()
    assert torch.equal(embeddings(ids), clean)
    handle.remove()
    embeddings.train()
    assert torch.equal(embeddings(ids), clean)
