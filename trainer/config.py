"""The training configuration: one typed model with a nested regularization section, saved with
every checkpoint and report; presets and recommendations build it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WeightDecay(Section):
    """Decoupled AdamW decay (biases and norm weights excluded); ``l2sp`` decays toward the
    pretrained weights instead of toward zero."""

    rate: float = Field(default=0.0, ge=0.0)
    l2sp: bool = False


class Dropout(Section):
    """None keeps the model's own value."""

    hidden: float | None = Field(default=None, ge=0.0, lt=1.0)
    attention: float | None = Field(default=None, ge=0.0, lt=1.0)
    classifier: float | None = Field(default=None, ge=0.0, lt=1.0)


class Mixout(Section):
    enabled: bool = False
    p: float = Field(default=0.1, ge=0.0, lt=1.0)


class Smart(Section):
    enabled: bool = False
    weight: float = Field(default=1.0, ge=0.0, description="lambda_s")
    epsilon: float = Field(default=1e-2, gt=0.0)
    sigma: float = Field(default=1e-5, gt=0.0)
    eta: float = Field(default=1e-3, gt=0.0)
    steps: int = Field(default=1, ge=1)
    teacher: bool = Field(default=True, description="Bregman proximal point term")
    beta: float = Field(default=0.99, ge=0.0, lt=1.0)
    mu: float = Field(default=1.0, ge=0.0)


class R3F(Section):
    enabled: bool = False
    weight: float = Field(default=1.0, ge=0.0)
    sigma: float = Field(default=1e-5, gt=0.0)
    noise: Literal["normal", "uniform"] = "normal"


class DomainAdversarial(Section):
    enabled: bool = False
    auxiliary_dataset: str | None = Field(default=None, description="general-domain dataset id")
    weight: float = Field(default=0.1, ge=0.0)

    @model_validator(mode="after")
    def _needs_data(self) -> DomainAdversarial:
        if self.enabled and not self.auxiliary_dataset:
            raise ValueError("domain-adversarial training needs auxiliary_dataset")
        return self


class EarlyStopping(Section):
    enabled: bool = False
    metric: str = "val_loss"
    mode: Literal["min", "max"] = "min"
    patience: int = Field(default=3, ge=1)
    min_delta: float = Field(default=0.0, ge=0.0)


class Regularization(Section):
    weight_decay: WeightDecay = WeightDecay()
    dropout: Dropout = Dropout()
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    augmented: bool = Field(default=False, description="train on the augmented version's batches")
    mixout: Mixout = Mixout()
    smart: Smart = Smart()
    r3f: R3F = R3F()
    domain_adversarial: DomainAdversarial = DomainAdversarial()
    early_stopping: EarlyStopping = EarlyStopping()

    @model_validator(mode="after")
    def _one_smoothness(self) -> Regularization:
        if self.smart.enabled and self.r3f.enabled:
            raise ValueError("choose SMART or R3F, not both")
        return self


PresetName = Literal["none", "basic", "enhanced", "advanced"]


def preset(name: PresetName, auxiliary_dataset: str | None = None) -> Regularization:
    """The presets the product is built on: ``basic`` = weight decay + dropout + early stopping;
    ``enhanced`` = basic + label smoothing + augmented batches; ``advanced`` = enhanced + Mixout
    + SMART, or + domain-adversarial training when an auxiliary domain is given."""
    if name == "none":
        return Regularization()
    basic = Regularization(
        weight_decay=WeightDecay(rate=0.01),
        dropout=Dropout(hidden=0.1, attention=0.1, classifier=0.1),
        early_stopping=EarlyStopping(enabled=True),
    )
    if name == "basic":
        return basic
    enhanced = basic.model_copy(update={"label_smoothing": 0.1, "augmented": True})
    if name == "enhanced":
        return enhanced
    if auxiliary_dataset:
        return enhanced.model_copy(
            update={
                "mixout": Mixout(enabled=True, p=0.1),
                "domain_adversarial": DomainAdversarial(
                    enabled=True, auxiliary_dataset=auxiliary_dataset
                ),
            }
        )
    return enhanced.model_copy(
        update={"mixout": Mixout(enabled=True, p=0.1), "smart": Smart(enabled=True)}
    )


Scenario = Literal["plenty-of-compute", "little-compute", "cross-domain", "very-small-dataset"]
SCENARIOS: dict[str, tuple[PresetName, str]] = {
    "plenty-of-compute": (
        "advanced",
        "SMART's adversarial smoothness and Mixout give the largest gains on small data but cost "
        "~2.6-3x the step time of plain fine-tuning; with compute to spare they pay off.",
    ),
    "little-compute": (
        "enhanced",
        "weight decay, dropout, label smoothing and augmented batches add almost nothing per "
        "step; early stopping saves epochs. (R3F, ~1.9x a step, is the cheap smoothness "
        "option if a little more compute is available.)",
    ),
    "cross-domain": (
        "advanced",
        "with an auxiliary general-domain dataset, domain-adversarial training (a gradient "
        "reversal layer and a domain classifier) keeps the representation domain-invariant; "
        "Mixout keeps the weights near the pretrained ones. Pass the auxiliary dataset id.",
    ),
    "very-small-dataset": (
        "advanced",
        "with a few examples per class a model memorises fast: Mixout and SMART stabilise "
        "fine-tuning near the pretrained weights, augmented batches multiply the data, and "
        "early stopping on validation loss restores the best weights.",
    ),
}


def recommend(
    scenario: Scenario, auxiliary_dataset: str | None = None
) -> tuple[PresetName, Regularization, str]:
    """A preset for a scenario, its configuration, and why."""
    name, why = SCENARIOS[scenario]
    if scenario != "cross-domain":
        return name, preset(name), why
    if not auxiliary_dataset:
        why += " No auxiliary dataset was given, so this falls back to Mixout + SMART."
    return name, preset(name, auxiliary_dataset), why
