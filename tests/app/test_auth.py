from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


def test_api_keys_guard_v1_but_not_health(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_keys": ["k-one", "k-two"]})
    with TestClient(create_app(keyed)) as c:
        r = c.get("/v1/datasets")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["type"] == "urn:antifit:problem:unauthorized"
        assert c.get("/v1/datasets", headers={"x-api-key": "wrong"}).status_code == 401
        assert c.get("/v1/datasets", headers={"x-api-key": "k-two"}).status_code == 200
        assert c.get("/v1/datasets", headers={"authorization": "Bearer k-one"}).status_code == 200
        assert c.get("/livez").status_code == 200


def test_api_keys_from_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ANTIFIT_API_KEYS", '["a", "b"]')
    assert Settings().api_keys == ["a", "b"]
