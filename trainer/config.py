"""The training configuration: one typed model with a nested regularization section, saved with
every checkpoint and report; presets and recommendations build it."""

from __future__ import annotations

from typing import Any, Literal

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


class SmartSettings(Section):
    enabled: bool = False
    weight: float = Field(default=1.0, ge=0.0, description="lambda_s")
    epsilon: float = Field(default=1e-2, gt=0.0)
    sigma: float = Field(default=1e-5, gt=0.0)
    eta: float = Field(default=1e-3, gt=0.0)
    steps: int = Field(default=1, ge=1)
    teacher: bool = Field(default=True, description="Bregman proximal point term")
    beta: float = Field(default=0.99, ge=0.0, lt=1.0)
    mu: float = Field(default=1.0, ge=0.0)


class R3FSettings(Section):
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


StopMetric = Literal[
    "val_loss",
    "val_calibrated_loss",
    "val_accuracy",
    "val_macro_f1",
    "val_ece",
    "gap_loss",
    "gap_accuracy",
]
HIGHER_IS_BETTER = ("val_accuracy", "val_macro_f1")


class EarlyStoppingSettings(Section):
    """``mode`` defaults to the metric's direction (max for accuracy and macro-F1).
    ``val_calibrated_loss`` is the validation cross-entropy after temperature scaling: a loss
    that label smoothing's under-confidence does not inflate. ``tie_break`` decides between
    evaluations whose metric is equal (accuracy on a small validation split often is).
    ``not_before``: the share of the planned steps before which the run never stops (the best
    is tracked all the same): a small model's validation accuracy can sit still for epochs
    before it moves."""

    enabled: bool = False
    metric: StopMetric = "val_loss"
    mode: Literal["min", "max"] | None = None
    patience: int = Field(default=3, ge=1)
    min_delta: float = Field(default=0.0, ge=0.0)
    tie_break: StopMetric | None = None
    not_before: float = Field(default=0.0, ge=0.0, le=1.0)

    @property
    def direction(self) -> Literal["min", "max"]:
        if self.mode is not None:
            return self.mode
        return direction(self.metric)


def direction(metric: StopMetric) -> Literal["min", "max"]:
    return "max" if metric in HIGHER_IS_BETTER else "min"


class Averaging(Section):
    """Evaluate and ship an exponential moving average of the weights (Polyak averaging)
    instead of the last ones. Its half-life is in epochs, so the same setting means the same
    averaging window whatever the dataset and batch size."""

    enabled: bool = False
    half_life: float = Field(default=0.5, gt=0.0, description="in epochs")


class RobustLoss(Section):
    """Losses that fit wrong labels late or not at all: generalized cross-entropy
    (Zhang & Sabuncu 2018, ``(1 - p_y^q) / q``) or early-learning regularization (Liu et al.
    2020: ``weight * log(1 - <p, t>)`` with t a per-record running average of the model's own
    predictions, momentum ``beta``)."""

    kind: Literal["none", "gce", "elr"] = "none"
    q: float = Field(default=0.7, gt=0.0, le=1.0)
    beta: float = Field(default=0.7, ge=0.0, lt=1.0)
    weight: float = Field(default=3.0, ge=0.0)


class Consistency(Section):
    """UDA-style consistency on augmented views (with ``augmented`` on; without augmented
    batches it has nothing to act on): the stream delivers each original with its variants in
    one batch, and each variant's prediction is pulled toward its original's
    (sharpened by ``temperature``, no gradient through it, masked below ``threshold``
    confidence) by ``weight * KL``. ``supervised_variants`` also trains the variants on the
    record's label."""

    enabled: bool = False
    weight: float = Field(default=1.0, ge=0.0)
    temperature: float = Field(default=0.4, gt=0.0, le=1.0)
    threshold: float = Field(default=0.0, ge=0.0, lt=1.0)
    supervised_variants: bool = True


class RDrop(Section):
    """R-Drop (Liang et al. 2021): two forwards under different dropout masks, both trained on
    the label, and ``weight`` times their symmetric KL."""

    enabled: bool = False
    weight: float = Field(default=1.0, ge=0.0)


class LinearProbe(Section):
    """LP-FT (Kumar et al. 2022): before fine-tuning, fit the classifier head by L2-penalised
    logistic regression on the frozen model's features of the training subset (of the
    contrastive stage's texts, when it ran). ``fine_tune`` off ships the probe: no steps
    after it, as SetFit ships its logistic regression on the tuned encoder."""

    enabled: bool = False
    l2: float = Field(default=1e-2, gt=0.0)
    fine_tune: bool = True


OVERSAMPLING_MAX_TEXTS = 3_000  # all pairs of 3,000 texts: 4.5 million, drawn as tensors


class Contrastive(Section):
    """SetFit's first stage (Tunstall et al. 2022), before anything else trains: the encoder's
    mean-pooled sentence embeddings are tuned on pairs of training texts, a pair of one class
    to cosine similarity 1 and of two classes to 0 (mean squared error, AdamW, 10% warm-up, one
    pass). Texts of one class move together and classes apart, so a head separates them from
    few examples. The pairs: ``iterations``, per iteration and text one pair with another text
    of its class and one with a text of another class; ``oversampling`` (SetFit's default),
    every pair of texts once (a text with itself too: under dropout, a positive pair that
    holds whatever the labels), the positive pairs repeated to as many as the negative ones."""

    enabled: bool = False
    sampling: Literal["iterations", "oversampling"] = "iterations"
    iterations: int = Field(
        default=20, ge=1, le=100, description="pairs per text: 2 x this (sampling 'iterations')"
    )
    normalize: bool = Field(
        default=False,
        description="the head reads the unit-length embedding, as SetFit's does: the stage "
        "tunes cosine similarity, which ignores length",
    )
    learning_rate: float = Field(default=2e-5, gt=0.0)
    batch_size: int = Field(default=16, ge=2, le=1024)
    max_texts: int = Field(
        default=2_000, ge=2, le=100_000, description="training originals drawn (seeded)"
    )
    max_pairs: int = Field(
        default=20_000,
        ge=2,
        le=1_000_000,
        description="pairs trained on, at most (with 'iterations', only the iterations this "
        "needs are drawn: every text in as many pairs)",
    )
    drop_hardest: float = Field(
        default=0.0,
        ge=0.0,
        le=0.9,
        description="share of each batch's pairs left out of its loss, those of the largest "
        "error: the small-loss criterion of co-teaching (Han et al. 2018) against label noise, "
        "where a wrongly labelled text makes pairs the encoder cannot fit. 0: every pair",
    )
    evaluations: int = Field(
        default=0,
        ge=0,
        le=100,
        description="times the embeddings are scored during the pass (and once before it): a "
        "probe fitted on the stage's texts, scored on the validation split; the best weights "
        "are kept. 0: no scoring, the weights at the end of the pass",
    )

    @model_validator(mode="after")
    def _pairs_bounded(self) -> Contrastive:
        if self.sampling == "oversampling" and self.max_texts > OVERSAMPLING_MAX_TEXTS:
            raise ValueError(
                f"sampling 'oversampling' pairs every two texts: max_texts at most "
                f"{OVERSAMPLING_MAX_TEXTS} (it is {self.max_texts})"
            )
        return self


class NEFTune(Section):
    """Noise on the input embeddings while training (Jain et al. 2023): uniform in
    ``[-b, b]``, ``b = alpha / sqrt(L * d)``."""

    enabled: bool = False
    alpha: float = Field(default=5.0, gt=0.0)


class Soup(Section):
    """A uniform model soup (Wortsman et al. 2022): ``members`` fine-tunes that start from the
    same weights (the same head initialisation) and differ only in batch order and dropout
    masks, each with its own early stopping; the shipped model is the average of their
    weights, one model of the usual size. It costs ``members`` times the training. At a few
    examples per class a fine-tune's accuracy swings by points from one training seed to the
    next (docs/benchmarks.md, the noise floor); the average of several swings less."""

    members: int = Field(default=1, ge=1, le=8)


class Ensemble(Section):
    """An ensemble with plain fine-tuning: besides the run, the model's own classifier (an
    encoder's [CLS], a decoder's last token) is fine-tuned without regularization on the same
    data (``epochs`` epochs; the learning rate and batch size of the run; ``fine_tunes`` times,
    the first with the run's seed), each model is temperature-scaled on the validation split,
    and the shipped model averages their probabilities. Two models that err differently
    (SetFit's probe on the tuned mean-pooled embedding, an end-to-end fine-tune of another
    representation) average above the better of them on few examples (docs/benchmarks.md). Each
    fine-tune costs its training and a model at inference."""

    enabled: bool = False
    epochs: int = Field(
        default=20,
        ge=1,
        le=1000,
        description="each plain fine-tune's epochs (the run's own epochs drive the run): 20, "
        "as measured at 16 texts a class",
    )
    fine_tunes: int = Field(
        default=1,
        ge=1,
        le=4,
        description="how many plain fine-tunes train beside the run, each with its own seed "
        "(the run's, then + 1000 each): every one averages away more of a single fine-tune's "
        "luck, at a fine-tune's training and a model at inference each",
    )


class LabelCleaning(Section):
    """Confident learning (Northcutt et al. 2021): before training, each training original is
    scored by logistic regression on the frozen encoder's mean-pooled sentence embeddings,
    fitted on the other ``folds``; the texts it confidently puts in another class train
    without their label (``suspect_labels.jsonl`` in the output folder lists them, with the
    class it suggests) — where leaving them out lowers a probe's validation loss beyond the
    noise (``validation_check``). Against wrongly labelled data; on clean data it leaves out a few
    hard texts' labels, or none."""

    enabled: bool = False
    folds: int = Field(default=8, ge=2, le=20)
    fold_draws: int = Field(
        default=1,
        ge=1,
        le=20,
        description="fold assignments the out-of-fold probabilities are averaged over",
    )
    l2: float = Field(default=1e-2, gt=0.0, description="the probe's L2 penalty")
    max_share: float = Field(
        default=0.5,
        gt=0.0,
        le=0.9,
        description="share of each class's texts left unlabelled, at most (the least likely "
        "labels first)",
    )
    validation_check: bool = Field(
        default=True,
        description="apply the cleaning only when a probe fitted without the suspects scores a "
        "validation loss lower than one fitted on every label, by more than min_z standard "
        "errors of the per-text difference",
    )
    min_z: float = Field(default=2.0, ge=0.0, le=10.0)
    max_texts: int = Field(
        default=20_000,
        ge=2,
        le=200_000,
        description="training originals checked (the first of a seeded shuffle); the rest keep "
        "their labels",
    )


class Regularization(Section):
    weight_decay: WeightDecay = WeightDecay()
    neftune: NEFTune = NEFTune()
    dropout: Dropout = Dropout()
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    augmented: bool = Field(default=False, description="train on the augmented version's batches")
    mixout: Mixout = Mixout()
    smart: SmartSettings = SmartSettings()
    r3f: R3FSettings = R3FSettings()
    domain_adversarial: DomainAdversarial = DomainAdversarial()
    early_stopping: EarlyStoppingSettings = EarlyStoppingSettings()
    averaging: Averaging = Averaging()
    robust_loss: RobustLoss = RobustLoss()
    consistency: Consistency = Consistency()
    rdrop: RDrop = RDrop()
    layer_lr_decay: float = Field(
        default=1.0, gt=0.0, le=1.0, description="each layer below the top gets this x its lr"
    )
    reinit_layers: int = Field(default=0, ge=0, description="top encoder layers re-initialised")
    linear_probe: LinearProbe = LinearProbe()
    contrastive: Contrastive = Contrastive()
    soup: Soup = Soup()
    ensemble: Ensemble = Ensemble()
    label_cleaning: LabelCleaning = LabelCleaning()
    min_steps: int = Field(
        default=0,
        ge=0,
        description="run more epochs when the configured ones give fewer optimisation steps "
        "(few-sample fine-tuning needs enough of them; early stopping ends the run when "
        "validation stops improving)",
    )
    temperature_scaling: bool = Field(
        default=False,
        description="fit a temperature on the validation split and fold it into the saved "
        "classifier head, so the shipped model's probabilities are calibrated",
    )
    class_bias: bool = Field(
        default=False,
        description="with the temperature, fit a bias per class on the validation split "
        "(bias-corrected temperature scaling): the class priors a small or noisy training set "
        "left in the model move to the validation split's; an ensemble fits it on its average",
    )

    @model_validator(mode="after")
    def _compatible(self) -> Regularization:
        if self.smart.enabled and self.r3f.enabled:
            raise ValueError("choose SMART or R3F, not both")
        if self.robust_loss.kind != "none" and self.label_smoothing:
            raise ValueError("a robust loss replaces label smoothing: set label_smoothing to 0")
        if self.ensemble.enabled and self.soup.members > 1:
            raise ValueError("choose an ensemble or a soup, not both")
        if self.ensemble.enabled and not self.temperature_scaling:
            raise ValueError(
                "an ensemble averages calibrated probabilities: temperature_scaling must be on"
            )
        if self.class_bias and not self.temperature_scaling:
            raise ValueError(
                "class_bias is fitted with the temperature: turn temperature_scaling on"
            )
        return self


class Lora(Section):
    """LoRA (Hu et al. 2021) through peft: the pretrained weights frozen, a rank-``rank``
    update ``alpha / rank * B A`` trained on ``target_modules`` (default: peft's per
    architecture, e.g. the attention's query and value), the classifier head trained whole.
    ``dropout`` is LoRA's own, on the adapter's input, besides the model's. The model is saved
    as a peft adapter, or merged into full weights with ``merge``."""

    enabled: bool = False
    rank: int = Field(default=8, ge=1, le=1024)
    alpha: int = Field(default=16, ge=1)
    dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | None = Field(default=None, min_length=1)
    merge: bool = False


PresetName = Literal["none", "basic", "enhanced", "advanced", "setfit", "ensemble"]
Task = Literal["classification", "generation"]


def preset(
    name: PresetName, auxiliary_dataset: str | None = None, task: Task = "classification"
) -> Regularization:
    """The presets, following what docs/benchmarks.md measured on held-out data.

    ``basic`` costs nothing per step over plain fine-tuning: weight decay, dropout 0.1, enough
    steps (``min_steps``) with the best epoch chosen on validation accuracy (ties: validation
    loss), and a temperature-scaled saved model (LP-FT was part of it until fresh seeds showed
    it costing accuracy on both corpora: docs/benchmarks.md). ``enhanced`` adds augmented views
    of each training record with a consistency term (UDA). ``advanced`` adds Mixout and SMART,
    or domain-adversarial training when an auxiliary domain is given. ``setfit`` is SetFit's
    recipe for a few examples per class: the contrastive stage on every pair of training texts,
    then a linear probe on the tuned unit-length mean-pooled embeddings at SetFit's penalty,
    shipped temperature-scaled, no fine-tuning steps. ``ensemble`` is ``setfit`` with a plain
    fine-tune beside it, their calibrated probabilities averaged (``Ensemble``), both members
    trained without the labels label cleaning finds wrong (``LabelCleaning``) where its
    validation check says that helps, the average shipped with a temperature and a bias per
    class fitted on validation (``class_bias``).

    For generation (SFT) they are ``generation_preset``'s."""
    if name == "none":
        return Regularization()
    if task == "generation":
        return generation_preset(name)
    if name in ("setfit", "ensemble"):
        return Regularization(
            contrastive=Contrastive(enabled=True, sampling="oversampling", normalize=True),
            # SetFit's logistic regression (C=1) on 64 texts, as a mean-loss penalty
            linear_probe=LinearProbe(enabled=True, l2=1 / 64, fine_tune=False),
            temperature_scaling=True,
            ensemble=Ensemble(enabled=name == "ensemble"),
            # against wrong labels; the validation check leaves clean data as it is
            label_cleaning=LabelCleaning(enabled=name == "ensemble"),
            # the average's class priors moved to the validation split's
            class_bias=name == "ensemble",
        )
    basic = Regularization(
        weight_decay=WeightDecay(rate=0.01),
        dropout=Dropout(hidden=0.1, attention=0.1, classifier=0.1),
        early_stopping=EarlyStoppingSettings(
            enabled=True,
            metric="val_accuracy",
            tie_break="val_loss",
            patience=5,
            not_before=0.5,
        ),
        min_steps=300,
        temperature_scaling=True,
    )
    if name == "basic":
        return basic
    enhanced = basic.model_copy(
        update={"augmented": True, "consistency": Consistency(enabled=True)}
    )
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
        update={"mixout": Mixout(enabled=True, p=0.1), "smart": SmartSettings(enabled=True)}
    )


def generation_preset(name: PresetName) -> Regularization:
    """SFT presets: ``basic`` is weight decay and early stopping on the validation loss (with
    LoRA, its dropout acts too); ``enhanced`` adds NEFTune and augmented prompts; ``advanced``
    adds R3F on the response tokens. Not measured on held-out data yet (docs/training.md)."""
    if name in ("setfit", "ensemble"):
        raise ValueError(
            f"the {name!r} preset classifies: generation has basic, enhanced, advanced"
        )
    basic = Regularization(
        weight_decay=WeightDecay(rate=0.01),
        early_stopping=EarlyStoppingSettings(enabled=True, metric="val_loss", patience=2),
    )
    if name == "basic":
        return basic
    enhanced = basic.model_copy(update={"augmented": True, "neftune": NEFTune(enabled=True)})
    if name == "enhanced":
        return enhanced
    return enhanced.model_copy(update={"r3f": R3FSettings(enabled=True)})


GENERATION_STOP_METRICS = ("val_loss", "gap_loss")


def refuse(what: str, refused: dict[str, bool], why: str) -> None:
    """A ValueError naming the settings that are on and do not go with ``what``."""
    on = [name for name, enabled in refused.items() if enabled]
    if on:
        raise ValueError(f"{what} does not go with {', '.join(on)}: {why}")


Device = Literal["auto", "cpu", "cuda"]


class TrainConfig(Section):
    """One training run. ``preset`` gives the regularization's starting point; the fields of
    ``regularization`` that are set override it (``{"preset": "basic", "regularization":
    {"label_smoothing": 0.2}}`` is basic with more smoothing)."""

    service: str = Field(default="http://127.0.0.1:8000", description="the service's base URL")
    api_key: str | None = Field(
        default=None,
        exclude=True,  # never in report.json, checkpoints or --print-config
        repr=False,
        description="the service's API key, if it has one (or ANTIFIT_TRAIN_API_KEY)",
    )
    dataset: str = Field(min_length=1, description="dataset id (train and validation splits)")
    task: Task = Field(
        default="classification",
        description="classification (labelled texts), or generation: supervised fine-tuning of "
        "a causal LM on a prompt/response or chat dataset, loss on response tokens only",
    )
    job: str | None = Field(
        default=None, description="augmented version (job id) whose variants to train on"
    )
    augment: dict[str, Any] | None = Field(
        default=None,
        description="pipeline spec to run when augmented batches are asked for and no job is "
        "given (default: the 'label_preserving' example pipeline: back-translation through "
        "Spanish or Catalan, variants under 0.85 sentence similarity dropped)",
    )
    n_variants: int = Field(default=2, ge=1, le=64, description="variants per record (augment)")
    augment_target: Literal["text", "response"] = Field(
        default="text",
        description="what the trainer's augmentation job rewrites: each record's text (a "
        "generation record's prompt), or a generation dataset's responses",
    )
    model: str | None = Field(
        default=None, description="HF model directory (default: the packaged all-MiniLM-L6-v2)"
    )
    pooling: Literal["auto", "model", "mean"] = Field(
        default="auto",
        description="what a classifier's head reads: 'model', the transformers classifier's own "
        "(an encoder's first token, a decoder's last); 'mean', the mean of an encoder's tokens "
        "(how sentence encoders are trained); 'auto', mean with the contrastive stage, else "
        "the model's",
    )
    output_dir: str = Field(
        default="runs/latest", description="metrics, report, curve, model and checkpoint"
    )
    register_run: bool = Field(
        default=True,
        description="register the run with the service, its evaluations as they happen and its "
        "report at the end (the console's Runs page); the local files are written either way",
    )
    preset: PresetName = Field(
        default="basic",
        description="none, basic, enhanced, advanced, setfit or ensemble (see antifit recommend)",
    )
    auxiliary_dataset: str | None = Field(
        default=None, description="general-domain dataset id for domain-adversarial training"
    )
    regularization: Regularization = Regularization()
    lora: Lora = Lora()
    gradient_checkpointing: bool = Field(
        default=False, description="recompute activations in the backward pass: less memory"
    )
    compile: bool = Field(
        default=False,
        description="torch.compile the model: faster steps on a GPU once compiled (the first "
        "steps, the first evaluation and each new batch shape pay for the compilation)",
    )
    epochs: int = Field(default=10, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0.0)
    warmup_ratio: float = Field(default=0.1, ge=0.0, lt=1.0)
    batch_size: int = Field(default=16, ge=1)
    grad_accum: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="batches per optimisation step (gradient accumulation): an effective batch "
        "of batch_size x grad_accum in the memory of one batch",
    )
    eval_batch_size: int | None = Field(
        default=None,
        ge=1,
        description="rows per evaluation batch (default: 16 on CPU, where small length-sorted "
        "batches waste the least on padding; 64 on CUDA)",
    )
    max_length: int = Field(default=128, ge=8)
    grad_clip: float | None = Field(default=1.0, gt=0.0)
    eval_every: int | None = Field(
        default=None, ge=1, description="evaluate every N steps (default: after each epoch)"
    )
    checkpoint_every: int | None = Field(
        default=None, ge=1, description="checkpoint every N steps (besides the time budget)"
    )
    checkpoint_minutes: float | None = Field(
        default=10.0,
        gt=0.0,
        description="checkpoint when this many minutes have passed since the last one (and "
        "always at the end, and on SIGTERM/SIGINT under antifit train)",
    )
    train_eval_size: int = Field(
        default=256,
        ge=0,
        description="training originals evaluated for the train/val gap (0: no training-side "
        "evaluation, no gap; each evaluation is then cheaper)",
    )
    seed: int = 0
    member: int = Field(
        default=0,
        ge=0,
        lt=8,
        description="a soup member's index: member m > 0 starts from the weights member 0 "
        "starts from, with its own batch order and dropout masks (the soup sets it)",
    )
    device: Device = Field(default="auto", description="auto (CUDA when present), cpu or cuda")
    bf16: bool | None = Field(default=None, description="bf16 autocast (default: on CUDA)")
    trace_ids: bool = Field(
        default=False, description="log every batch's record ids (batches.rank{r}.jsonl)"
    )

    @property
    def mean_pooling(self) -> bool:
        """Whether the classifier's head reads the mean of the encoder's tokens."""
        auto = self.pooling == "auto" and self.regularization.contrastive.enabled
        return self.pooling == "mean" or auto

    @property
    def unit_embeddings(self) -> bool:
        """Whether a mean-pooled head reads the unit-length embedding."""
        contrastive = self.regularization.contrastive
        return self.mean_pooling and contrastive.enabled and contrastive.normalize

    def evaluation_batch(self, device_type: str) -> int:
        """Rows per evaluation batch on a device of ``device_type`` (``eval_batch_size``)."""
        return self.eval_batch_size or (64 if device_type == "cuda" else 16)

    @model_validator(mode="after")
    def _stage_pooling(self) -> TrainConfig:
        if self.regularization.contrastive.enabled and self.pooling == "model":
            raise ValueError(
                "the contrastive stage tunes mean-pooled embeddings: pooling 'auto' or 'mean', "
                "not 'model'"
            )
        return self

    @model_validator(mode="after")
    def _training_side(self) -> TrainConfig:
        if self.train_eval_size:
            return self
        reg = self.regularization
        if reg.linear_probe.enabled and not reg.contrastive.enabled:
            raise ValueError(
                "the linear probe is fitted on the training subset: train_eval_size > 0"
            )
        if reg.early_stopping.enabled and "gap" in reg.early_stopping.metric:
            raise ValueError("a gap metric needs the training subset: train_eval_size > 0")
        return self

    @model_validator(mode="after")
    def _lora(self) -> TrainConfig:
        """What LoRA changes: the regularizers defined on full weights that it refuses."""
        if not self.lora.enabled:
            return self
        reg = self.regularization
        refuse(
            "lora",
            {
                "regularization.mixout": reg.mixout.enabled,  # mixes frozen weights: a no-op
                # the pretrained weights do not move: L2-SP would only decay the adapter
                "regularization.weight_decay.l2sp": reg.weight_decay.l2sp,
                # both keep a full copy of the model, what LoRA exists to avoid
                "regularization.averaging": reg.averaging.enabled,
                "regularization.smart.teacher": reg.smart.enabled and reg.smart.teacher,
                # averaging adapters trained from one start is possible, but not measured
                "regularization.soup": reg.soup.members > 1,
                # they tune the whole encoder, what LoRA exists to avoid
                "regularization.contrastive": reg.contrastive.enabled,
                "regularization.ensemble": reg.ensemble.enabled,
            },
            "see docs/training.md, LoRA; weight_decay.rate decays the adapter, smart without "
            "its teacher works",
        )
        return self

    @model_validator(mode="after")
    def _generation(self) -> TrainConfig:
        """What a causal LM's token predictions cannot use."""
        if self.task != "generation":
            return self
        if self.model is None:
            raise ValueError("generation needs a causal LM: set model to its local directory")
        reg = self.regularization
        refuse(
            "generation",
            {
                "regularization.consistency": reg.consistency.enabled,
                "regularization.rdrop": reg.rdrop.enabled,
                "regularization.robust_loss": reg.robust_loss.kind != "none",
                "regularization.domain_adversarial": reg.domain_adversarial.enabled,
                "regularization.linear_probe": reg.linear_probe.enabled,
                "regularization.contrastive": reg.contrastive.enabled,
                "regularization.ensemble": reg.ensemble.enabled,
                "regularization.label_cleaning": reg.label_cleaning.enabled,
                "pooling": self.pooling == "mean",
                "regularization.reinit_layers": reg.reinit_layers > 0,
                "regularization.temperature_scaling": reg.temperature_scaling,
                "regularization.class_bias": reg.class_bias,
            },
            "they act on class probabilities or a pooled representation "
            "(see docs/training.md, Generation)",
        )
        es = reg.early_stopping
        metrics = [es.metric, *([es.tie_break] if es.tie_break else [])]
        if es.enabled and any(m not in GENERATION_STOP_METRICS for m in metrics):
            raise ValueError(
                "generation stops on val_loss or gap_loss (there is no accuracy to track)"
            )
        return self

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        if not isinstance(data, dict) or isinstance(data.get("regularization"), Regularization):
            return data
        base = preset(
            data.get("preset", "basic"),
            data.get("auxiliary_dataset"),
            data.get("task", "classification"),
        ).model_dump()
        return {**data, "regularization": merge(base, data.get("regularization") or {})}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
