"""The API docs are served from local assets and render in a real headless browser."""

import shutil
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.local_server import running


def test_docs_pages_use_local_assets_only(client: TestClient) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assert "/docs-assets/" in html
        assert "cdn." not in html and "fonts.googleapis" not in html
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/redoc.standalone.js").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/v1/datasets/{dataset_id}/stream" in spec["paths"]


CHROMIUM = shutil.which("chromium")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (scripts/setup.sh --dev)")
def test_swagger_ui_renders_in_headless_chromium(tmp_path: Path) -> None:
    with running(tmp_path / "data") as (base, _):
        for page, marker in (("/docs", "opblock-tag"), ("/redoc", "api-content")):
            dom = subprocess.run(
                [
                    str(CHROMIUM),
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}",
                    "--virtual-time-budget=10000",
                    "--dump-dom",
                    f"{base}{page}",
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
            assert marker in dom, f"{page} did not render"
            assert "/v1/datasets" in dom
