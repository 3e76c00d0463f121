from pathlib import Path

import pytest
from pydantic import ValidationError

from trainer.config import EarlyStoppingSettings, LabelCleaning, Regularization, preset


def test_presets_build_on_each_other() -> None:
    none, basic, enhanced, advanced = (preset(n) for n in ("none", "basic", "enhanced", "advanced"))
    assert none == Regularization()
    assert basic.weight_decay.rate > 0 and basic.dropout.hidden and basic.early_stopping.enabled
    assert basic.early_stopping.metric == "val_accuracy" and basic.early_stopping.tie_break
    assert not basic.linear_probe.enabled  # measured to cost accuracy (docs/benchmarks.md)
    assert basic.temperature_scaling and basic.min_steps > 0
    assert not basic.augmented and basic.label_smoothing == 0
    assert enhanced.augmented and enhanced.consistency.enabled
    assert (
        enhanced.model_copy(update={"augmented": False, "consistency": basic.consistency}) == basic
    )
    assert advanced.mixout.enabled and advanced.smart.enabled and advanced.consistency.enabled
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


def test_early_stopping_direction_follows_the_metric() -> None:
    assert EarlyStoppingSettings().direction == "min"
    assert EarlyStoppingSettings(metric="val_macro_f1").direction == "max"
    assert EarlyStoppingSettings(metric="val_accuracy", mode="min").direction == "min"
    with pytest.raises(ValidationError, match="metric"):
        EarlyStoppingSettings(metric="val_lose")  # type: ignore[arg-type]


def test_the_setfit_preset_and_what_its_stage_does_not_go_with() -> None:
    from trainer.config import TrainConfig

    setfit = preset("setfit")
    assert setfit.contrastive.enabled and setfit.linear_probe.enabled
    assert not setfit.linear_probe.fine_tune and setfit.temperature_scaling
    assert setfit.contrastive.sampling == "oversampling" and setfit.contrastive.normalize
    config = TrainConfig.model_validate({"dataset": "d", "preset": "setfit"})
    assert config.mean_pooling  # 'auto': the head reads what the stage tuned
    assert not TrainConfig.model_validate({"dataset": "d"}).mean_pooling
    assert TrainConfig.model_validate({"dataset": "d", "pooling": "mean"}).mean_pooling
    normalized = {"contrastive": {"normalize": True}}
    assert TrainConfig.model_validate(
        {"dataset": "d", "preset": "setfit", "regularization": normalized}
    ).unit_embeddings
    assert not TrainConfig.model_validate(  # mean pooling without the stage: not normalised
        {"dataset": "d", "pooling": "mean", "regularization": {"contrastive": {"normalize": True}}}
    ).unit_embeddings
    with pytest.raises(ValidationError, match="pooling 'auto' or 'mean', not 'model'"):
        TrainConfig.model_validate({"dataset": "d", "preset": "setfit", "pooling": "model"})
    # the stage's texts are what the probe fits on: no training subset needed
    TrainConfig.model_validate({"dataset": "d", "preset": "setfit", "train_eval_size": 0})
    with pytest.raises(ValidationError, match="lora does not go with regularization.contrastive"):
        TrainConfig.model_validate({"dataset": "d", "preset": "setfit", "lora": {"enabled": True}})
    with pytest.raises(ValidationError, match="regularization.contrastive, pooling"):
        TrainConfig.model_validate(
            {
                "dataset": "d",
                "model": "m",
                "task": "generation",
                "pooling": "mean",
                "regularization": {"contrastive": {"enabled": True}},
            }
        )
    for bad in ({"iterations": 0}, {"max_pairs": 10**7}, {"batch_size": 1}, {"max_texts": 1}):
        with pytest.raises(ValidationError):
            Regularization.model_validate({"contrastive": bad})


def test_the_ensemble_preset_is_setfit_with_a_plain_fine_tune_beside_it() -> None:
    from trainer.config import TrainConfig
    from trainer.ensemble import partner_configs
    from trainer.soup import SEED_MAX

    ensemble = preset("ensemble")
    assert ensemble.ensemble.enabled and ensemble.ensemble.epochs == 20
    assert ensemble.ensemble.fine_tunes == 1
    assert ensemble.label_cleaning.enabled and not preset("setfit").label_cleaning.enabled
    assert ensemble.class_bias and not preset("setfit").class_bias
    setfit = preset("setfit")
    assert ensemble.model_copy(
        update={
            "ensemble": setfit.ensemble,
            "label_cleaning": setfit.label_cleaning,
            "class_bias": False,
        }
    ) == preset("setfit")
    config = TrainConfig.model_validate(
        {"dataset": "d", "preset": "ensemble", "output_dir": "out", "epochs": 3, "seed": 7}
    )
    [partner] = partner_configs(config)
    assert partner_configs(partner) == []
    assert partner.output_dir == "out/members/fine-tuned" and not partner.register_run
    cleaning = LabelCleaning(enabled=True)  # every member trains on the same labels
    assert partner.regularization == Regularization(
        temperature_scaling=True, label_cleaning=cleaning
    )
    assert partner.pooling == "model" and not partner.mean_pooling
    assert (partner.epochs, partner.seed, partner.learning_rate) == (20, 7, config.learning_rate)
    assert partner_configs(TrainConfig.model_validate({"dataset": "d", "preset": "setfit"})) == []
    # more fine-tunes: each its own seed and folder, otherwise the same recipe
    more = TrainConfig.model_validate(
        {
            **config.model_dump(include={"dataset", "preset", "output_dir", "epochs", "seed"}),
            "regularization": {"ensemble": {"fine_tunes": 3}},
        }
    )
    partners = partner_configs(more)
    assert [p.seed for p in partners] == [7, 1007, 2007]
    assert [Path(p.output_dir).name for p in partners] == [
        "fine-tuned",
        "fine-tuned-2",
        "fine-tuned-3",
    ]
    near_the_bound = more.model_copy(update={"seed": SEED_MAX - 1})
    assert [p.seed for p in partner_configs(near_the_bound)] == [SEED_MAX - 1, 999, 1999]
    same = {"seed": 7, "output_dir": partner.output_dir}
    assert all(p.model_copy(update=same) == partner for p in partners)
    for bad in (0, 5):
        with pytest.raises(ValidationError):
            Regularization.model_validate({"ensemble": {"enabled": True, "fine_tunes": bad}})
    # what it does not go with
    for extra, message in (
        ({"regularization": {"soup": {"members": 2}}}, "an ensemble or a soup"),
        ({"regularization": {"temperature_scaling": False}}, "temperature_scaling must be on"),
        ({"lora": {"enabled": True}}, "regularization.ensemble"),
        ({"regularization": {"ensemble": {"epochs": 0}}}, "ensemble.epochs"),
        ({"regularization": {"ensemble": {"epochs": 10**4}}}, "ensemble.epochs"),
        ({"task": "generation", "model": "m"}, "'ensemble' preset classifies"),
    ):
        with pytest.raises(ValidationError, match=message):
            TrainConfig.model_validate({"dataset": "d", "preset": "ensemble", **extra})
    with pytest.raises(ValidationError, match="'setfit' preset classifies"):
        TrainConfig.model_validate({"dataset": "d", "preset": "setfit", "task": "generation"})


def test_label_cleaning_is_bounded_shared_with_the_ensemble_and_refused_for_generation() -> None:
    from trainer.config import LabelCleaning, TrainConfig
    from trainer.ensemble import partner_configs

    assert not Regularization().label_cleaning.enabled
    cleaning = {"enabled": True, "folds": 5}
    config = TrainConfig.model_validate(
        {"dataset": "d", "preset": "ensemble", "regularization": {"label_cleaning": cleaning}}
    )
    [partner] = partner_configs(config)  # every member trains on the same labels
    assert partner.regularization.label_cleaning == LabelCleaning(**cleaning)
    for bad in (
        {"folds": 1},
        {"folds": 21},
        {"l2": 0},
        {"max_share": 0.95},
        {"max_texts": 10**6},
        {"what": 1},
    ):
        with pytest.raises(ValidationError):
            Regularization.model_validate({"label_cleaning": {"enabled": True, **bad}})
    with pytest.raises(ValidationError, match="regularization.label_cleaning"):
        TrainConfig.model_validate(
            {
                "dataset": "d",
                "task": "generation",
                "model": "m",
                "preset": "basic",
                "regularization": {"label_cleaning": {"enabled": True}},
            }
        )


def test_the_class_bias_comes_with_the_temperature_stays_off_the_members_and_classifies() -> None:
    from trainer.config import TrainConfig
    from trainer.ensemble import partner_configs
    from trainer.soup import member_configs

    assert not Regularization().class_bias
    with pytest.raises(ValidationError, match="turn temperature_scaling on"):
        Regularization(class_bias=True)
    on = {"temperature_scaling": True, "class_bias": True}
    ensemble = TrainConfig.model_validate(
        {"dataset": "d", "preset": "ensemble", "regularization": {"class_bias": True}}
    )
    # the members keep their temperature; the ensemble fits the bias on their average
    assert [p.regularization.class_bias for p in partner_configs(ensemble)] == [False]
    soup = TrainConfig.model_validate(
        {"dataset": "d", "regularization": {**on, "soup": {"members": 2}}}
    )
    [member] = member_configs(soup)  # the soup's average is scaled once, by the run
    assert not member.regularization.class_bias and not member.regularization.temperature_scaling
    with pytest.raises(ValidationError, match="regularization.class_bias"):
        TrainConfig.model_validate(
            {"dataset": "d", "task": "generation", "model": "m", "regularization": on}
        )
