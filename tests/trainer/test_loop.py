"""The training loop end to end: a tiny random BERT against the real service on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from antifit.cli import main
from app.local_server import free_port
from tests.trainer.conftest import BAD, GOOD
from trainer import checkpoint
from trainer.config import TrainConfig
from trainer.ensemble import EnsembleClassifier
from trainer.evalset import predict_items
from trainer.loop import Interrupted, TrainingError, train
from trainer.model import load_classifier
from trainer.report import read_jsonl
from trainer.stream import ServiceError

NOISE = {"version": 1, "pipeline": {"type": "keyboard", "p": 0.2}}


def config(svc: dict[str, str], out: Path, model: Path, **kwargs: Any) -> TrainConfig:
    """A small run: the presets' min_steps off, so epochs and steps are the ones asked for."""
    kwargs["regularization"] = {"min_steps": 0, **kwargs.get("regularization", {})}
    return TrainConfig.model_validate(
        {
            "service": svc["base"],
            "dataset": svc["dataset"],
            "model": str(model),
            "output_dir": str(out),
            "batch_size": 8,
            "max_length": 32,
            "learning_rate": 1e-3,
            "train_eval_size": 16,
            "augment": NOISE,
            **kwargs,
        }
    )


def ensemble_config(
    svc: dict[str, str], out: Path, model: Path, max_pairs: int, **ensemble: Any
) -> TrainConfig:
    """A small ``ensemble`` run: a short contrastive stage, the given ensemble settings."""
    regularization = {"contrastive": {"max_pairs": max_pairs}, "ensemble": ensemble}
    return config(svc, out, model, preset="ensemble", regularization=regularization)


def stop_after(steps: int) -> Any:
    """A should_stop that asks the run to stop after ``steps`` steps."""
    calls = iter(range(steps, -1, -1))
    return lambda: next(calls) <= 1


def interrupted_state(cfg: TrainConfig, steps: int) -> dict[str, Any]:
    """Run ``steps`` steps, stop as SIGTERM would, and read the checkpoint it wrote."""
    with pytest.raises(Interrupted, match=f"stopped at step {steps}"):
        train(cfg, progress=False, should_stop=stop_after(steps))
    state = checkpoint.load(Path(cfg.output_dir))
    assert state is not None and state["step"] == steps
    return state


def test_enhanced_run_writes_its_outputs(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    cfg = config(service, tmp_path, tiny_mlm, preset="enhanced", epochs=2, trace_ids=True)
    report = train(cfg, progress=False)

    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]  # one evaluation per epoch
    for row in rows:
        for key in (
            "train_loss",
            "val_loss",
            "val_accuracy",
            "val_macro_f1",
            "val_ece",
            "gap_loss",
        ):
            assert isinstance(row[key], float) and row[key] == row[key]  # finite, not NaN
        assert row["gap_loss"] == pytest.approx(row["val_loss"] - row["train_loss"])
    assert report["job"] is not None  # enhanced trains on augmented batches: a job was run
    traced = read_jsonl(tmp_path / "batches.rank0.jsonl")
    seen = [tuple(pair) for row in traced for pair in row["ids"]]
    assert any(variant is not None for _, variant in seen)  # variants ...
    assert {i for i, v in seen if v is None} == {f"r{i}" for i in range(48)}  # ... and originals
    assert len(seen) == 2 * 48 * 3  # two epochs of 48 originals and 2 variants each

    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["stop_reason"] == "epochs" and saved["steps"] == report["steps"] == len(traced)
    assert saved["config"]["regularization"]["consistency"]["enabled"]
    assert saved["final"]["val_calibration"] in ("over-confident", "under-confident", "calibrated")
    assert (tmp_path / "learning_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bins = saved["calibration"]["bins"]
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 24  # the validation split
    assert 0.0 <= saved["test"]["test_accuracy"] <= 1.0  # the dataset has a test split

    # registered with the service as it went: each evaluation row, then the report
    registered = json.loads((tmp_path / "registry.json").read_text())
    run = httpx.get(f"{service['base']}/v1/runs/{registered['id']}").json()
    assert run["state"] == "succeeded" and run["dataset_id"] == service["dataset"]
    assert [r["step"] for r in run["rows"]] == [r["step"] for r in rows]
    assert run["rows"][-1]["val_loss"] == pytest.approx(rows[-1]["val_loss"])
    assert run["report"]["steps"] == report["steps"] and run["job_id"] == report["job"]
    assert "api_key" not in run["config"] and run["config"]["preset"] == "enhanced"

    # the saved model and tokenizer load as a plain transformers classifier
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    assert model.config.id2label == {0: "neg", 1: "pos"}
    with torch.no_grad():
        logits = model(**tokenizer([GOOD, BAD], return_tensors="pt", padding=True)).logits
    assert logits.shape == (2, 2)


def test_advanced_regularizers_together(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    cfg = config(
        service,
        tmp_path,
        tiny_mlm,
        preset="advanced",  # mixout + SMART with its momentum teacher
        max_steps=4,
        eval_every=2,
        regularization={"weight_decay": {"l2sp": True}, "augmented": False},
    )
    state = interrupted_state(cfg, 3)
    assert state["stepper"]["teacher"]["updates"] == 3
    report = train(cfg, progress=False)  # resumes at step 3
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 4] and report["stop_reason"] == "max_steps"
    assert all(r["l2sp_distance"] > 0 for r in rows) and report["resumed_from_step"] == 3
    finished = checkpoint.load(tmp_path)
    assert finished is not None and finished["finished"] and "stepper" not in finished
    assert train(cfg, progress=False) == report  # a finished run is not trained again


def test_consistency_averaging_and_a_calibrated_saved_model(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    cfg = config(
        service,
        tmp_path,
        tiny_mlm,
        preset="basic",
        epochs=2,
        trace_ids=True,
        regularization={
            "augmented": True,
            "consistency": {"enabled": True, "supervised_variants": False},
            "averaging": {"enabled": True},
            "temperature_scaling": True,
            "class_bias": True,
            "early_stopping": {"metric": "val_accuracy", "tie_break": "val_loss"},
            "robust_loss": {"kind": "elr"},
            "rdrop": {"enabled": True},
            "layer_lr_decay": 0.8,
            "reinit_layers": 1,
        },
    )
    state = interrupted_state(cfg, 3)  # the averages and targets resume with the run
    assert state["stepper"]["average"]["updates"] == 3
    assert len(state["ranks"][0]["stepper"]["elr"]["ids"]) == 24  # 3 batches of 8 originals
    report = train(cfg, progress=False)
    traced = read_jsonl(tmp_path / "batches.rank0.jsonl")
    assert len(traced) == report["steps"] == 2 * 6  # batches of 8 records, 48 records
    for row in traced:  # every variant comes with its original, in the same batch
        originals = {i for i, v in row["ids"] if v is None}
        assert len(originals) == 8
        assert all(i in originals for i, v in row["ids"] if v is not None)
        assert len(row["ids"]) == 3 * len(originals)  # 2 variants each
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert all(r["val_calibrated_loss"] <= r["val_loss"] + 1e-6 for r in rows)

    # the saved model is the weight average, its logits scaled by the temperature and moved
    # by the class bias
    temperature = report["temperature"]
    assert temperature is not None and temperature > 0
    assert len(report["class_bias"]) == 2 and report["class_bias"] != [0.0, 0.0]
    from trainer.metrics import evaluate
    from trainer.service import Service

    clf = load_classifier(tmp_path / "model", ["neg", "pos"])
    items = Service(service["base"]).originals(service["dataset"], "validation")
    # batched as the run evaluated (16 on a CPU): another batching pads differently, and
    # that float noise can move a confidence of this near-chance model across an ECE bin edge
    logits, labels = predict_items(clf, items, cfg.max_length, batch_size=16)
    saved = evaluate(logits, labels)
    assert saved.loss == pytest.approx(report["saved_model"]["val_loss"], abs=1e-4)
    assert saved.ece == pytest.approx(report["saved_model"]["val_ece"], abs=1e-4)


def test_min_steps_adds_epochs(service: dict[str, str], tiny_mlm: Path, tmp_path: Path) -> None:
    cfg = config(service, tmp_path, tiny_mlm, preset="none", epochs=1)
    cfg = cfg.model_copy(
        update={"regularization": cfg.regularization.model_copy(update={"min_steps": 10})}
    )
    report = train(cfg, progress=False)
    assert report["epochs_planned"] == 2 and report["steps"] == 12  # 6 batches an epoch


def test_no_training_side_evaluation(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    cfg = config(service, tmp_path, tiny_mlm, preset="none", max_steps=2, train_eval_size=0)
    report = train(cfg, progress=False)
    row = read_jsonl(tmp_path / "metrics.jsonl")[-1]
    assert "train_loss" not in row and "gap_loss" not in row and row["val_loss"] > 0
    assert report["final"]["gap_loss"] is None and (tmp_path / "learning_curve.png").exists()
    with pytest.raises(ValueError, match="train_eval_size"):  # LP-FT fits on that subset
        config(
            service,
            tmp_path,
            tiny_mlm,
            train_eval_size=0,
            regularization={"linear_probe": {"enabled": True}},
        )


def test_domain_adversarial_with_r3f(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    cfg = config(
        service,
        tmp_path,
        tiny_mlm,
        preset="advanced",
        auxiliary_dataset=service["auxiliary"],
        max_steps=3,
        regularization={"r3f": {"enabled": True}, "augmented": False},
    )
    assert cfg.regularization.domain_adversarial.enabled and not cfg.regularization.smart.enabled
    state = interrupted_state(cfg, 2)
    assert any(k.startswith("domain_head.") for k in state["stepper"]["module"])
    assert state["ranks"][0]["aux_stream"]["resume_token"] is not None
    assert train(cfg, progress=False)["steps"] == 3


def test_early_stopping_restores_the_best_weights(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    # an improvement must beat the best by 10 nats: after the first evaluation none does
    cfg = config(
        service,
        tmp_path,
        tiny_mlm,
        preset="basic",
        epochs=20,
        eval_every=2,
        regularization={
            "early_stopping": {
                "metric": "val_loss",
                "tie_break": None,
                "patience": 2,
                "min_delta": 10.0,
                "not_before": 0.0,
            }
        },
    )
    report = train(cfg, progress=False)
    assert report["stop_reason"] == "early_stopping"
    assert report["steps"] == 6 and report["best"]["step"] == 2
    assert report["restored_best_weights"] and report["final"]["step"] == 2

    from transformers import AutoModelForSequenceClassification

    from trainer.metrics import evaluate
    from trainer.service import Service

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "model").eval()

    clf = load_classifier(tmp_path / "model", ["neg", "pos"])
    items = Service(service["base"]).originals(service["dataset"], "validation")
    with torch.no_grad():
        logits = model(**clf.encode([i["text"] for i in items], 32)).logits
    saved = evaluate(logits, clf.label_ids(items))
    # the best step's weights (predictions as then), with the temperature folded in (basic)
    assert saved.accuracy == report["final"]["val_accuracy"]
    assert saved.loss == pytest.approx(report["saved_model"]["val_loss"], abs=1e-5)
    assert report["temperature"] is not None


def test_a_soup_ships_the_average_of_members_that_start_alike(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    from trainer.soup import saved_weights

    logged: list[str] = []

    def run(out: Path, members: int, **extra: Any) -> dict[str, Any]:
        cfg = config(
            service,
            out,
            tiny_mlm,
            preset="basic",
            epochs=2,
            trace_ids=True,
            regularization={"soup": {"members": members}, "temperature_scaling": False},
            **extra,
        )
        return train(cfg, progress=False, on_log=logged.append)

    def registered_runs() -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = httpx.get(f"{service['base']}/v1/runs").json()
        return [r for r in runs if r["config"]["output_dir"] == str(tmp_path / "soup")]

    alone = run(tmp_path / "alone", 1)
    logged.clear()
    report = run(tmp_path / "soup", 2)
    # the soup is one run for the service, registered before its other member trains
    first = next(i for i, line in enumerate(logged) if line.startswith("registered as run"))
    assert first < logged.index("soup member 1 of 2")
    [soup_run] = registered_runs()
    assert soup_run["state"] == "succeeded" and soup_run["report"]["soup"]["members"] == 2
    assert soup_run["job_id"] == report["job"]
    member = tmp_path / "soup" / "members" / "1"
    assert report["soup"]["members"] == 2
    # member 0 is the run itself: alone it ships what it contributes to the soup
    assert report["soup"]["member_val"][0]["val_loss"] == pytest.approx(
        alone["saved_model"]["val_loss"], abs=1e-6
    )

    # member 1 starts from the same head, then sees its own batch order
    def first_ids(out: Path) -> list[Any]:
        return [row["ids"] for row in read_jsonl(out / "batches.rank0.jsonl")][:1]

    assert first_ids(member) != first_ids(tmp_path / "alone")
    ours, theirs = saved_weights(tmp_path / "alone" / "model"), saved_weights(member / "model")
    shipped = saved_weights(tmp_path / "soup" / "model")
    assert not torch.equal(ours["classifier.weight"], theirs["classifier.weight"])
    for name, tensor in shipped.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(tensor, (ours[name] + theirs[name]) / 2)
    assert report["saved_model"]["val_loss"] == pytest.approx(report["soup"]["val"]["val_loss"])
    # a member is run once: the soup resumed (finished) returns the same report, registers
    # nothing new
    assert run(tmp_path / "soup", 2)["soup"] == report["soup"]
    assert [r["id"] for r in registered_runs()] == [soup_run["id"]]


def test_a_soup_member_starts_from_the_runs_initial_weights(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    from trainer.soup import saved_weights

    def head(out: Path, member: int) -> torch.Tensor:
        # one step at a learning rate too small to move the head measurably
        cfg = config(
            service, out, tiny_mlm, preset="none", max_steps=1, learning_rate=1e-12, member=member
        )
        train(cfg, progress=False)
        return saved_weights(out / "model")["classifier.weight"]

    torch.testing.assert_close(head(tmp_path / "m0", 0), head(tmp_path / "m1", 1))


def test_a_different_config_does_not_resume_silently(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    train(config(service, tmp_path, tiny_mlm, preset="none", max_steps=1), progress=False)
    other = config(service, tmp_path, tiny_mlm, preset="none", max_steps=2, learning_rate=1e-4)
    with pytest.raises(TrainingError, match="another configuration"):
        train(other, progress=False)
    assert train(other, progress=False, restart=True)["steps"] == 2


def test_clear_errors(service: dict[str, str], tiny_mlm: Path, tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="no validation split"):
        train(
            config(service, tmp_path, tiny_mlm, dataset=service["auxiliary"], preset="none"),
            progress=False,
        )
    with pytest.raises(ServiceError, match="404"):
        train(config(service, tmp_path, tiny_mlm, dataset="nope"), progress=False)
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceError, match="cannot reach the service"):
        train(config(service, tmp_path, tiny_mlm, service=nowhere), progress=False)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "antifit.cli", "train", "--no-progress", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


TIMING = ("elapsed_seconds", "eval_seconds", "train_examples_per_second")


def without_timing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def wait_for_checkpoint(proc: subprocess.Popen[bytes], out: Path, step: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        state = checkpoint.load(out) if out.exists() else None
        if state is not None and state["step"] >= step:
            return
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_killed_or_stopped_run_resumes_and_ends_as_it_would_have(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    fields = {
        "preset": "advanced",  # dropout, mixout masks and SMART noise: all must be restored
        # 36 steps: the SIGTERM sent once step 8 is checkpointed lands well before the end, even on
        # a slow machine (with 18 steps it could arrive after the run had finished)
        "epochs": 6,
        "eval_every": 5,
        "checkpoint_every": 2,
        "regularization": {"augmented": False},
    }
    reference = config(service, tmp_path / "reference", tiny_mlm, **fields)
    train(reference, progress=False)

    out = tmp_path / "resumed"
    resumed = reference.model_copy(update={"output_dir": str(out)})
    path = tmp_path / "config.json"
    path.write_text(resumed.model_dump_json())
    proc = cli("--config", str(path))
    wait_for_checkpoint(proc, out, 4)
    proc.send_signal(signal.SIGKILL)  # no warning: it resumes from its last checkpoint
    proc.wait()
    assert not (out / "report.json").exists()  # it did not finish

    proc = cli("--config", str(path))
    wait_for_checkpoint(proc, out, 8)
    proc.send_signal(signal.SIGTERM)  # a graceful stop: it checkpoints where it is, then exits
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode()[-3000:]
    assert "resumed from step" in err.decode() and "stopped at step" in err.decode()
    assert not (out / "report.json").exists()
    assert not list(out.glob(".*.tmp"))  # no half-written checkpoint left behind

    again = cli("--config", str(path))
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err.decode()[-3000:]
    assert "resumed from step" in err.decode()

    ref_rows = read_jsonl(tmp_path / "reference" / "metrics.jsonl")
    new_rows = read_jsonl(out / "metrics.jsonl")
    assert without_timing(new_rows) == without_timing(ref_rows)
    assert all(r["elapsed_seconds"] > 0 and r["train_examples_per_second"] > 0 for r in new_rows)
    from safetensors.torch import load_file

    a = load_file(tmp_path / "reference" / "model" / "model.safetensors")
    b = load_file(out / "model" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_config_layers_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('dataset = "d1"\npreset = "enhanced"\nepochs = 3\n')
    proc = cli(
        "--config",
        str(path),
        "--epochs",
        "5",
        "--version",
        "job1",
        "--set",
        "regularization.label_smoothing=0.2",
        "--print-config",
        env={
            "ANTIFIT_TRAIN_SEED": "7",
            "ANTIFIT_TRAIN_EPOCHS": "4",
            "ANTIFIT_TRAIN_API_KEY": "secret-key-never-printed",
        },
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert b"secret-key-never-printed" not in out  # nor in report.json or checkpoints
    printed = json.loads(out)
    assert (printed["dataset"], printed["epochs"], printed["seed"]) == ("d1", 5, 7)
    assert printed["job"] == "job1"
    assert printed["regularization"]["label_smoothing"] == 0.2  # --set over the preset
    assert printed["regularization"]["augmented"] is True  # the rest of enhanced stays

    proc = cli("--dataset", "d1", "--lora", "--set", "lora.rank=4", "--print-config")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["lora"] == {
        "enabled": True,
        "rank": 4,
        "alpha": 16,
        "dropout": 0.05,
        "target_modules": None,
        "merge": False,
    }

    proc = cli("--dataset", "d1", "--set", "regularization.mixout.p=2", "--print-config")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "field 'regularization.mixout.p'" in err.decode()


def test_bf16_autocast(service: dict[str, str], tiny_mlm: Path, tmp_path: Path) -> None:
    # the CUDA default; CPU autocast runs the same code path here
    cfg = config(
        service,
        tmp_path,
        tiny_mlm,
        preset="advanced",
        bf16=True,
        max_steps=2,
        regularization={"augmented": False},
    )
    report = train(cfg, progress=False)
    assert report["bf16"] and report["device"] == "cpu"
    row = read_jsonl(tmp_path / "metrics.jsonl")[-1]
    assert all(row[k] == row[k] for k in ("train_loss", "val_loss", "val_ece"))  # not NaN


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_a_decoder_lm_trains_with_the_regularizers(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    """A GPT-2 or Llama directory: LP-FT on its last-token features, SMART through word
    embeddings with left padding, the domain head on the same position, a saved model that
    transformers loads back with its pad token."""
    cfg = config(
        service,
        tmp_path,
        tiny_decoders[kind],
        preset="basic",
        max_steps=4,
        eval_every=2,
        auxiliary_dataset=service["auxiliary"],
        regularization={
            "linear_probe": {"enabled": True},
            "smart": {"enabled": True},
            "domain_adversarial": {"enabled": True, "auxiliary_dataset": service["auxiliary"]},
        },
    )
    report = train(cfg, progress=False)
    assert report["steps"] == 4
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert all(r["val_loss"] == r["val_loss"] for r in rows)  # finite, not NaN
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    saved = tmp_path / "model"
    model = AutoModelForSequenceClassification.from_pretrained(saved)
    tokenizer = AutoTokenizer.from_pretrained(saved)
    assert model.config.pad_token_id == tokenizer.pad_token_id is not None
    assert tokenizer.padding_side == "left"


def test_lora_trains_adapters_only_resumes_from_a_small_checkpoint_and_saves_loadable(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path
) -> None:
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = tiny_decoders["llama"]

    def lora_config(out: Path, merge: bool = False) -> TrainConfig:
        return config(
            service,
            out,
            base,
            preset="basic",
            max_steps=4,
            eval_every=2,
            lora={"enabled": True, "rank": 4, "merge": merge},
            regularization={"smart": {"enabled": True, "teacher": False}},
        )

    cfg = lora_config(tmp_path / "adapter")
    state = interrupted_state(cfg, 3)
    saved = state["stepper"]["module"]
    assert saved and all("lora_" in k or "score" in k for k in saved)  # no frozen weight
    report = train(cfg, progress=False)  # resumes at step 3
    assert report["resumed_from_step"] == 3 and report["steps"] == 4
    reference = train(lora_config(tmp_path / "straight"), progress=False)
    assert reference["final"] == report["final"]  # a resumed run ends as a straight one

    # the saved adapter loads back with peft onto the base, and merging gives the same logits
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "adapter" / "model")
    batch = dict(
        tokenizer(["the cat sat", "the battery lasts two days"], padding=True, return_tensors="pt")
    )
    adapter = AutoPeftModelForSequenceClassification.from_pretrained(
        tmp_path / "adapter" / "model", num_labels=2, pad_token_id=tokenizer.pad_token_id
    ).eval()
    merged_report = train(lora_config(tmp_path / "merged", merge=True), progress=False)
    assert merged_report["final"] == reference["final"]
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged" / "model")
    with torch.no_grad():
        a = adapter(**batch).logits
        m = merged.eval()(**batch).logits
    torch.testing.assert_close(a, m, atol=1e-4, rtol=1e-4)


def test_lora_refuses_what_needs_full_weights(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="regularization.mixout"):
        TrainConfig.model_validate(
            {"dataset": "d", "preset": "advanced", "lora": {"enabled": True}}
        )
    with pytest.raises(ValueError, match="regularization.soup"):
        TrainConfig.model_validate(
            {"dataset": "d", "regularization": {"soup": {"members": 2}}, "lora": {"enabled": True}}
        )


def test_gradient_checkpointing_changes_memory_not_results_and_neftune_trains(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path
) -> None:
    def run(out: Path, **extra: Any) -> dict[str, Any]:
        return train(
            config(
                service,
                out,
                tiny_decoders["qwen2"],
                preset="none",
                max_steps=3,
                lora={"enabled": True, "rank": 4},
                **extra,
            ),
            progress=False,
        )

    plain = run(tmp_path / "plain")
    checkpointed = run(tmp_path / "checkpointed", gradient_checkpointing=True)
    assert checkpointed["final"] == plain["final"]  # recomputed, same dropout masks
    noisy = run(tmp_path / "noisy", regularization={"neftune": {"enabled": True, "alpha": 5}})
    assert noisy["final"] != plain["final"] and noisy["steps"] == 3


def test_gradient_accumulation_matches_the_larger_batch(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path
) -> None:
    """Qwen2 has no dropout: 2 accumulated batches of 4 take the step one batch of 8 does
    (the stream's order does not depend on the batch size)."""

    def run(out: Path, batch_size: int, grad_accum: int) -> dict[str, Any]:
        cfg = config(
            service,
            out,
            tiny_decoders["qwen2"],
            preset="none",
            epochs=1,
            batch_size=batch_size,
            grad_accum=grad_accum,
            lora={"enabled": True, "rank": 4, "dropout": 0.0},
            trace_ids=True,
        )
        return train(cfg, progress=False)

    big = run(tmp_path / "big", 8, 1)
    accumulated = run(tmp_path / "accumulated", 4, 2)
    assert big["steps"] == accumulated["steps"] == 6
    for key in ("val_loss", "val_accuracy", "train_loss"):
        assert abs(big["final"][key] - accumulated["final"][key]) < 1e-4, key
    trace = read_jsonl(tmp_path / "accumulated" / "batches.rank0.jsonl")
    assert [row["step"] for row in trace[:4]] == [1, 1, 2, 2]


def test_a_run_that_cannot_fit_says_how_much_it_needs(
    service: dict[str, str],
    tiny_decoders: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("trainer.loop.available", lambda device: 64 * 1024)
    cfg = config(service, tmp_path, tiny_decoders["gpt2"], preset="none", max_steps=1)
    with pytest.raises(TrainingError, match=r"needs about .* GiB \(weights .*try --lora"):
        train(cfg, progress=False)


def test_lora_over_a_bf16_base_trains_fp32_adapters(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path
) -> None:
    from trainer.loop import Training

    cfg = config(
        service,
        tmp_path,
        tiny_decoders["llama"],
        preset="none",
        max_steps=2,
        bf16=True,
        lora={"enabled": True, "rank": 4},
    )
    training = Training(cfg, progress=False)
    params = dict(training.task_model.model.named_parameters())
    frozen = {p.dtype for p in params.values() if not p.requires_grad}
    trained = {p.dtype for p in params.values() if p.requires_grad}
    assert frozen == {torch.bfloat16} and trained == {torch.float32}
    report = training.run()
    assert report["steps"] == 2 and report["final"]["val_loss"] == report["final"]["val_loss"]


def test_setfit_tunes_the_encoder_then_ships_the_probe(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    from trainer.metrics import evaluate
    from trainer.service import Service

    cfg = config(
        service,
        tmp_path,
        tiny_mlm,
        preset="setfit",  # every pair of the 48 texts (1,200 with positives repeated), cut
        regularization={"contrastive": {"max_pairs": 192, "evaluations": 3}},
    )
    assert cfg.mean_pooling
    logs: list[str] = []
    report = train(cfg, progress=False, on_log=logs.append)
    assert "contrastive stage on 48 training texts" in logs  # every training original
    # scored before the stage and three times in it (12 steps): the best weights kept
    kept = [m for m in logs if m.startswith("contrastive stage: 12 steps, kept the weights")]
    assert len(kept) == 1 and kept[0].split()[9] in {"0", "4", "8", "12"}, kept
    assert report["steps"] == 0 and report["epochs_planned"] == 0  # the probe is what ships
    assert report["temperature"] is not None
    # the stage moved the encoder
    pretrained = load_file(tiny_mlm / "model.safetensors")
    tuned = load_file(tmp_path / "model" / "encoder" / "model.safetensors")
    word = "embeddings.word_embeddings.weight"
    assert not torch.equal(tuned[word], pretrained[f"bert.{word}"])
    # the saved model, loaded as antifit loads it, scores what the report says it does
    clf = load_classifier(tmp_path / "model", ["neg", "pos"])
    assert clf.pooling == "mean" and clf.model.normalize  # the head reads unit-length embeddings
    # and the encoder is a sentence-transformers model embedding so
    modules = json.loads((tmp_path / "model" / "encoder" / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    items = Service(service["base"]).originals(service["dataset"], "validation")
    with torch.no_grad():
        logits = clf.model.eval()(**clf.encode([i["text"] for i in items], 32)).logits
    saved = evaluate(logits, clf.label_ids(items))
    assert saved.loss == pytest.approx(report["saved_model"]["val_loss"], abs=1e-4)
    logs.clear()
    assert train(cfg, progress=False, on_log=logs.append) == report
    assert not [m for m in logs if "contrastive" in m]  # a finished run runs no stage again
    # the same configuration elsewhere: the same stage, the same model
    again = train(cfg.model_copy(update={"output_dir": str(tmp_path / "again")}), progress=False)
    assert again["saved_model"] == report["saved_model"]


def test_an_ensemble_ships_setfit_and_a_plain_fine_tune_averaging_their_probabilities(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    from trainer.metrics import evaluate
    from trainer.service import Service

    cfg = ensemble_config(service, tmp_path, tiny_mlm, max_pairs=96, epochs=2)
    logs: list[str] = []
    report = train(cfg, progress=False, on_log=logs.append)
    # registered once, before the plain member trains
    first = next(i for i, line in enumerate(logs) if line.startswith("registered as run"))
    assert first < logs.index("the ensemble's plain fine-tune")
    partner_dir = tmp_path / "members" / "fine-tuned"
    partner = json.loads((partner_dir / "report.json").read_text())
    assert partner["config"]["preset"] == "none" and partner["config"]["pooling"] == "model"
    assert partner["steps"] == 12 and partner["temperature"] is not None  # 2 epochs of 6
    assert report["steps"] == 0 and report["ensemble"]["member_val"][1] == partner["saved_model"]

    # the saved ensemble, loaded as antifit loads a model: the mean of its members'
    # probabilities, each member as its own run shipped it, moved by the temperature and class
    # bias the preset fits on the average (class_bias)
    labels = ["neg", "pos"]
    clf = load_classifier(tmp_path / "model", labels)
    assert isinstance(clf.model, EnsembleClassifier) and len(clf.model.members) == 2
    setfit = load_classifier(tmp_path / "model" / "members" / "0", labels)
    plain = load_classifier(tmp_path / "model" / "members" / "1", labels)
    assert setfit.pooling == "mean" and plain.pooling == "first"
    items = Service(service["base"]).originals(service["dataset"], "validation")
    ensemble, targets = predict_items(clf, items, 32)
    member_probabilities = [predict_items(m, items, 32)[0].softmax(-1) for m in (setfit, plain)]
    scaling = report["ensemble"]["scaling"]
    average = (sum(member_probabilities) / 2).log()
    shipped = average / scaling["temperature"] + torch.tensor(scaling["bias"])
    torch.testing.assert_close(ensemble.softmax(-1), shipped.softmax(-1))
    assert evaluate(predict_items(plain, items, 32)[0], targets).loss == pytest.approx(
        partner["saved_model"]["val_loss"], abs=1e-4
    )
    # what the report says the shipped model scores, it scores: validation and test
    assert evaluate(ensemble, targets).loss == pytest.approx(
        report["saved_model"]["val_loss"], abs=1e-4
    )
    test_items = Service(service["base"]).originals(service["dataset"], "test")
    test_logits, test_targets = predict_items(clf, test_items, 32)
    assert evaluate(test_logits, test_targets).loss == pytest.approx(
        report["test"]["test_loss"], abs=1e-4
    )
    # finished: run again, nothing trains
    logs.clear()
    assert train(cfg, progress=False, on_log=logs.append) == report
    assert not [m for m in logs if "contrastive" in m or m.startswith("step")]
    # an ensemble predicts; training from one is refused, naming what to do instead
    from_ensemble = config(service, tmp_path / "next", tmp_path / "model", preset="basic")
    with pytest.raises(TrainingError, match="is an ensemble antifit saved.*members/0"):
        train(from_ensemble, progress=False)


def test_an_ensemble_with_two_fine_tunes_averages_three_members(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    from trainer.calibration import fit_scaling
    from trainer.metrics import evaluate
    from trainer.service import Service

    cfg = ensemble_config(service, tmp_path, tiny_mlm, max_pairs=32, epochs=1, fine_tunes=2)
    cfg = cfg.model_copy(update={"seed": 3})
    logs: list[str] = []
    report = train(cfg, progress=False, on_log=logs.append)
    assert "the ensemble's plain fine-tune 1 of 2" in logs
    assert "the ensemble's plain fine-tune 2 of 2" in logs
    folders = [tmp_path / "members" / name for name in ("fine-tuned", "fine-tuned-2")]
    partners = [json.loads((f / "report.json").read_text()) for f in folders]
    assert [p["config"]["seed"] for p in partners] == [3, 1003]
    assert partners[0]["saved_model"] != partners[1]["saved_model"]  # two draws, not one twice
    assert report["ensemble"]["member_val"][1:] == [p["saved_model"] for p in partners]
    assert report["ensemble"]["partner_seconds"] == pytest.approx(
        sum(p["seconds"] for p in partners)
    )
    labels = ["neg", "pos"]
    clf = load_classifier(tmp_path / "model", labels)
    assert isinstance(clf.model, EnsembleClassifier) and len(clf.model.members) == 3
    items = Service(service["base"]).originals(service["dataset"], "validation")
    members = [load_classifier(tmp_path / "model" / "members" / str(i), labels) for i in range(3)]
    probabilities = [predict_items(m, items, 32)[0].softmax(-1) for m in members]
    # the average is scaled once more (the preset's class_bias), by what the report says; the
    # members keep their temperature only
    scaling = report["ensemble"]["scaling"]
    assert report["class_bias"] == scaling["bias"] and len(scaling["bias"]) == 2
    assert all(p["class_bias"] is None for p in partners)
    average = (sum(probabilities) / 3).log()
    fitted = fit_scaling(average, clf.label_ids(items), class_bias=True)  # on the average
    assert fitted.temperature == pytest.approx(scaling["temperature"], rel=1e-3)
    assert fitted.bias == pytest.approx(scaling["bias"], abs=1e-3)
    shipped = average / scaling["temperature"] + torch.tensor(scaling["bias"])
    torch.testing.assert_close(predict_items(clf, items, 32)[0].softmax(-1), shipped.softmax(-1))
    assert evaluate(shipped, clf.label_ids(items)).loss == pytest.approx(
        report["saved_model"]["val_loss"], abs=1e-4
    )


def test_a_resumed_run_starts_from_the_contrastive_stages_weights(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    """L2-SP pulls toward the weights fine-tuning starts from: after the stage and the probe.
    A resumed run loads them instead of tuning again, and ends as a straight run."""
    fields: dict[str, Any] = {
        "preset": "none",
        "epochs": 2,
        "regularization": {
            "contrastive": {"enabled": True, "iterations": 2},
            "linear_probe": {"enabled": True},
            "weight_decay": {"rate": 0.5, "l2sp": True},
        },
    }
    reference = train(config(service, tmp_path / "straight", tiny_mlm, **fields), progress=False)
    cfg = config(service, tmp_path / "resumed", tiny_mlm, **fields)
    interrupted_state(cfg, 3)
    logs: list[str] = []
    report = train(cfg, progress=False, on_log=logs.append)
    assert report["resumed_from_step"] == 3 and report["steps"] == reference["steps"] == 12
    assert not [m for m in logs if "contrastive stage on" in m]
    rows = read_jsonl(tmp_path / "resumed" / "metrics.jsonl")
    assert without_timing(rows) == without_timing(
        read_jsonl(tmp_path / "straight" / "metrics.jsonl")
    )
    assert all(r["l2sp_distance"] > 0 for r in rows)
    assert report["final"] == reference["final"]


def test_label_cleaning_trains_the_suspects_without_their_label(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    from tests.trainer.conftest import records, upload

    lines = [json.loads(line) for line in records(80, 48, n_test=8).splitlines()]
    flipped = {f"r{i}" for i in range(0, 48, 5)}  # 10 of the 48 training labels, both classes
    for line in lines:
        if line["id"] in flipped:
            line["label"] = "pos" if line["label"] == "neg" else "neg"
    noisy = upload(service["base"], "".join(json.dumps(line) + "\n" for line in lines))
    cleaning = {"enabled": True, "folds": 4}
    cfg = config(
        {**service, "dataset": noisy},
        tmp_path,
        tiny_mlm,
        preset="none",
        epochs=1,
        augment=None,
        trace_ids=True,
        regularization={"label_cleaning": cleaning},
    )
    logs: list[str] = []
    report = train(cfg, progress=False, on_log=logs.append)
    suspects = read_jsonl(tmp_path / "suspect_labels.jsonl")
    found = {row["id"] for row in suspects}
    # the tiny model is random (its draw depends on the tests before): most, not all
    assert len(found & flipped) >= 8 and len(found - flipped) <= 2, sorted(found)
    cleaning = report["label_cleaning"]
    assert {k: cleaning[k] for k in ("checked", "suspects", "unlabelled", "file")} == {
        "checked": 48,
        "suspects": len(found),
        "unlabelled": len(found),
        "file": "suspect_labels.jsonl",
    }
    check = cleaning["validation_check"]
    assert check["without_suspects"] < check["every_label"] and check["z"] > 2
    assert f"label cleaning: {len(found)} of 48 training labels look wrong" in logs[0]
    for row in suspects:
        assert row["suggested"] != row["label"] and row["p_suggested"] > row["p_label"]
    # the suspects still pass through the batches (their labels do not reach the loss)
    traced = {i for r in read_jsonl(tmp_path / "batches.rank0.jsonl") for i, _ in r["ids"]}
    assert found <= traced

    # antifit labels reaches the run's verdict without training: the same rows, to the digit
    listed = tmp_path / "listed.jsonl"
    command = ["labels", "--service", service["base"], "--model", str(tiny_mlm)]
    settings = ["--set", "regularization.label_cleaning.folds=4", "--max-length", "32"]
    assert main([*command, "--dataset", noisy, *settings, "--out", str(listed)]) == 0
    assert read_jsonl(listed) == suspects
    assert main([*command, "--dataset", "nope", *settings]) == 2
