"""The run registry is a view: a service that cannot take the run costs a warning, not the run."""

from __future__ import annotations

from pathlib import Path

from antifit.jsonsafe import finite
from app.local_server import free_port
from trainer.registry import RunRegistry
from trainer.service import Service


def test_an_unreachable_service_leaves_the_run_unregistered(tmp_path: Path) -> None:
    said: list[str] = []
    service = Service(f"http://127.0.0.1:{free_port()}", timeout=2)
    registry = RunRegistry.open(service, tmp_path, {"preset": "basic"}, "d", None, said.append)
    assert registry is None
    assert "not registered" in said[0] and not (tmp_path / "registry.json").exists()


def test_non_finite_numbers_go_as_null() -> None:
    row = {"step": 3, "val_loss": float("nan"), "bins": [{"acc": float("inf")}, 0.5]}
    assert finite(row) == {"step": 3, "val_loss": None, "bins": [{"acc": None}, 0.5]}
