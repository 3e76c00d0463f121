"""The same metadata flow against the real PostgreSQL server (see the pg_url fixture)."""

from pathlib import Path

from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from app.storage.db import Database
from tests.conftest import EXAMPLES


def test_upload_list_delete_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=pg_url, shard_size=10)
    with TestClient(create_app(settings)) as c:
        ids = []
        for i in range(3):
            r = c.post(
                f"/v1/datasets?name=pg{i}",
                content=(EXAMPLES / "reviews.jsonl").read_bytes(),
                headers={"content-type": "application/x-ndjson"},
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        page = c.get("/v1/datasets?page_size=2").json()
        rest = c.get(f"/v1/datasets?page_size=2&page_token={page['next_page_token']}").json()
        assert [d["id"] for d in page["datasets"] + rest["datasets"]] == ids[::-1]
        assert c.get(f"/v1/datasets/{ids[1]}").json()["rows"] == 36
        assert c.delete(f"/v1/datasets/{ids[1]}").status_code == 204
        assert c.get("/readyz").json()["checks"]["database"] == "ok"
    Database(pg_url).migrate()  # migrations are idempotent on a migrated database
