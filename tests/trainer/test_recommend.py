"""antifit recommend: from a dataset's figures, or a scenario."""

import json

import pytest

from antifit.cli import main
from trainer.recommend import SCENARIOS, Profile, for_dataset, for_scenario, profile


def summary(train: int, validation: int, labels: dict[str, int], mean: float) -> dict:  # type: ignore[type-arg]
    return {
        "splits": {"train": train, "validation": validation},
        "labels": [{"label": k, "count": v} for k, v in labels.items()],
        "text_length": {"min": 1, "max": 999, "mean": mean},
    }


def test_profile_estimates_classes_and_script() -> None:
    p = profile(summary(80, 20, {"a": 90, "b": 10}, 40.0), ["手机很好用", "good phone"])
    assert p.classes == 2 and p.per_class == {"a": 72.0, "b": 8.0}
    assert p.imbalance == 9.0 and p.smallest_class == 8.0
    assert 0.3 < p.cjk_share < 0.5  # 5 CJK letters of 14


def test_small_balanced_english_data() -> None:
    rec = for_dataset(profile(summary(160, 64, {"a": 112, "b": 112}, 80.0), ["short text"]))
    assert rec.preset == "basic" and rec.config == {}
    assert "small" in rec.reasons[0] and "antifit sweep" in rec.reasons[0]
    assert not rec.train_config("d1").regularization.augmented


def test_a_few_shot_set_gets_the_ensemble() -> None:
    rec = for_dataset(profile(summary(96, 96, {"a": 64, "b": 64, "c": 64}, 80.0), ["text"]))
    assert rec.preset == "ensemble" and "few-shot" in rec.reasons[0]
    config = rec.train_config("d1")
    assert config.regularization.contrastive.enabled and config.mean_pooling
    assert config.regularization.ensemble.enabled
    skewed = for_dataset(profile(summary(60, 30, {"a": 80, "b": 10}, 80.0), ["text"]))
    assert skewed.preset == "ensemble" and "imbalanced" not in " ".join(skewed.reasons)
    assert "regularization" not in skewed.config  # no early stopping to steer: no steps


def test_what_the_figures_change() -> None:
    big = Profile(20000, 2000, 2, {"a": 10000.0, "b": 10000.0}, 100.0, 0.0)
    assert for_dataset(big).preset == "basic"
    skewed = Profile(400, 20, 4, {"a": 300.0, "b": 50.0, "c": 40.0, "d": 10.0}, 900.0, 0.9)
    rec = for_dataset(skewed, auxiliary_dataset="news")
    assert rec.preset == "advanced" and rec.config["auxiliary_dataset"] == "news"
    assert rec.config["regularization"]["early_stopping"]["metric"] == "val_macro_f1"
    assert rec.config["max_length"] == 256 and rec.config["augment"]["pipeline"]
    from augmenters.spec import parse_spec

    steps = parse_spec(rec.config["augment"]).pipeline.steps  # type: ignore[attr-defined]
    assert {step.type for step in steps} == {"word_swap", "word_delete", "punctuation", "homophone"}
    text = " ".join(rec.reasons)
    for said in ("imbalanced", "20 validation examples", "tokens", "Chinese", "auxiliary"):
        assert said in text
    config = rec.train_config("d2")
    assert config.regularization.domain_adversarial.enabled
    assert config.regularization.early_stopping.metric == "val_macro_f1"


def test_every_scenario_says_why() -> None:
    for scenario in SCENARIOS:
        rec = for_scenario(scenario)  # type: ignore[arg-type]
        assert rec.preset in ("basic", "enhanced", "advanced", "ensemble")
        assert len(rec.reasons[0]) > 40
    assert "falls back" in " ".join(for_scenario("cross-domain").reasons)
    assert for_scenario("cross-domain", "news").config == {"auxiliary_dataset": "news"}


def test_recommend_command(service: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    args = ["recommend", "--service", service["base"], "--dataset", service["dataset"]]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["preset"] == "ensemble" and out["reasons"]  # 24 training texts a class
    assert out["regularization"]["contrastive"]["enabled"] is True
    assert main(args) == 0
    assert "why:" in capsys.readouterr().out
    assert main(["recommend", "--service", service["base"], "--dataset", "nope"]) == 2
    assert "404" in capsys.readouterr().err
    assert main(["recommend", "--scenario", "little-compute", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["preset"] == "basic"


def test_generation_datasets(service: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    small = Profile(900, 12, 0, {}, 300.0, 0.0, task="generation", response_chars=900.0)
    rec = for_dataset(small)
    assert rec.preset == "enhanced" and rec.config["task"] == "generation"
    assert rec.config["max_length"] == 512  # (300 + 900) / 4 = 300 tokens, with room
    text = " ".join(rec.reasons)
    for said in ("NEFTune", "not measured", "--lora", "12 validation examples"):
        assert said in text
    config = rec.train_config("d", "models/llama")
    assert config.task == "generation" and config.regularization.neftune.enabled
    assert config.model == "models/llama"
    large = Profile(50_000, 500, 0, {}, 100.0, 0.0, task="generation", response_chars=100.0)
    assert for_dataset(large).preset == "basic" and "max_length" not in for_dataset(large).config

    args = ["recommend", "--service", service["base"], "--dataset", service["instructions"]]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["task"] == "generation" and out["regularization"]["neftune"]["enabled"]
