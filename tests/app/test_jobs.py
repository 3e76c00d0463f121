import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from augmenters import augment
from tests.app.helpers import dataset_of, wait_for_job

SPEC = {
    "pipeline": {
        "type": "sequence",
        "steps": [{"type": "keyboard", "p": 0.3}, {"type": "word_swap", "p": 0.2}],
    }
}


def test_job_writes_an_augmented_version_equal_to_the_library(
    client: TestClient, settings: Settings
) -> None:
    ds = dataset_of(client, 45)  # 5 shards of 10 (the last of 5)
    r = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC, "seed": 3, "n_variants": 2})
    assert r.status_code == 202 and r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
    job = wait_for_job(client, r.json()["id"])
    assert job["state"] == "succeeded", job
    assert job["records_done"] == job["records_total"] == 45
    assert job["variants_written"] == 90 and job["records_per_second"] > 0
    manifest = job["manifest"]
    assert manifest["seed"] == 3 and manifest["output"]["shards"] == 5
    assert manifest["spec"]["pipeline"]["type"] == "sequence" and "antifit" in manifest["versions"]

    out = settings.data_dir / "datasets" / ds / "jobs" / job["id"]
    rows = [
        row for p in sorted(out.glob("shard-*.parquet")) for row in pq.read_table(p).to_pylist()
    ]
    records = [
        {
            "id": f"r{i}",
            "text": f"record number {i} says the battery lasts {i % 7} days",
            "label": i % 3,
        }
        for i in range(45)
    ]
    expected = augment(records, SPEC, seed=3, n_variants=2)
    assert [(r["id"], r["variant"], r["text"]) for r in rows] == [
        (v.record_id, v.variant, v.text) for v in expected
    ]
    assert client.get(f"/v1/datasets/{ds}/jobs").json()[0]["id"] == job["id"]


def test_only_the_chosen_splits_are_augmented(client: TestClient) -> None:
    ds = dataset_of(client, 60, splits="train:0.5,validation:0.5")
    sizes = client.get(f"/v1/datasets/{ds}").json()["splits"]
    job = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC}).json()
    done = wait_for_job(client, job["id"])
    assert done["records_done"] == sizes["train"] and done["variants_written"] == sizes["train"]
    r = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC, "splits": ["test"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "splits"


def test_idempotency_key(client: TestClient) -> None:
    ds = dataset_of(client, 10)
    body = {"spec": SPEC, "seed": 1}
    a = client.post(f"/v1/datasets/{ds}/jobs", json=body, headers={"Idempotency-Key": "abc"})
    b = client.post(f"/v1/datasets/{ds}/jobs", json=body, headers={"Idempotency-Key": "abc"})
    assert a.status_code == b.status_code == 202 and a.json()["id"] == b.json()["id"]
    c = client.post(
        f"/v1/datasets/{ds}/jobs", json={**body, "seed": 2}, headers={"Idempotency-Key": "abc"}
    )
    assert c.status_code == 422 and c.json()["type"] == "urn:antifit:problem:idempotency-key-reused"
    assert len(client.get(f"/v1/datasets/{ds}/jobs").json()) == 1


def test_invalid_job_requests(client: TestClient) -> None:
    ds = dataset_of(client, 10)
    r = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": {"pipeline": {"type": "nope"}}})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "spec.pipeline"
    r = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC, "n_variants": -1})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.n_variants"
    assert client.post("/v1/datasets/nope/jobs", json={"spec": SPEC}).status_code == 404
    assert client.get("/v1/jobs/nope").status_code == 404
    assert client.post("/v1/jobs/nope/cancel").status_code == 404


def test_cancel_and_failure(client: TestClient) -> None:
    ds = dataset_of(client, 30)
    job = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC}).json()
    r = client.post(f"/v1/jobs/{job['id']}/cancel")
    if r.status_code == 202:  # it had not finished yet
        assert r.json()["state"] == "cancelled"
        assert wait_for_job(client, job["id"])["state"] == "cancelled"
    else:
        assert r.status_code == 409
    again = client.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["type"] == "urn:antifit:problem:job-finished"


def test_a_served_spec_names_registered_models_and_failures_show_no_server_path(
    settings: Settings, tmp_path: Path
) -> None:
    broken = tmp_path / "resources" / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{}")  # registered, but no model can load from it
    served = Settings(**{**settings.model_dump(), "resources_dir": tmp_path / "resources"})
    with TestClient(create_app(served)) as client:
        ds = dataset_of(client, 10)
        by_path = {"pipeline": {"type": "contextual", "model": "/nonexistent/model"}}
        r = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": by_path})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "spec.pipeline.model"
        assert "never server paths" in r.json()["detail"]
        by_name = {"pipeline": {"type": "contextual", "model": "broken"}}
        job = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": by_name}).json()
        failed = wait_for_job(client, job["id"])
        assert failed["state"] == "failed"
        assert str(tmp_path) not in failed["error"]
        catalogue = client.get("/v1/augmenters").json()
        assert catalogue["resources"] == {"lexicons": [], "models": ["broken"], "words": []}


def test_metrics_count_uploads_jobs_and_streams(client: TestClient) -> None:
    ds = dataset_of(client, 10)
    wait_for_job(client, client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC}).json()["id"])
    client.get(f"/v1/datasets/{ds}/stream")
    text = client.get("/metrics").text
    assert 'antifit_uploads_total{outcome="created"} 1.0' in text
    assert 'antifit_jobs_total{state="succeeded"} 1.0' in text
    assert "antifit_job_records_total 10.0" in text
    assert "antifit_stream_records_total 10.0" in text


def test_job_errors_keep_server_paths_to_the_log() -> None:
    from app.jobs.runner import public_error

    message = public_error(OSError("cannot open '/srv/antifit/models/x/config.json': denied"))
    assert message == "OSError: cannot open '<server path>': denied"
    assert "https://example.org/a" in public_error(ValueError("see https://example.org/a"))


def test_a_replica_without_the_dataset_s_files_fails_the_job_loudly(
    client: TestClient, settings: Settings
) -> None:
    folder = settings.data_dir / "datasets"
    gone = dataset_of(client, 25)  # three shards: as if this replica had its own data folder
    for shard in (folder / gone).glob("shard-*.parquet"):
        shard.unlink()
    job = wait_for_job(
        client, client.post(f"/v1/datasets/{gone}/jobs", json={"spec": SPEC}).json()["id"]
    )
    assert job["state"] == "failed" and job["variants_written"] == 0
    assert "finds 0 of the dataset's 3 input shards" in job["error"]

    changed = dataset_of(client, 25)
    second = folder / changed / "shard-00001.parquet"
    table = pq.read_table(second)
    texts = table.column("text").to_pylist()
    pq.write_table(table.set_column(1, "text", pa.array(["edited", *texts[1:]])), second)
    job = wait_for_job(
        client, client.post(f"/v1/datasets/{changed}/jobs", json={"spec": SPEC}).json()["id"]
    )
    assert job["state"] == "failed" and "input shard 1 differs" in job["error"]


def _stuck(settings: Settings, dataset_id: str) -> None:
    """Make the dataset's shard a FIFO nobody writes: a worker reading it hangs for good."""
    shard = settings.data_dir / "datasets" / dataset_id / "shard-00000.parquet"
    shard.unlink()
    os.mkfifo(shard)


def test_a_stuck_shard_fails_its_job_at_the_deadline_and_cancel_stops_one(
    settings: Settings,
) -> None:
    # long enough for a healthy shard on a fresh worker (its imports count) on a busy machine
    quick = Settings(**{**settings.model_dump(), "workers": 1, "shard_deadline_s": 6.0})
    with TestClient(create_app(quick)) as client:
        stuck = dataset_of(client, 5)
        _stuck(quick, stuck)
        job = client.post(f"/v1/datasets/{stuck}/jobs", json={"spec": SPEC}).json()
        failed = wait_for_job(client, job["id"], timeout=30)
        assert failed["state"] == "failed" and "ran longer than 6 s" in failed["error"]

        # the one worker is free again: a healthy job after it succeeds
        healthy = dataset_of(client, 5)
        ok = client.post(f"/v1/datasets/{healthy}/jobs", json={"spec": SPEC}).json()
        done = wait_for_job(client, ok["id"], timeout=60)
        assert done["state"] == "succeeded", done["error"]

        # cancel stops a running shard, not only queued ones
        job = client.post(f"/v1/datasets/{stuck}/jobs", json={"spec": SPEC, "seed": 1}).json()
        while client.get(f"/v1/jobs/{job['id']}").json()["state"] != "running":
            time.sleep(0.05)
        assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 202
        again = client.post(f"/v1/datasets/{healthy}/jobs", json={"spec": SPEC, "seed": 2}).json()
        assert wait_for_job(client, again["id"], timeout=30)["state"] == "succeeded"


def test_a_failed_job_can_be_retried_and_resumes(settings: Settings) -> None:
    quick = Settings(**{**settings.model_dump(), "workers": 1, "shard_deadline_s": 6.0})
    with TestClient(create_app(quick)) as client:
        ds = dataset_of(client, 25)  # three shards of 10
        shard = quick.data_dir / "datasets" / ds / "shard-00002.parquet"
        kept = shard.read_bytes()
        shard.unlink()
        os.mkfifo(shard)
        job = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC}).json()
        assert wait_for_job(client, job["id"], timeout=30)["state"] == "failed"
        shard.unlink()
        shard.write_bytes(kept)  # the transient fault is gone
        r = client.post(f"/v1/jobs/{job['id']}/retry")
        assert r.status_code == 202 and r.json()["state"] == "queued" and r.json()["error"] is None
        done = wait_for_job(client, job["id"], timeout=60)
        assert done["state"] == "succeeded" and done["records_done"] == 25
        again = client.post(f"/v1/jobs/{job['id']}/retry")
        assert (
            again.status_code == 409
            and again.json()["type"] == "urn:antifit:problem:job-not-retryable"
        )


def test_deleting_a_dataset_stops_its_running_job_and_its_folder_stays_gone(
    settings: Settings,
) -> None:
    quick = Settings(**{**settings.model_dump(), "workers": 1})
    with TestClient(create_app(quick)) as client:
        doomed = dataset_of(client, 5)
        _stuck(quick, doomed)
        job = client.post(f"/v1/datasets/{doomed}/jobs", json={"spec": SPEC}).json()
        while client.get(f"/v1/jobs/{job['id']}").json()["state"] != "running":
            time.sleep(0.05)
        assert client.delete(f"/v1/datasets/{doomed}").status_code == 204
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
        # the stuck worker is stopped: the only worker takes the next job
        other = dataset_of(client, 5)
        next_job = client.post(f"/v1/datasets/{other}/jobs", json={"spec": SPEC}).json()
        assert wait_for_job(client, next_job["id"], timeout=30)["state"] == "succeeded"
        assert not (quick.data_dir / "datasets" / doomed).exists()


def test_a_job_over_its_output_budget_fails_naming_it(settings: Settings) -> None:
    small = Settings(**{**settings.model_dump(), "max_shard_output_bytes": 500})
    with TestClient(create_app(small)) as client:
        ds = dataset_of(client, 10)
        job = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC, "n_variants": 8})
        failed = wait_for_job(client, job.json()["id"])
        assert failed["state"] == "failed"
        assert "output budget of 500 bytes per shard" in failed["error"]


def test_a_generation_job_rewrites_prompts_unless_asked_for_responses(
    client: TestClient, settings: Settings
) -> None:
    import json

    from tests.app.helpers import NDJSON
    from tests.conftest import EXAMPLES

    ds = client.post(
        "/v1/datasets?id_field=id&split_field=split&prompt_field=prompt&response_field=response",
        content=(EXAMPLES / "instructions.jsonl").read_bytes(),
        headers=NDJSON,
    ).json()["id"]
    originals = {r["id"]: r for r in client.get(f"/v1/datasets/{ds}/records").json()["records"]}
    swap = {"pipeline": {"type": "word_swap", "p": 0.5}}

    def variants(target: str | None) -> list[dict[str, object]]:
        body = {"spec": swap, "seed": 1, **({"target": target} if target else {})}
        job = wait_for_job(client, client.post(f"/v1/datasets/{ds}/jobs", json=body).json()["id"])
        assert job["state"] == "succeeded" and job["manifest"]["target"] == (target or "text")
        out = settings.data_dir / "datasets" / ds / "jobs" / job["id"]
        return [row for p in sorted(out.glob("*.parquet")) for row in pq.read_table(p).to_pylist()]

    prompts = variants(None)
    assert any(v["text"] != originals[v["id"]]["text"] for v in prompts)
    assert all(json.loads(v["label"]) == originals[v["id"]]["label"] for v in prompts)
    responses = variants("response")
    assert all(v["text"] == originals[v["id"]]["text"] for v in responses)
    changed = [v for v in responses if json.loads(v["label"]) != originals[v["id"]]["label"]]
    assert changed and all(set(json.loads(v["label"])) == {"response"} for v in changed)
    expected = augment(
        [
            {"id": i, "text": r["label"]["response"]}
            for i, r in originals.items()
            if r["split"] == "train"  # a job's default
        ],
        swap,
        seed=1,
    )
    assert [json.loads(v["label"])["response"] for v in responses] == [v.text for v in expected]

    plain = dataset_of(client, 5)
    r = client.post(f"/v1/datasets/{plain}/jobs", json={"spec": swap, "target": "response"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "target"


def test_a_chinese_job_over_the_chinese_sample(client: TestClient, settings: Settings) -> None:
    import json

    from augmenters.chinese import is_traditional
    from tests.app.helpers import NDJSON
    from tests.conftest import EXAMPLES

    examples = client.get("/v1/augmenters").json()["examples"]
    assert {"chinese_eda", "chinese_typos"} <= set(examples)
    ds = client.post(
        "/v1/datasets?id_field=id&split_field=split",
        content=(EXAMPLES / "reviews_zh.jsonl").read_bytes(),
        headers=NDJSON,
    ).json()["id"]
    body = {"spec": examples["chinese_typos"], "seed": 5, "n_variants": 2}
    job = wait_for_job(client, client.post(f"/v1/datasets/{ds}/jobs", json=body).json()["id"])
    assert job["state"] == "succeeded" and job["variants_written"] > 20
    out = settings.data_dir / "datasets" / ds / "jobs" / job["id"]
    rows = [row for p in sorted(out.glob("*.parquet")) for row in pq.read_table(p).to_pylist()]
    originals = {
        r["id"]: r["text"] for r in client.get(f"/v1/datasets/{ds}/records").json()["records"]
    }
    assert {json.loads(r["ops"])[0]["op"] for r in rows} <= {"homophone", "similar_shape"}
    for row in rows:
        assert row["text"] != originals[row["id"]]
        assert is_traditional(row["text"]) == is_traditional(originals[row["id"]])
