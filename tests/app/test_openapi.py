"""The OpenAPI document is exact: schemathesis fuzzes every operation of the live server
(bounded, so CI stays fast) and finds no server error, no undocumented status or content type,
no response that violates its schema, and no schema-violating request accepted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.keys import digest
from app.local_server import running

KEY = "openapi-fuzz-key-0123"
pytestmark = pytest.mark.slow


def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    if st is None:
        pytest.fail("schemathesis is missing: scripts/setup.sh --dev installs it")
    resources = tmp_path / "resources" / "lexicons"
    resources.mkdir(parents=True)
    (resources / "colours.json").write_text('{"red": ["crimson"]}')
    env = {
        "ANTIFIT_API_KEYS": json.dumps([{"name": "fuzz", "role": "admin", "sha256": digest(KEY)}]),
        "ANTIFIT_RESOURCES_DIR": str(tmp_path / "resources"),
        "ANTIFIT_WORKERS": "1",
    }
    with running(tmp_path / "data", env) as (base, _):
        proc = subprocess.run(
            [
                st,
                "run",
                f"{base}/openapi.json",
                "--header",
                f"X-API-Key: {KEY}",
                "--checks",
                "all",
                # a schema cannot say which tokens the server signed, which ids exist or that
                # min_changes <= max_changes: schema-valid requests may rightly be refused
                "--exclude-checks",
                "positive_data_acceptance",
                "--phases",
                "examples,fuzzing,stateful",
                "--max-examples",
                "40",
                "--seed",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
