"""The same metadata flow against the real PostgreSQL server (see the pg_url fixture)."""

import time
from pathlib import Path

import pytest
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


def test_the_api_waits_for_a_database_that_is_not_up_yet(pg_url: str, tmp_path: Path) -> None:
    import threading

    import sqlalchemy

    from app.local_server import PG_ADMIN_URL

    admin = sqlalchemy.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    late = pg_url + "_late"  # a database that appears two seconds after the API starts
    name = late.rsplit("/", 1)[1]

    def create_later() -> None:
        time.sleep(2)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    creator = threading.Thread(target=create_later)
    creator.start()
    try:
        settings = Settings(data_dir=tmp_path, database_url=late, database_wait_s=30)
        with TestClient(create_app(settings)) as c:
            assert c.get("/readyz").json()["checks"]["database"] == "ok"
    finally:
        creator.join()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    failing = Settings(data_dir=tmp_path, database_url=late, database_wait_s=1)
    with pytest.raises(sqlalchemy.exc.OperationalError):
        with TestClient(create_app(failing)):
            pass
