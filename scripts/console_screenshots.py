"""Regenerates the console screenshots in docs/console/ from a real server and browser.

    .venv/bin/python scripts/console_screenshots.py [--out docs/console]

Starts `antifit serve` on a scratch data folder, uploads examples/reviews.jsonl, runs a job
through the playground, and photographs each page with Playwright driving Debian's chromium
(scripts/setup.sh --dev installs it; never `playwright install`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.local_server import running  # noqa: E402

SPEC = '{"pipeline": {"type": "sequence", "steps": [{"type": "synonym", "p": 0.3}, ' + (
    '{"type": "word_swap", "p": 0.1}]}, "filters": [{"type": "unchanged"}]}'
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
            browser.close()


if __name__ == "__main__":
    main()
