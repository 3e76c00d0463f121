"""Two CPU processes under torchrun (DDP, gloo): each rank streams its own share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from trainer.report import read_jsonl


def test_ranks_see_disjoint_records_covering_each_epoch(
    service: dict[str, str],
    tiny_mlm: Path,
    tmp_path: Path,
) -> None:
    run = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "antifit.cli",
        "train",
        "--no-progress",
        "--service",
        service["base"],
        "--dataset",
        service["dataset"],
        "--model",
        str(tiny_mlm),
        "--output-dir",
        str(tmp_path),
        "--preset",
        "basic",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--max-length",
        "32",
        "--set",
        "trace_ids=true",
        "--set",
        "train_eval_size=16",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(run, capture_output=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-4000:]

    traces = [read_jsonl(tmp_path / f"batches.rank{r}.jsonl") for r in range(2)]
    assert [len(t) for t in traces] == [6, 6]  # 24 records each, batches of 8, two epochs
    for epoch in range(2):
        shares = [
            {i for row in trace if row["epoch"] == epoch for i, _ in row["ids"]} for trace in traces
        ]
        assert not shares[0] & shares[1]
        assert shares[0] | shares[1] == {f"r{i}" for i in range(48)}
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["world_size"] == 2 and report["steps"] == 6
    assert len(read_jsonl(tmp_path / "metrics.jsonl")) == 2
