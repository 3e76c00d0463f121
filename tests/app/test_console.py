"""The console (/ui) in a real browser: Playwright driving Debian's chromium against a real
uvicorn server — upload, summary, bad rows, preview with marked words, bad specs, a job to the
end; and, over HTTP, its keys and anti-forgery tokens."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.keys import ApiKey
from app.local_server import running
from app.main import create_app
from tests.conftest import EXAMPLES

CHROMIUM = shutil.which("chromium")
needs_browser = pytest.mark.skipif(
    CHROMIUM is None, reason="needs Debian's chromium (scripts/setup.sh --dev)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running(tmp_path_factory.mktemp("console") / "data") as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def _upload(page: Any, base: str, path: Path) -> None:
    page.goto(f"{base}/ui/datasets")
    page.get_by_label("Choose a file or drop it here").set_input_files(str(path))
    page.get_by_role("button", name="Upload").click()


@needs_browser
def test_upload_through_the_page_shows_the_summary_and_records(server: str, page: Any) -> None:
    _upload(page, server, EXAMPLES / "reviews.jsonl")
    page.wait_for_url(re.compile(r"/ui/datasets/[0-9a-f]{32}$"))
    assert page.get_by_role("heading", name="reviews.jsonl").is_visible()
    labels = page.get_by_role("list", name="records per label")
    assert labels.get_by_text("positive").is_visible()
    assert page.get_by_role("list", name="records per text length").locator("li").count() > 3
    page.get_by_label("Text contains").fill("battery")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_function("document.querySelectorAll('#records tbody tr').length < 10")
    rows = page.locator("#records tbody tr")
    assert rows.count() >= 1
    for i in range(rows.count()):
        assert "battery" in rows.nth(i).inner_text().lower()


@needs_browser
def test_a_bad_file_shows_its_errors_at_line_and_field(
    server: str, page: Any, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "a"}\n{"text": 5, "label": "b"}\n{"label": "c"}\n')
    _upload(page, server, bad)
    alert = page.get_by_role("alert")
    assert "line 2" in alert.inner_text() and "text" in alert.inner_text()
    assert "line 3" in alert.inner_text()
    assert page.get_by_role("link", name="bad.jsonl").count() == 0  # nothing stored


@needs_browser
def test_preview_marks_the_changed_words_and_a_bad_spec_names_its_field(
    server: str, page: Any
) -> None:
    page.goto(f"{server}/ui/playground")
    page.get_by_label("Pipeline spec (JSON)").fill(
        '{"pipeline": {"type": "word_swap", "p": 0.5}, "filters": [{"type": "dedup"}]}'
    )
    page.get_by_label("Or paste texts, one a line").fill(
        "the battery lasts two full days and charging is quick\nscreen is bright and sharp"
    )
    page.get_by_role("button", name="Preview").click()
    page.locator("#preview ins").first.wait_for()
    assert page.locator("#preview article").count() == 2
    assert page.locator("#preview del").count() >= 1
    assert "word_swap" in page.locator("#preview .ops").first.inner_text()

    page.get_by_label("Pipeline spec (JSON)").fill('{"pipeline": {"type": "word_swap", "p": 7}}')
    page.get_by_role("button", name="Preview").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "spec.pipeline.p" in alert.inner_text()


@needs_browser
def test_a_job_started_from_the_playground_reaches_succeeded(server: str, page: Any) -> None:
    _upload(page, server, EXAMPLES / "reviews.jsonl")
    page.wait_for_url(re.compile(r"/ui/datasets/[0-9a-f]{32}$"))
    page.get_by_role("link", name="Try a pipeline on it").click()
    page.get_by_role("button", name="Run as job").click()
    page.wait_for_url(re.compile(r"/ui/jobs/[0-9a-f]+$"))
    page.locator('[data-state="succeeded"]').wait_for(timeout=120_000)  # htmx polling
    page.reload()
    assert page.get_by_role("heading", name="Sample of the output").is_visible()
    assert page.locator("ol.variants li").count() > 0
    page.goto(f"{server}/ui/jobs")
    assert page.get_by_text("succeeded").first.is_visible()


def test_the_console_takes_the_api_keys_through_a_sign_in_page(tmp_path: Path) -> None:
    key = "s3cret-key-of-the-console-test"
    settings = Settings(
        data_dir=tmp_path / "data",
        api_keys=[ApiKey.model_validate({"name": "ana", "key": key, "role": "admin"})],
    )
    with TestClient(create_app(settings)) as client:
        first = client.get("/ui/datasets", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/ui/login"
        login = client.get("/ui/login")
        token = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert token is not None
        wrong = client.post("/ui/login", data={"key": "nope", "csrf": token.group(1)})
        assert wrong.status_code == 401
        right = client.post(
            "/ui/login", data={"key": key, "csrf": token.group(1)}, follow_redirects=False
        )
        assert right.status_code == 303
        assert client.get("/ui/datasets").status_code == 200  # the cookie carries the key
        assert client.get("/v1/datasets").status_code == 401  # the API still wants its header


def test_state_changing_forms_need_the_browser_s_token(client: TestClient) -> None:
    page = client.get("/ui/playground")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    form = {"spec": '{"pipeline": {"type": "word_swap"}}', "pasted": "a b c d"}
    assert client.post("/ui/playground", data=form).status_code == 403
    assert client.post("/ui/playground", data={**form, "csrf": "x" * 43}).status_code == 403
    assert client.post("/ui/playground", data={**form, "csrf": token.group(1)}).status_code == 200
    other = TestClient(client.app)  # another browser: no cookie, the stolen token is no use
    assert other.post("/ui/playground", data={**form, "csrf": token.group(1)}).status_code == 403


def test_the_console_is_not_imported_with_the_augmenters() -> None:
    code = "import sys, augmenters; print('jinja2' in sys.modules, 'app' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def _train(base: str, dataset: str, model: Path, out: Path, preset: str) -> None:
    """A real short `antifit train`, registering its run with the service."""
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
            dataset,
            "--model",
            str(model),
            "--output-dir",
            str(out),
            "--preset",
            preset,
            "--epochs",
            "3",
            "--batch-size",
            "8",
            "--max-length",
            "32",
            "--learning-rate",
            "1e-3",
            "--set",
            "regularization.min_steps=0",
            "--set",
            "train_eval_size=16",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )


@needs_browser
def test_runs_registered_by_antifit_train_show_their_curves_and_overlay(
    server: str, page: Any, tiny_mlm: Path, tmp_path: Path
) -> None:
    from tests.trainer.conftest import records, upload

    dataset = upload(server, records(60, 40))
    _train(server, dataset, tiny_mlm, tmp_path / "plain", "none")
    _train(server, dataset, tiny_mlm, tmp_path / "basic", "basic")
    page.goto(f"{server}/ui/runs")
    page.get_by_role("link", name="plain").click()
    assert page.locator('[data-state="succeeded"]').is_visible()
    figures = page.locator("figure.chart")
    assert figures.filter(has_text="Loss").count() == 1
    assert figures.filter(has_text="Reliability").count() == 1
    page.locator("figure.chart canvas").first.wait_for()  # uPlot drew it
    page.get_by_text("Evaluation rows").click()
    assert page.locator("details table tbody tr").count() == 3  # an evaluation an epoch

    page.goto(f"{server}/ui/runs")
    page.get_by_label("overlay plain").check()
    page.get_by_label("overlay basic").check()
    page.get_by_role("button", name="Overlay the chosen runs").click()
    page.wait_for_url(re.compile(r"/ui/runs/compare\?id="))
    loss = page.locator("figure.chart", has_text="val_loss")
    assert loss.count() == 1
    legend = loss.inner_text()
    assert "plain" in legend and "basic" in legend


def test_the_preview_shows_similarity_scores_and_what_the_filter_dropped(
    client: TestClient,
) -> None:
    page = client.get("/ui/playground")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    spec = {
        "pipeline": {"type": "word_delete", "p": 0.5},
        "filters": [{"type": "similarity", "min": 0.9}],
    }
    form = {
        "spec": json.dumps(spec),
        "pasted": "the battery lasts two full days and charging is quick",
        "variants": "4",
        "csrf": token.group(1),
    }
    html = client.post("/ui/playground", data=form).text
    scores = [float(s) for s in re.findall(r"similarity (\d\.\d{3})", html)]
    assert len(scores) == 4  # every variant reached the filter
    dropped = html.count("dropped by similarity")
    assert dropped == sum(s < 0.9 for s in scores) and dropped >= 1


def test_console_errors_are_pages_and_the_api_s_stay_problem_json(client: TestClient) -> None:
    page = client.get("/ui/datasets/0123456789abcdef0123456789abcdef")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert 'role="alert"' in page.text and "Datasets" in page.text
    stale = client.post("/ui/jobs/x/cancel", data={"csrf": "stale"})
    assert stale.status_code == 403 and "reload the page" in stale.text
    api = client.get("/v1/datasets/0123456789abcdef0123456789abcdef")
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"


@needs_browser
def test_a_file_dropped_on_the_upload_form_is_uploaded(server: str, page: Any) -> None:
    page.goto(f"{server}/ui/datasets")
    body = (EXAMPLES / "reviews.jsonl").read_text(encoding="utf-8")
    page.evaluate(
        """(text) => {
            const data = new DataTransfer();
            data.items.add(new File([text], "dropped.jsonl", {type: "application/x-ndjson"}));
            const form = document.querySelector("form[data-dropzone]");
            form.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true}));
        }""",
        body,
    )
    page.wait_for_url(re.compile(r"/ui/datasets/[0-9a-f]{32}$"))
    assert page.get_by_role("heading", name="dropped.jsonl").is_visible()


def test_a_running_run_s_page_reloads_itself_and_a_finished_one_does_not(
    client: TestClient,
) -> None:
    run = client.post("/v1/runs", json={"name": "live", "config": {"preset": "none"}}).json()
    client.post(f"/v1/runs/{run['id']}/evaluations", json={"row": {"step": 1, "val_loss": 0.5}})
    live = client.get(f"/ui/runs/{run['id']}").text
    assert 'http-equiv="refresh"' in live and "val_loss" in live
    client.post(f"/v1/runs/{run['id']}/end", json={"state": "failed", "report": {"error": "x"}})
    done = client.get(f"/ui/runs/{run['id']}").text
    assert 'http-equiv="refresh"' not in done and "failed" in done


def test_a_run_s_page_says_what_label_cleaning_did(client: TestClient) -> None:
    check = {"every_label": 1.0, "without_suspects": 0.8, "standard_error": 0.05, "z": 4.0}
    cleaning = {"checked": 64, "suspects": 25, "unlabelled": 25, "file": "suspect_labels.jsonl"}
    reports = {
        "applied": {"label_cleaning": {**cleaning, "validation_check": check}},
        "refused": {"label_cleaning": {**cleaning, "unlabelled": 0, "validation_check": None}},
        "odd": {"label_cleaning": {**cleaning, "checked": "many"}},  # not antifit train's shape
    }
    pages = {}
    for name, report in reports.items():
        run = client.post("/v1/runs", json={"name": name, "config": {"preset": "ensemble"}}).json()
        client.post(f"/v1/runs/{run['id']}/end", json={"state": "succeeded", "report": report})
        pages[name] = client.get(f"/ui/runs/{run['id']}")
    text = {name: html.unescape(page.text) for name, page in pages.items()}
    assert (
        "25 of 64 training labels looked wrong to the probe; 25 trained without their label "
        "(validation check: z 4.0); the run's output folder lists them in suspect_labels.jsonl"
        in text["applied"]
    )
    assert (
        "25 of 64 training labels looked wrong to the probe; every label kept;" in text["refused"]
    )
    assert pages["odd"].status_code == 200 and "Label cleaning" not in pages["odd"].text


def test_the_sign_in_form_is_open_but_its_body_is_capped(tmp_path: Path) -> None:
    key = "s3cret-key-of-the-console-test"
    settings = Settings(
        data_dir=tmp_path / "data",
        max_body_bytes=4096,
        api_keys=[ApiKey.model_validate({"name": "ana", "key": key, "role": "admin"})],
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/ui/login").status_code == 200  # no key needed to sign in
        assert client.get("/ui/static/console.css").status_code == 200
        huge = client.post("/ui/login", data={"key": "x" * 10_000, "csrf": "y"})
        assert huge.status_code == 413


def test_hostile_playground_and_ids_are_4xx_pages(client: TestClient) -> None:
    page = client.get("/ui/playground")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    deep = client.post("/ui/playground", data={"spec": "[" * 19_000, "csrf": token.group(1)})
    assert deep.status_code == 422 and "nested too deeply" in deep.text
    big = client.post("/ui/playground", data={"spec": "{}" * 20_000, "csrf": token.group(1)})
    assert big.status_code == 422
    for path in ("/ui/datasets/", "/ui/jobs/", "/ui/runs/"):
        assert client.get(path + "a" * 100).status_code == 422
