"""API keys: named, hashed, with roles; each key sees only what it created (admins see all)."""

import json

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.core.config import Settings
from app.core.keys import ApiKey, digest, new_key
from app.main import create_app
from tests.app.helpers import NDJSON

ALICE = "alice-key-0123456789"
BOB = "bob-key-0123456789ab"
ROOT = "root-key-0123456789a"
READER = "reader-key-012345678"


@pytest.fixture
def keyed(settings: Settings) -> Settings:
    keys = [
        {"name": "alice", "role": "read-write", "sha256": digest(ALICE)},
        {"name": "bob", "role": "read-write", "key": BOB},
        {"name": "root", "role": "admin", "sha256": digest(ROOT)},
        {"name": "reader", "role": "read-only", "sha256": digest(READER)},
    ]
    return Settings(**{**settings.model_dump(), "api_keys": keys})


def _as(key: str) -> dict[str, str]:
    return {"x-api-key": key}


def _upload(c: TestClient, key: str) -> str:
    body = '{"id": "a", "text": "hello there", "label": 1}\n'
    r = c.post("/v1/datasets?id_field=id", content=body, headers={**NDJSON, **_as(key)})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_api_keys_guard_v1_but_not_health(keyed: Settings) -> None:
    with TestClient(create_app(keyed)) as c:
        r = c.get("/v1/datasets")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:antifit:problem:unauthorized"
        assert c.get("/v1/datasets", headers=_as("wrong")).status_code == 401
        assert c.get("/v1/datasets", headers=_as(BOB)).status_code == 200
        assert (
            c.get("/v1/datasets", headers={"authorization": f"Bearer {ALICE}"}).status_code == 200
        )
        assert c.get("/livez").status_code == 200


def test_the_key_is_checked_before_the_body_is_read(keyed: Settings) -> None:
    with TestClient(create_app(keyed)) as c:
        huge = b"{" * (keyed.max_body_bytes * 4)
        r = c.post("/v1/augment", content=huge, headers={"content-type": "application/json"})
        assert r.status_code == 401  # not 413, not 422: the body was never looked at


def test_each_key_sees_only_its_own_datasets_and_jobs(keyed: Settings) -> None:
    with TestClient(create_app(keyed)) as c:
        mine = _upload(c, ALICE)
        theirs = _upload(c, BOB)
        listed = [d["id"] for d in c.get("/v1/datasets", headers=_as(ALICE)).json()["datasets"]]
        assert listed == [mine]
        for path in (
            f"/v1/datasets/{theirs}",
            f"/v1/datasets/{theirs}/records",
            f"/v1/datasets/{theirs}/jobs",
            f"/v1/datasets/{theirs}/stream",
        ):
            r = c.get(path, headers=_as(ALICE))
            assert r.status_code == 404, path  # the same answer as for a dataset that is not
        assert c.delete(f"/v1/datasets/{theirs}", headers=_as(ALICE)).status_code == 404
        job = c.post(
            f"/v1/datasets/{theirs}/jobs",
            json={"spec": {"pipeline": {"type": "mask"}}},
            headers=_as(BOB),
        ).json()["id"]
        assert c.get(f"/v1/jobs/{job}", headers=_as(ALICE)).status_code == 404
        assert c.post(f"/v1/jobs/{job}/cancel", headers=_as(ALICE)).status_code == 404
        started = c.post(
            f"/v1/datasets/{theirs}/jobs",
            json={"spec": {"pipeline": {"type": "mask"}}},
            headers=_as(ALICE),
        )
        assert started.status_code == 404
        # the admin sees everyone's
        everything = c.get("/v1/datasets", headers=_as(ROOT)).json()["datasets"]
        assert {d["id"] for d in everything} == {mine, theirs}
        assert c.get(f"/v1/jobs/{job}", headers=_as(ROOT)).status_code == 200


def test_a_read_only_key_reads_but_changes_nothing(keyed: Settings) -> None:
    with TestClient(create_app(keyed)) as c:
        assert c.get("/v1/datasets", headers=_as(READER)).status_code == 200
        body = '{"text": "x"}\n'
        r = c.post("/v1/datasets", content=body, headers={**NDJSON, **_as(READER)})
        assert r.status_code == 403 and r.json()["type"] == "urn:antifit:problem:forbidden"


def test_keys_are_kept_as_digests(monkeypatch: pytest.MonkeyPatch) -> None:
    key, entry = new_key("carol", "read-only")
    monkeypatch.setenv("ANTIFIT_API_KEYS", json.dumps([entry, "plain-but-long-enough"]))
    keys = Settings().api_keys
    assert keys[0] == ApiKey(name="carol", role="read-only", sha256=digest(key))
    assert keys[1].role == "admin" and keys[1].sha256 == digest("plain-but-long-enough")
    assert key not in Settings().model_dump_json()


@pytest.mark.parametrize(
    "keys",
    [
        [""],
        ["   "],
        ["short"],
        [{"name": "a", "key": ""}],
        [{"name": "a", "sha256": "0" * 64}, {"name": "a", "sha256": "1" * 64}],
    ],
)
def test_empty_short_or_duplicate_keys_are_configuration_errors(keys: list[object]) -> None:
    with pytest.raises(ValidationError):
        Settings(api_keys=keys)
