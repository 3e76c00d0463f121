"""The same metadata flow against the real PostgreSQL server (see the pg_url fixture)."""

from pathlib import Path

from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from app.storage.db import Database
from tests.app.helpers import stream_lines, wait_for_job
from tests.conftest import EXAMPLES

SPEC = {"pipeline": {"type": "keyboard", "p": 0.2}}


def test_upload_list_delete_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=pg_url, shard_size=10)
    with TestClient(create_app(settings)) as c:
        ids = []
        for i in range(3):
            r = c.post(
                f"/v1/datasets?name=pg{i}&id_field=id&split_field=split",
                content=(EXAMPLES / "reviews.jsonl").read_bytes(),
                headers={"content-type": "application/x-ndjson"},
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        page = c.get("/v1/datasets?page_size=2").json()
        rest = c.get(f"/v1/datasets?page_size=2&page_token={page['next_page_token']}").json()
        assert [d["id"] for d in page["datasets"] + rest["datasets"]] == ids[::-1]
        assert c.get(f"/v1/datasets/{ids[1]}").json()["rows"] == 36
        job = c.post(
            f"/v1/datasets/{ids[0]}/jobs",
            json={"spec": SPEC, "n_variants": 2},
            headers={"Idempotency-Key": "pg-1"},
        ).json()
        again = c.post(
            f"/v1/datasets/{ids[0]}/jobs",
            json={"spec": SPEC, "n_variants": 2},
            headers={"Idempotency-Key": "pg-1"},
        ).json()
        assert again["id"] == job["id"]
        done = wait_for_job(c, job["id"])
        assert done["state"] == "succeeded" and done["records_done"] == 24
        assert done["variants_written"] == 48
        streamed = stream_lines(c, ids[0], job=job["id"])
        assert streamed[-1]["records"] == 72
        assert c.delete(f"/v1/datasets/{ids[0]}").status_code == 204  # jobs go with it
        assert c.get(f"/v1/jobs/{job['id']}").status_code == 404
        assert c.get("/readyz").json()["checks"]["database"] == "ok"
    Database(pg_url).migrate()  # migrations are idempotent on a migrated database
