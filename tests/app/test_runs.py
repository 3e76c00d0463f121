"""/v1/runs: the registry of training runs — rows in order, bounded, ended once, per key."""

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.app.test_auth import ALICE, BOB, ROOT, _as, keyed  # noqa: F401


def _register(c: TestClient, key: str = ALICE) -> str:
    r = c.post(
        "/v1/runs",
        json={"name": "basic", "config": {"preset": "basic"}, "dataset": "d1"},
        headers=_as(key),
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/runs/{r.json()['id']}"
    return str(r.json()["id"])


def test_rows_in_order_then_one_end(keyed: Settings) -> None:  # noqa: F811
    with TestClient(create_app(keyed)) as c:
        run = _register(c)
        for step, loss in ((2, "0.9"), (4, "Infinity"), (6, "0.7")):  # Python's json reads it
            r = c.post(
                f"/v1/runs/{run}/evaluations",
                content=f'{{"row": {{"step": {step}, "val_loss": {loss}}}}}',
                headers={**_as(ALICE), "content-type": "application/json"},
            )
            assert r.status_code == 204, r.text
        body = c.get(f"/v1/runs/{run}", headers=_as(ALICE)).json()
        assert [r["step"] for r in body["rows"]] == [2, 4, 6] and body["evaluations"] == 3
        assert body["rows"][1]["val_loss"] is None  # JSON has no infinity
        end = c.post(
            f"/v1/runs/{run}/end",
            json={"state": "succeeded", "report": {"steps": 6}},
            headers=_as(ALICE),
        )
        assert end.status_code == 200 and end.json()["state"] == "succeeded"
        again = c.post(f"/v1/runs/{run}/end", json={"state": "failed"}, headers=_as(ALICE))
        late = c.post(f"/v1/runs/{run}/evaluations", json={"row": {"step": 8}}, headers=_as(ALICE))
        assert again.status_code == 409 and late.status_code == 409


@pytest.mark.parametrize(
    "row",
    [
        {f"m{i}": i for i in range(201)},
        {"note": "x" * 201},
        {"nested": {"a": 1}},
    ],
)
def test_a_row_is_bounded(keyed: Settings, row: dict[str, object]) -> None:  # noqa: F811
    with TestClient(create_app(keyed)) as c:
        run = _register(c)
        r = c.post(f"/v1/runs/{run}/evaluations", json={"row": row}, headers=_as(ALICE))
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"


def test_each_key_sees_its_own_runs_and_an_admin_all(keyed: Settings) -> None:  # noqa: F811
    with TestClient(create_app(keyed)) as c:
        mine = _register(c, ALICE)
        theirs = _register(c, BOB)
        assert [r["id"] for r in c.get("/v1/runs", headers=_as(ALICE)).json()] == [mine]
        assert c.get(f"/v1/runs/{theirs}", headers=_as(ALICE)).status_code == 404
        assert {r["id"] for r in c.get("/v1/runs", headers=_as(ROOT)).json()} == {mine, theirs}
        assert c.get("/v1/runs/nope", headers=_as(ALICE)).status_code == 404
