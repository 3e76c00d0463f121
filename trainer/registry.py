"""The run as the service's registry sees it (``/v1/runs``, the console's Runs page).

Best effort: the registry is a view, so a service that cannot take a row (unreachable, an old
version without ``/v1/runs``, a full run) costs a warning and the rest of the reports, never the
run. A resumed run keeps its registration (its id lies in the output folder)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from antifit.jsonsafe import finite
from trainer.service import Service
from trainer.stream import ServiceError

REGISTRATION = "registry.json"


class RunRegistry:
    def __init__(self, service: Service, run_id: str, log: Callable[[str], None]) -> None:
        self.service = service
        self.run_id: str | None = run_id
        self.log = log

    @classmethod
    def open(
        cls,
        service: Service,
        out: Path,
        config: dict[str, Any],
        dataset: str,
        job: str | None,
        log: Callable[[str], None],
        fresh: bool = False,
    ) -> RunRegistry | None:
        """Registers the run, or (``fresh`` false: a resumed run) takes up its registration."""
        saved = out / REGISTRATION
        try:
            if saved.is_file() and not fresh:
                known = json.loads(saved.read_text())
                if known.get("service") == service.base and (
                    service.run_state(known["id"]) == "running"
                ):
                    return cls(service, str(known["id"]), log)
            run_id = service.register_run(out.name or "run", config, dataset, job)
        except (ServiceError, OSError, ValueError, KeyError) as exc:
            log(f"the run is not registered with the service ({exc}); local files only")
            return None
        saved.write_text(json.dumps({"service": service.base, "id": run_id}))
        log(f"registered as run {run_id} ({service.base}/ui/runs/{run_id})")
        return cls(service, run_id, log)

    def evaluation(self, row: dict[str, Any]) -> None:
        self._send(lambda run_id: self.service.add_evaluation(run_id, finite(row)))

    def end(self, state: str, report: dict[str, Any] | None) -> None:
        self._send(lambda run_id: self.service.end_run(run_id, state, finite(report)))

    def failed(self, exc: BaseException) -> None:
        self.end("failed", {"error": f"{type(exc).__name__}: {exc}"[:2000]})

    def _send(self, call: Callable[[str], None]) -> None:
        if self.run_id is None:
            return
        try:
            call(self.run_id)
        except (ServiceError, ValueError) as exc:
            self.log(f"the service's registry stops following this run: {exc}")
            self.run_id = None
