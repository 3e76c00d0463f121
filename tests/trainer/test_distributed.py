"""Two CPU processes under torchrun (DDP, gloo): each rank streams its own share, and the
ranks' weights stay identical with every regularizer's extra forwards (advanced: Mixout,
SMART and its teacher)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from trainer.report import read_jsonl

# run by torchrun on each rank: train, then save this rank's final weights for the test to compare
RANK_SCRIPT = """
import json, sys
import torch
import torch.distributed as dist
from trainer.config import TrainConfig
from trainer.distributed import init_distributed, run_generator
from trainer.loop import Training

config = TrainConfig.model_validate(json.loads(sys.argv[1]))
init_distributed(config.device)
rank = dist.get_rank()
with run_generator(config.seed):
    training = Training(config, progress=False)
    training.run()
torch.save(training.stepper.module.state_dict(), f"{config.output_dir}/weights.rank{rank}.pt")
dist.destroy_process_group()
"""


def torchrun_ranks(config: dict[str, object], tmp_path: Path) -> None:
    """RANK_SCRIPT on two CPU ranks under torchrun; each saves its final weights."""
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    done = subprocess.run(
        [*run, str(script), json.dumps(config)], capture_output=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-4000:]


def test_ranks_see_disjoint_records_and_keep_identical_weights(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    config = {
        "service": service["base"],
        "dataset": service["dataset"],
        "model": str(tiny_mlm),
        "output_dir": str(tmp_path),
        "preset": "advanced",
        "regularization": {"augmented": False, "min_steps": 0},
        "epochs": 2,
        "batch_size": 8,
        "max_length": 32,
        "learning_rate": 1e-3,
        "train_eval_size": 16,
        "trace_ids": True,
    }
    torchrun_ranks(config, tmp_path)

    traces = [read_jsonl(tmp_path / f"batches.rank{r}.jsonl") for r in range(2)]
    assert [len(t) for t in traces] == [6, 6]  # 24 records each, batches of 8, two epochs
    for epoch in range(2):
        shares = [
            {i for row in trace if row["epoch"] == epoch for i, _ in row["ids"]} for trace in traces
        ]
        assert not shares[0] & shares[1]
        assert shares[0] | shares[1] == {f"r{i}" for i in range(48)}

    weights = [torch.load(tmp_path / f"weights.rank{r}.pt", weights_only=True) for r in range(2)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["world_size"] == 2 and report["steps"] == 6
    assert len(read_jsonl(tmp_path / "metrics.jsonl")) == 2


def test_torchrun_runs_the_cli_an_ensemble_with_one_report(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path
) -> None:
    """Both members train on both ranks (the plain one first, as in one process); rank 0
    alone logs and prints the summary."""
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cli = ["-m", "antifit.cli", "train", "--no-progress", "--preset", "ensemble", "--epochs", "2"]
    args = ["--service", service["base"], "--dataset", service["dataset"], "--batch-size", "8"]
    args += ["--model", str(tiny_mlm), "--output-dir", str(tmp_path), "--max-length", "32"]
    for setting in ("ensemble.epochs=2", "contrastive.max_pairs=96", "min_steps=0"):
        args += ["--set", f"regularization.{setting}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([*run, *cli, *args], capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-4000:]

    assert json.loads(done.stdout)["output_dir"] == str(tmp_path)  # one summary, rank 0's
    logs = done.stderr.decode().splitlines()
    assert logs.count("[antifit train] the ensemble's plain fine-tune") == 1
    assert sum(line.startswith("[antifit train] ensemble: val_accuracy") for line in logs) == 1
    partner = json.loads((tmp_path / "members" / "fine-tuned" / "report.json").read_text())
    assert partner["world_size"] == 2 and partner["steps"] == 6  # 24 records a rank, 8, 2 epochs
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["world_size"] == 2 and len(report["ensemble"]["member_val"]) == 2
    assert (tmp_path / "model" / "members" / "1" / "model.safetensors").exists()


def test_lora_under_torchrun_keeps_the_ranks_adapters_identical(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path
) -> None:
    config = {
        "service": service["base"],
        "dataset": service["dataset"],
        "model": str(tiny_decoders["llama"]),
        "output_dir": str(tmp_path),
        "preset": "basic",
        "lora": {"enabled": True, "rank": 4},
        "regularization": {"min_steps": 0, "smart": {"enabled": True, "teacher": False}},
        "epochs": 1,
        "batch_size": 8,
        "grad_accum": 2,
        "max_length": 32,
        "learning_rate": 1e-3,
        "train_eval_size": 16,
    }
    torchrun_ranks(config, tmp_path)
    weights = [torch.load(tmp_path / f"weights.rank{r}.pt", weights_only=True) for r in range(2)]
    adapters = [k for k in weights[0] if "lora_" in k]
    assert adapters and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["world_size"] == 2 and report["steps"] == 2  # 24 records a rank, 8 x 2
    assert (tmp_path / "model" / "adapter_config.json").exists()
