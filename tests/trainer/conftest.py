"""The trainer tests' real service (uvicorn on loopback) with a small labelled dataset and an
auxiliary general-domain one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from app.local_server import running
from tests.conftest import EXAMPLES

GOOD = "the screen is bright and support answered quickly great value"
BAD = "terrible battery the instructions were useless and it broke"


def records(n: int, n_train: int, n_test: int = 0, prefix: str = "r") -> str:
    lines = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        words = (GOOD if label == "pos" else BAD).split()
        text = " ".join(words[(i // 2) % 3 :][:6]) + f" item {i}"
        split = "train" if i < n_train else "test" if i >= n - n_test else "validation"
        lines.append({"id": f"{prefix}{i}", "text": text, "label": label, "split": split})
    return "".join(json.dumps(line) + "\n" for line in lines)


def upload(base: str, body: str, fields: str = "") -> str:
    r = httpx.post(
        f"{base}/v1/datasets?id_field=id&split_field=split{fields}", content=body, timeout=60
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data = tmp_path_factory.mktemp("service")
    with running(data, {"ANTIFIT_SHARD_SIZE": "16", "ANTIFIT_WORKERS": "1"}) as (base, _):
        yield {
            "base": base,
            "dataset": upload(base, records(80, 48, n_test=8)),
            "auxiliary": upload(
                base,
                "".join(
                    json.dumps(
                        {
                            "id": f"g{i}",
                            "text": f"general text {i}",
                            "label": i % 2,
                            "split": "train",
                        }
                    )
                    + "\n"
                    for i in range(30)
                ),
            ),
            "instructions": upload(
                base,
                (EXAMPLES / "instructions.jsonl").read_text(encoding="utf-8"),
                "&prompt_field=prompt&response_field=response",
            ),
            "chats": upload(
                base,
                (EXAMPLES / "chats.jsonl").read_text(encoding="utf-8"),
                "&messages_field=messages",
            ),
        }
