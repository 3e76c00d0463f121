"""Hostile input against the real server (uvicorn on loopback): each answered with a clear 4xx
within a deadline, while /livez keeps answering."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.keys import digest
from app.local_server import running

KEY = "hostile-suite-key-0123"
HEADERS = {"x-api-key": KEY}
BODY_CAP = 256 * 1024

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("hostile")
    (root / "resources" / "lexicons").mkdir(parents=True)
    (root / "resources" / "lexicons" / "colours.json").write_text('{"red": ["crimson"]}')
    (root / "resources" / "words").mkdir()
    (root / "resources" / "words" / "brands.txt").write_text("# product names\n华为畅享 10 nz\n")
    env = {
        "ANTIFIT_API_KEYS": json.dumps([{"name": "suite", "role": "admin", "sha256": digest(KEY)}]),
        "ANTIFIT_MAX_BODY_BYTES": str(BODY_CAP),
        "ANTIFIT_RESOURCES_DIR": str(root / "resources"),
        "ANTIFIT_WORKERS": "1",
        "ANTIFIT_AUGMENT_DEADLINE_S": "5",
    }
    with running(root / "data", env) as (base, _proc):
        yield base


def _post(base: str, path: str, body: Any, timeout: float = 10) -> httpx.Response:
    return httpx.post(f"{base}{path}", json=body, headers=HEADERS, timeout=timeout)


def _augment(base: str, pipeline: dict[str, Any], texts: list[str], **extra: Any) -> httpx.Response:
    return _post(base, "/v1/augment", {"records": texts, "spec": {"pipeline": pipeline}, **extra})


def _problem(r: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    if field is not None:
        assert body["errors"][0]["field"] == field, body
    return body


def test_a_catastrophic_regex_runs_in_linear_time(server: str) -> None:
    start = time.monotonic()
    r = _augment(server, {"type": "mask", "p": 1.0, "protect": ["(a+)+$"]}, ["a" * 5_000 + "!"])
    assert r.status_code == 200 and time.monotonic() - start < 5
    r = _augment(server, {"type": "mask", "protect": ["(a)\\1"]}, ["aa"])
    assert "back-references" in _problem(r, 422, "spec.pipeline.protect.0")["detail"]


@pytest.mark.parametrize("path", ["/etc/passwd", "/nonexistent", "/dev/zero", "/tmp"])
def test_a_spec_never_opens_a_server_file_and_tells_nothing_of_it(server: str, path: str) -> None:
    step = {"type": "synonym", "source": "lexicon", "lexicon_path": path}
    body = _problem(_augment(server, step, ["red"]), 422, "spec.pipeline.lexicon_path")
    assert path not in body["detail"]  # the same answer whether the file exists or not
    r = _augment(server, {"type": "contextual", "model": path}, ["red"])
    assert "never server paths" in _problem(r, 422, "spec.pipeline.model")["detail"]


def test_registered_lexicons_work_by_name(server: str) -> None:
    step = {"type": "synonym", "source": "lexicon", "lexicon": "colours", "p": 1.0}
    r = _augment(server, step, ["a red car"])
    assert r.status_code == 200 and r.json()["variants"][0]["text"] == "a crimson car"
    catalogue = httpx.get(f"{server}/v1/augmenters", headers=HEADERS).json()
    assert catalogue["resources"]["lexicons"] == ["colours"]


def test_a_registered_word_list_segments_chinese_by_name(server: str) -> None:
    """A pipeline's user words come from the server's registry by name, never by path."""
    text = "这款华为畅享手机的电池非常耐用"
    step = {"type": "word_delete", "p": 0.5}

    def deletions(segmentation: dict[str, Any] | None) -> set[str]:
        extra = {"segmentation": segmentation} if segmentation else {}
        body = {"records": [text], "spec": {"pipeline": step, **extra}, "n_variants": 16}
        r = _post(server, "/v1/augment", body)
        assert r.status_code == 200, r.text
        return {v["text"] for v in r.json()["variants"]}

    named = deletions({"user_words": "brands"})
    assert all(("华为畅享" in out) or ("华为" not in out and "畅享" not in out) for out in named)
    assert any("华为" in out and "畅享" not in out for out in deletions(None))  # cut in two
    inline = {"user_words": ["华为畅享"]}
    assert deletions(inline) == named
    catalogue = httpx.get(f"{server}/v1/augmenters", headers=HEADERS).json()
    assert catalogue["resources"]["words"] == ["brands"]
    for bad, field in (
        ({"user_words": "nope"}, "spec.segmentation.user_words"),
        ({"user_words_path": "/etc/passwd"}, "spec.segmentation.user_words_path"),
    ):
        body = {"records": [text], "spec": {"pipeline": step, "segmentation": bad}}
        _problem(_post(server, "/v1/augment", body), 422, field)


def _reply(s: socket.socket) -> str:
    """The whole response the server sends (it closes or stops after it)."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < 50:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode()


def test_a_huge_body_without_a_key_is_refused_before_it_is_read(server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    start = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /v1/augment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 2000000000\r\n\r\n{"records": ['
        )
        reply = _reply(s)
    assert reply.startswith("HTTP/1.1 401") and time.monotonic() - start < 2
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            b"POST /v1/augment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"X-API-Key: {KEY}\r\n".encode()
            + b'Content-Length: 2000000000\r\n\r\n{"records": ['
        )
        reply = _reply(s)
    assert reply.startswith("HTTP/1.1 413") and "body-too-large" in reply


def test_a_chunked_body_over_the_cap_is_cut_off(server: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"records": ["'
        for _ in range(64):
            yield b"a" * 16_384
        yield b'"]}'

    r = httpx.post(
        f"{server}/v1/augment",
        content=chunks(),
        headers={**HEADERS, "content-type": "application/json"},
        timeout=10,
    )
    assert _problem(r, 413)["limit"] == BODY_CAP


@pytest.mark.parametrize(
    ("pipeline", "field"),
    [
        ({"type": "mask", "mask_token": "#" * 100_000}, "spec.pipeline.mask_token"),
        ({"type": "punctuation", "marks": ["!" * 9]}, "spec.pipeline.marks.0"),
        ({"type": "mask", "protect": ["a"] * 17}, "spec.pipeline.protect"),
        ({"type": "back_translation", "batch_size": 10**9}, "spec.pipeline.batch_size"),
    ],
)
def test_sizes_in_a_spec_are_bounded(server: str, pipeline: dict[str, Any], field: str) -> None:
    _problem(_augment(server, pipeline, ["text"]), 422, field)


def test_deep_nesting_is_a_4xx(server: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    r = httpx.post(
        f"{server}/v1/augment",
        content=f'{{"records": {deep}, "spec": {{}}}}',
        headers={**HEADERS, "content-type": "application/json"},
        timeout=10,
    )
    assert 400 <= r.status_code < 500, r.text
    nested: dict[str, Any] = {"type": "mask"}
    for _ in range(50):
        nested = {"type": "sometimes", "step": nested}
    _problem(_augment(server, nested, ["x"]), 422)


def test_out_of_range_numbers_and_long_texts(server: str) -> None:
    _problem(_augment(server, {"type": "mask"}, ["x"], seed=2**70), 422, "body.seed")
    r = _augment(server, {"type": "mask"}, ["x" * 20_001])
    _problem(r, 413, "records[0].text")
    r = _augment(server, {"type": "mask"}, ["x"] * 1_001)
    _problem(r, 413, "records")


@pytest.mark.parametrize("where", ["stream", "records", "list"])
def test_forged_tokens_are_refused(server: str, tmp_path: Path, where: str) -> None:
    up = httpx.post(
        f"{server}/v1/datasets",
        content='{"text": "one", "label": 0}\n{"text": "two", "label": 1}\n',
        headers={**HEADERS, "content-type": "application/x-ndjson"},
        timeout=10,
    )
    ds = up.json()["id"]
    line = httpx.get(
        f"{server}/v1/datasets/{ds}/stream", params={"batch_size": 1}, headers=HEADERS
    ).text.splitlines()[0]
    token = json.loads(line)["resume_token"]
    payload, mac = token.split(".")
    forged = {
        "stream": (f"/v1/datasets/{ds}/stream", "resume_token", payload[:-2] + "AA." + mac),
        "records": (f"/v1/datasets/{ds}/records", "page_token", "eyJvZmZzZXQiOjF9.AAAA"),
        "list": ("/v1/datasets", "page_token", "x" * 3_000),
    }[where]
    path, name, value = forged
    r = httpx.get(f"{server}{path}", params={name: value}, headers=HEADERS)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] in (name, f"query.{name}")


def test_livez_answers_while_augment_works(server: str) -> None:
    """The augmentation runs off the event loop: /livez answers in a small fraction of the
    request's time. A blocked loop would hold each probe for the rest of the job (few probes,
    each as slow as the job); the bound is relative, so a loaded machine slows both alike."""
    texts = [f"sentence number {i} with some words to edit in it " * 4 for i in range(1_000)]
    result: dict[str, Any] = {}

    def busy() -> None:
        start = time.monotonic()
        noise = {"type": "char_noise", "p": 0.5}
        pipeline = {"type": "sequence", "steps": [noise] * 6}  # a few seconds of work
        result["r"] = _augment(server, pipeline, texts, n_variants=10, timeout=120)
        result["seconds"] = time.monotonic() - start

    worker = threading.Thread(target=busy)
    worker.start()
    latencies = []
    with httpx.Client(base_url=server, timeout=30) as client:
        while worker.is_alive():
            start = time.monotonic()
            assert client.get("/livez").status_code == 200
            latencies.append(time.monotonic() - start)
            time.sleep(0.02)
    worker.join()
    assert result["r"].status_code in (200, 503), result["r"].text
    latencies.sort()
    assert len(latencies) >= 5, (latencies, result["seconds"])
    assert latencies[len(latencies) // 2] < result["seconds"] / 5, (latencies, result["seconds"])
