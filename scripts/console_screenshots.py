"""Regenerates the console screenshots in docs/console/ from a real server and browser.

    .venv/bin/python scripts/console_screenshots.py [--out docs/console]

Starts `antifit serve` on a scratch data folder, uploads examples/reviews.jsonl, runs a job
through the playground, trains two short runs (presets none and basic, the packaged MiniLM) that
register with the service, and photographs each page with Playwright driving Debian's chromium
(scripts/setup.sh --dev installs it; never `playwright install`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from app.local_server import running  # noqa: E402

SPEC = '{"pipeline": {"type": "sequence", "steps": [{"type": "synonym", "p": 0.3}, ' + (
    '{"type": "word_swap", "p": 0.1}]}, "filters": [{"type": "similarity", "min": 0.85}]}'
)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "console")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: scripts/setup.sh --dev")
    with tempfile.TemporaryDirectory() as tmp, running(Path(tmp) / "data") as (base, _):
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.set_default_timeout(60_000)

            def shot(name: str) -> None:
                page.screenshot(path=str(args.out / f"{name}.png"), full_page=True)
                print(args.out / f"{name}.png")

            page.goto(f"{base}/ui/datasets")
            page.get_by_label("Choose a file or drop it here").set_input_files(
                str(ROOT / "examples" / "reviews.jsonl")
            )
            page.get_by_role("button", name="Upload").click()
            page.wait_for_url("**/ui/datasets/*")
            dataset_url = page.url
            shot("dataset")

            page.goto(f"{base}/ui/playground?dataset={dataset_url.rsplit('/', 1)[1]}")
            page.get_by_label("Pipeline spec (JSON)").fill(SPEC)
            page.get_by_label("Variants").fill("2")
            page.get_by_role("button", name="Preview").click()
            page.locator("#preview ins").first.wait_for()
            shot("playground")

            page.get_by_role("button", name="Run as job").click()
            page.wait_for_url("**/ui/jobs/*")
            page.locator('[data-state="succeeded"]').wait_for(timeout=180_000)
            page.reload()
            shot("job")

            page.goto(f"{base}/ui/datasets")
            shot("datasets")

            # two short real runs on the packaged MiniLM: none against basic
            body = (ROOT / "examples" / "reviews.jsonl").read_bytes()
            split = httpx.post(
                f"{base}/v1/datasets?name=reviews-split&splits=train:0.6,validation:0.4",
                content=body,
                timeout=60,
            ).json()["id"]
            for preset in ("none", "basic"):
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "antifit.cli",
                        "train",
                        "--no-progress",
                        "--service",
                        base,
                        "--dataset",
                        split,
                        "--preset",
                        preset,
                        "--epochs",
                        "6",
                        "--output-dir",
                        str(Path(tmp) / preset),
                    ],
                    check=True,
                    cwd=ROOT,
                )
            page.goto(f"{base}/ui/runs")
            page.get_by_role("link", name="none").click()
            page.locator("figure.chart canvas").first.wait_for()
            shot("run")
            page.goto(f"{base}/ui/runs")
            page.get_by_label("overlay none").check()
            page.get_by_label("overlay basic").check()
            page.get_by_role("button", name="Overlay the chosen runs").click()
            page.locator("figure.chart canvas").first.wait_for()
            shot("compare")
            browser.close()


if __name__ == "__main__":
    main()
