import json

import pytest
from pydantic import ValidationError

from antifit.cli import main
from trainer.config import SCENARIOS, EarlyStopping, Regularization, preset, recommend


def test_presets_build_on_each_other() -> None:
    none, basic, enhanced, advanced = (preset(n) for n in ("none", "basic", "enhanced", "advanced"))
    assert none == Regularization()
    assert basic.weight_decay.rate > 0 and basic.dropout.hidden and basic.early_stopping.enabled
    assert basic.label_smoothing == 0 and not basic.augmented
    assert enhanced.label_smoothing > 0 and enhanced.augmented
    assert enhanced.weight_decay == basic.weight_decay and enhanced.early_stopping.enabled
    assert advanced.mixout.enabled and advanced.smart.enabled and advanced.augmented
    cross = preset("advanced", auxiliary_dataset="news")
    assert cross.domain_adversarial.enabled and not cross.smart.enabled
    assert cross.domain_adversarial.auxiliary_dataset == "news"


def test_config_validates_and_round_trips() -> None:
    config = preset("advanced")
    assert Regularization.model_validate_json(config.model_dump_json()) == config
    with pytest.raises(ValidationError, match="SMART or R3F"):
        Regularization.model_validate({"smart": {"enabled": True}, "r3f": {"enabled": True}})
    with pytest.raises(ValidationError, match="auxiliary_dataset"):
        Regularization.model_validate({"domain_adversarial": {"enabled": True}})
    with pytest.raises(ValidationError):
        Regularization.model_validate({"mixout": {"p": 1.0}})
    with pytest.raises(ValidationError):
        Regularization.model_validate({"dropuot": {}})


def test_recommend_covers_every_scenario_and_says_why() -> None:
    for scenario in SCENARIOS:
        name, config, why = recommend(scenario)  # type: ignore[arg-type]
        assert name in ("basic", "enhanced", "advanced") and len(why) > 40
        assert config == preset(name)
    name, config, why = recommend("cross-domain", "general-news")
    assert config.domain_adversarial.auxiliary_dataset == "general-news"
    assert recommend("little-compute")[1].smart.enabled is False


def test_recommend_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", "--scenario", "little-compute", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["preset"] == "enhanced" and out["regularization"]["augmented"] is True
    assert main(["recommend", "--scenario", "cross-domain"]) == 0
    assert "falls back" in capsys.readouterr().out


def test_early_stopping_direction_follows_the_metric() -> None:
    assert EarlyStopping().direction == "min"
    assert EarlyStopping(metric="val_macro_f1").direction == "max"
    assert EarlyStopping(metric="val_accuracy", mode="min").direction == "min"
    with pytest.raises(ValidationError, match="metric"):
        EarlyStopping(metric="val_lose")  # type: ignore[arg-type]
