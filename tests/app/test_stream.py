from collections import Counter

from fastapi.testclient import TestClient

from tests.app.helpers import dataset_of, stream_lines, wait_for_job

SPEC = {"pipeline": {"type": "keyboard", "p": 0.3}}


def items(lines: list[dict]) -> list[tuple[str, int | None]]:  # type: ignore[type-arg]
    return [(i["id"], i["variant"]) for line in lines if "batch" in line for i in line["batch"]]


def test_order_is_a_pure_function_of_seed_and_epoch(client: TestClient) -> None:
    ds = dataset_of(client, 95)
    a = stream_lines(client, ds, seed=1, epoch=0, batch_size=8)
    b = stream_lines(client, ds, seed=1, epoch=0, batch_size=8)
    c = stream_lines(client, ds, seed=1, epoch=1, batch_size=8)
    assert items(a) == items(b)
    assert items(a) != items(c) and sorted(items(a)) == sorted(items(c))
    assert len(items(a)) == 95 and len(set(items(a))) == 95
    assert a[-1] == {"end": True, "records": 95, "position": 95}
    assert all(len(line["batch"]) == 8 for line in a[:-2]) and len(a[-2]["batch"]) == 95 % 8
    unshuffled = stream_lines(client, ds, shuffle=False, batch_size=50)
    assert [i for i, _ in items(unshuffled)] == [f"r{i}" for i in range(95)]


def test_ranks_get_disjoint_shares_covering_the_epoch(client: TestClient) -> None:
    ds = dataset_of(client, 101)
    shares = [items(stream_lines(client, ds, seed=4, rank=r, world_size=3)) for r in range(3)]
    assert sum(len(s) for s in shares) == 101
    assert Counter(x for s in shares for x in s) == Counter(items(stream_lines(client, ds, seed=4)))
    assert max(len(s) for s in shares) - min(len(s) for s in shares) <= 1


def test_resume_token_continues_exactly(client: TestClient) -> None:
    ds = dataset_of(client, 77)
    full = stream_lines(client, ds, seed=2, batch_size=5, rank=1, world_size=2)
    for k in (0, 3, len(full) - 3):
        token = full[k]["resume_token"]
        rest = stream_lines(client, ds, resume_token=token, batch_size=7)
        assert items(full[: k + 1]) + items(rest) == items(full)


def test_originals_and_variants_of_a_job(client: TestClient) -> None:
    ds = dataset_of(client, 40)
    job = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC, "n_variants": 3}).json()
    assert wait_for_job(client, job["id"])["state"] == "succeeded"
    every = items(stream_lines(client, ds, job=job["id"]))
    assert len(every) == 160 and Counter(v for _, v in every) == {None: 40, 0: 40, 1: 40, 2: 40}
    capped = items(stream_lines(client, ds, job=job["id"], variants=1, originals=False))
    assert Counter(v for _, v in capped) == {0: 40}
    line = stream_lines(client, ds, job=job["id"], batch_size=1000)[0]["batch"]
    variant = next(i for i in line if i["variant"] == 0)
    assert isinstance(variant["label"], int) and variant["text"]


def test_stream_errors(client: TestClient) -> None:
    ds = dataset_of(client, 10)
    other = dataset_of(client, 10)
    assert client.get("/v1/datasets/nope/stream").status_code == 404
    assert client.get(f"/v1/datasets/{ds}/stream?job=nope").status_code == 404
    r = client.get(f"/v1/datasets/{ds}/stream?rank=2&world_size=2")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "rank"
    r = client.get(f"/v1/datasets/{ds}/stream?resume_token=zzz")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "resume_token"
    token = stream_lines(client, other, batch_size=2)[0]["resume_token"]
    assert client.get(f"/v1/datasets/{ds}/stream?resume_token={token}").status_code == 422
    assert client.get(f"/v1/datasets/{ds}/stream?originals=false").status_code == 422
    r = client.get(f"/v1/datasets/{ds}/stream?group=maybe")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.group"
    job = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC}).json()
    client.post(f"/v1/jobs/{job['id']}/cancel")
    state = wait_for_job(client, job["id"])["state"]
    if state == "cancelled":
        r = client.get(f"/v1/datasets/{ds}/stream?job={job['id']}")
        assert r.status_code == 409 and r.json()["type"] == "urn:antifit:problem:job-not-finished"
    assert client.get(f"/v1/datasets/{other}/stream?job={job['id']}").status_code == 404


def test_grouped_stream_keeps_each_record_with_its_variants(client: TestClient) -> None:
    ds = dataset_of(client, 30)
    job = client.post(f"/v1/datasets/{ds}/jobs", json={"spec": SPEC, "n_variants": 2}).json()
    assert wait_for_job(client, job["id"])["state"] == "succeeded"
    lines = stream_lines(client, ds, job=job["id"], group="true", batch_size=4, seed=3)
    batches = [line["batch"] for line in lines if "batch" in line]
    assert [len(b) for b in batches] == [12] * 7 + [6]  # 4 records x (original + 2 variants)
    for batch in batches:
        for k in range(0, len(batch), 3):
            unit = [(i["id"], i["variant"]) for i in batch[k : k + 3]]
            assert unit == [(unit[0][0], None), (unit[0][0], 0), (unit[0][0], 1)]
    grouped = items(lines)
    assert sorted(grouped, key=str) == sorted(
        items(stream_lines(client, ds, job=job["id"])), key=str
    )
    assert lines[-1]["position"] == 30  # positions count records
    shares = [
        items(stream_lines(client, ds, job=job["id"], group="true", rank=r, world_size=2))
        for r in range(2)
    ]
    assert not {i for i, _ in shares[0]} & {i for i, _ in shares[1]}
    assert len(shares[0]) + len(shares[1]) == 90
    token = lines[2]["resume_token"]
    rest = stream_lines(client, ds, resume_token=token, batch_size=5)
    assert items(lines[:3]) + items(rest) == grouped
