"""antifit sweep: candidates on the same data, a table, the overlaid curves."""

import json
from pathlib import Path

import pytest

from antifit.cli import main
from trainer.sweep import parse_candidate


def test_sweep_trains_each_candidate_and_picks_one(
    service: dict[str, str], tiny_mlm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "sweep",
        "--service",
        service["base"],
        "--dataset",
        service["dataset"],
        "--model",
        str(tiny_mlm),
        "--output-dir",
        str(tmp_path),
        "--max-steps",
        "4",
        "--eval-every",
        "2",
        "--batch-size",
        "8",
        "--learning-rate",
        "1e-3",
        "--candidate",
        "none",
        "--candidate",
        'smoothed=none:{"label_smoothing": 0.2, "temperature_scaling": true}',
        "--jobs",
        "2",  # two processes at once
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "smoothed" in out and "val_accuracy" in out
    result = json.loads((tmp_path / "sweep.json").read_text())
    assert [row["candidate"] for row in result["candidates"]] == ["none", "smoothed"]
    assert result["best"] in ("none", "smoothed")
    assert all(
        row["steps"] == 4 and row["test_accuracy"] is not None for row in result["candidates"]
    )
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((tmp_path / "smoothed" / "report.json").read_text())
    assert report["config"]["regularization"]["label_smoothing"] == 0.2
    assert report["temperature"] is not None


def test_candidates_parse_and_fail_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_candidate("basic") == ("basic", {"preset": "basic"})
    assert parse_candidate('x=basic:{"mixout": {"enabled": true}}') == (
        "x",
        {"preset": "basic", "regularization": {"mixout": {"enabled": True}}},
    )
    assert main(["sweep", "--dataset", "d", "--candidate", "x=basic:[1]"]) == 2
    assert "must be a JSON object" in capsys.readouterr().err
    assert main(["sweep", "--dataset", "d", "--candidate", "x=nope"]) == 2
    assert "preset" in capsys.readouterr().err


def test_a_generation_sweep_picks_the_lowest_validation_loss(
    service: dict[str, str],
    tiny_decoders: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [
        "sweep",
        "--service",
        service["base"],
        "--dataset",
        service["instructions"],
        "--task",
        "generation",
        "--model",
        str(tiny_decoders["llama"]),
        "--output-dir",
        str(tmp_path),
        "--max-steps",
        "2",
        "--batch-size",
        "8",
        "--learning-rate",
        "3e-3",
        "--candidate",
        "none",
        "--candidate",
        'neftune=none:{"neftune": {"enabled": true}}',
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "val_perplexity" in out and "lowest validation loss" in out
    result = json.loads((tmp_path / "sweep.json").read_text())
    assert result["task"] == "generation"
    best = min(result["candidates"], key=lambda row: row["val_loss"])
    assert result["best"] == best["candidate"] and best["test_loss"] is not None
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
