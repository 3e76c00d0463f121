"""antifit demo: real data, none next to a preset, the comparison figure."""

from pathlib import Path

import pytest

from antifit.cli import main
from app.local_server import free_port
from tests.conftest import needs_wordnet


@needs_wordnet
def test_demo_starts_a_service_and_compares(
    tiny_mlm: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing answers: the demo starts its own
    args = ["demo", "--corpus", "wordnet", "--service", nowhere, "--model", str(tiny_mlm)]
    args += ["--epochs", "2", "--per-class", "4", "--preset", "basic", "--output-dir"]
    assert main([*args, str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert (
        "started one at" in captured.err
        and "24 training texts (6 with a wrong label)" in captured.err
    )
    assert "test accuracy" in captured.out and "basic" in captured.out
    assert (tmp_path / "demo.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "none" / "report.json").exists() and (tmp_path / "basic" / "model").is_dir()
