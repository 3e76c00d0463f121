from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from augmenters import augment
from augmenters.spec import FILTERS, STEPS

SPEC = {
    "pipeline": {
        "type": "sequence",
        "steps": [{"type": "keyboard", "p": 0.3}, {"type": "word_swap", "p": 0.2}],
    }
}
RECORDS = [
    {"id": i, "text": f"the battery of unit {i} lasts two full days", "label": i % 2}
    for i in range(20)
]


def test_sync_augment_matches_the_library(client: TestClient) -> None:
    r = client.post(
        "/v1/augment", json={"records": RECORDS, "spec": SPEC, "seed": 4, "n_variants": 3}
    )
    assert r.status_code == 200, r.text
    expected = [v.to_dict() for v in augment(RECORDS, SPEC, seed=4, n_variants=3)]
    assert r.json()["variants"] == expected


def test_invalid_spec_names_the_field_in_the_body(client: TestClient) -> None:
    bad = {"pipeline": {"type": "sequence", "steps": [{"type": "keyboard", "p": 3}]}}
    r = client.post("/v1/augment", json={"records": ["x"], "spec": bad})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"][0]["field"] == "spec.pipeline.steps.0.p"
    r = client.post("/v1/augment", json={"records": [{"id": 1, "text": 5}], "spec": SPEC})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "records[0].text"
    r = client.post("/v1/augment", json={"records": ["x"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.spec"


def test_sync_limit(settings: Settings) -> None:
    small = settings.model_copy(update={"max_sync_records": 5})
    with TestClient(create_app(small)) as c:
        r = c.post("/v1/augment", json={"records": ["a"] * 6, "spec": SPEC})
        assert r.status_code == 413 and r.json()["errors"][0]["field"] == "records"


def test_catalogue_lists_every_type_with_its_schema(client: TestClient) -> None:
    body = client.get("/v1/augmenters").json()
    listed = {a["type"] for key in ("augmenters", "compositions", "filters") for a in body[key]}
    assert listed == set(STEPS) | set(FILTERS)
    keyboard = next(a for a in body["augmenters"] if a["type"] == "keyboard")
    assert keyboard["schema"]["properties"]["layout"]["enum"] == ["qwerty", "qwertz", "azerty"]
    assert "eda" in body["examples"] and body["spec_schema"]["title"] == "PipelineSpec"


def test_health(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok" and ready.json()["checks"]["storage"] == "ok"
    assert "/" not in ready.text  # no path, host or exception text for anonymous callers
