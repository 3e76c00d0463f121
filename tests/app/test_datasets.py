import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from tests.app.helpers import NDJSON
from tests.conftest import EXAMPLES

REVIEWS = (EXAMPLES / "reviews.jsonl").read_bytes()


def stored_nothing(settings: Settings) -> bool:
    datasets = list((settings.data_dir / "datasets").iterdir())
    # the server's own scratch folder stays (locked while it runs), empty
    leftovers = [p for p in (settings.data_dir / "tmp").rglob("*") if p.is_file()]
    leftovers = [p for p in leftovers if p.name != ".lock"]
    return datasets == [] and leftovers == []


def test_upload_jsonl_and_read_it_back(client: TestClient) -> None:
    r = client.post(
        "/v1/datasets?name=reviews&id_field=id&split_field=split", content=REVIEWS, headers=NDJSON
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/v1/datasets/{body['id']}"
    assert body["rows"] == 36 and body["shards"] == 4  # shard_size 10
    assert body["splits"] == {"train": 24, "validation": 6, "test": 6}
    assert {x["label"]: x["count"] for x in body["labels"]} == {
        "positive": 14,
        "negative": 14,
        "neutral": 8,
    }
    assert body["text_length"]["min"] > 0 and body["skipped_rows"] == []
    assert client.get(body["id"].join(["/v1/datasets/", ""])).json()["rows"] == 36

    seen, token = [], None
    while True:
        page = client.get(
            f"/v1/datasets/{body['id']}/records",
            params={"page_size": 7, **({"page_token": token} if token else {})},
        ).json()
        seen += page["records"]
        token = page["next_page_token"]
        if token is None:
            break
    originals = [json.loads(line) for line in REVIEWS.decode().splitlines()]
    assert [r["id"] for r in seen] == [o["id"] for o in originals]
    assert seen[30]["text"] == originals[30]["text"]  # Chinese text intact
    val = client.get(f"/v1/datasets/{body['id']}/records?split=validation").json()["records"]
    assert len(val) == 6 and all(r["split"] == "validation" for r in val)


def test_multipart_csv_and_parquet_uploads(client: TestClient, tmp_path: Path) -> None:
    csv_body = 'body,category,extra\n"Great, really",1,x\nBad,0,y\n'
    r = client.post(
        "/v1/datasets?text_field=body&label_field=category",
        files={"file": ("data.csv", csv_body.encode(), "text/csv")},
    )
    assert r.status_code == 201, r.text
    assert r.json()["format"] == "csv" and r.json()["name"] == "data.csv"
    rec = client.get(f"/v1/datasets/{r.json()['id']}/records").json()["records"]
    assert rec[0]["text"] == "Great, really" and rec[0]["meta"] == {"extra": "x"}

    table = pa.table({"text": ["one", "two", "three"], "label": [0, 1, 0]})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    r = client.post("/v1/datasets", files={"file": ("x.parquet", buf.getvalue())})
    assert r.status_code == 201, r.text
    rec = client.get(f"/v1/datasets/{r.json()['id']}/records").json()["records"]
    assert [x["label"] for x in rec] == [0, 1, 0]  # integer labels stay integers


def test_split_ratios_are_deterministic(client: TestClient) -> None:
    lines = "".join(json.dumps({"text": f"text {i}", "label": i % 2}) + "\n" for i in range(400))
    url = "/v1/datasets?splits=train:0.8,validation:0.1,test:0.1&split_seed=3"
    a = client.post(url, content=lines, headers=NDJSON).json()
    b = client.post(url, content=lines, headers=NDJSON).json()
    assert a["splits"] == b["splits"]
    assert 280 <= a["splits"]["train"] <= 360
    bad = client.post("/v1/datasets?splits=train:0.8,dev:0.2", content=lines, headers=NDJSON)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "splits"


def test_malformed_jsonl_line_3_rejects_the_upload(client: TestClient, settings: Settings) -> None:
    body = b'{"text": "a", "label": 1}\n{"text": "b", "label": 1}\n{"text": "c", "label": \n'
    r = client.post("/v1/datasets", content=body, headers=NDJSON)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == "urn:antifit:problem:invalid-upload"
    assert problem["errors"][0]["line"] == 3 and "line 3" in problem["detail"]
    assert stored_nothing(settings)
    assert client.get("/v1/datasets").json()["datasets"] == []


def test_wrong_fields_are_named(client: TestClient, settings: Settings) -> None:
    body = (
        b'{"text": "ok", "label": "a"}\n{"txt": "oops", "label": "a"}\n'
        b'{"text": "ok", "label": {"x": 1}}\n{"text": "   ", "label": "a"}\n'
    )
    errors = client.post("/v1/datasets", content=body, headers=NDJSON).json()["errors"]
    assert [(e["line"], e["field"]) for e in errors] == [(2, "text"), (3, "label"), (4, "text")]
    assert stored_nothing(settings)


def test_csv_without_the_text_column(client: TestClient, settings: Settings) -> None:
    r = client.post("/v1/datasets", files={"file": ("d.csv", b"body,label\nhello,1\n", "text/csv")})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "text" and "no column 'text'" in r.json()["detail"]
    assert stored_nothing(settings)


def test_invalid_utf8(client: TestClient, settings: Settings) -> None:
    body = b'{"text": "ok", "label": 1}\n{"text": "\xff\xfe", "label": 1}\n'
    r = client.post("/v1/datasets", content=body, headers=NDJSON)
    assert r.status_code == 422 and r.json()["errors"][0]["line"] == 2
    assert "UTF-8" in r.json()["errors"][0]["message"]
    r = client.post("/v1/datasets", files={"file": ("d.csv", b"text,label\nok,1\n\xff,2\n")})
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"]
    assert stored_nothing(settings)


def test_oversized_upload_is_413_and_leaves_nothing(client: TestClient, settings: Settings) -> None:
    big = b"".join(b'{"text": "%d ' % i + b"x" * 200 + b'", "label": 1}\n' for i in range(2000))
    r = client.post("/v1/datasets", content=big, headers=NDJSON)
    assert r.status_code == 413 and r.json()["limit"] == settings.max_upload_bytes
    r = client.post("/v1/datasets", files={"file": ("big.jsonl", big)})
    assert r.status_code == 413

    def chunks():  # no Content-Length: the cap applies while streaming
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    r = client.post("/v1/datasets", content=chunks(), headers=NDJSON)
    assert r.status_code == 413
    assert stored_nothing(settings)


def test_on_error_skip_keeps_good_rows(client: TestClient) -> None:
    body = (
        b'{"id": "a", "text": "ok", "label": 1}\nnot json\n{"id": "a", "text": "dup", "label": 2}\n'
    )
    r = client.post("/v1/datasets?on_error=skip&id_field=id", content=body, headers=NDJSON)
    assert r.status_code == 201
    assert r.json()["rows"] == 1 and r.json()["skipped"] == 2
    assert [(s["line"], s["field"]) for s in r.json()["skipped_rows"]] == [(2, None), (3, "id")]


def test_empty_upload_and_bad_params(client: TestClient) -> None:
    r = client.post("/v1/datasets", content=b"", headers=NDJSON)
    assert r.status_code == 422 and "no records" in r.json()["detail"]
    r = client.post("/v1/datasets?on_error=maybe", content=REVIEWS, headers=NDJSON)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.on_error"
    r = client.post("/v1/datasets", files={"notfile": ("x", b"y")})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"


def test_unknown_ids_and_tokens(client: TestClient) -> None:
    for method, url in (
        ("GET", "/v1/datasets/nope"),
        ("GET", "/v1/datasets/nope/records"),
        ("DELETE", "/v1/datasets/nope"),
    ):
        r = client.request(method, url)
        assert r.status_code == 404 and r.json()["type"] == "urn:antifit:problem:not-found"
    assert client.get("/v1/datasets?page_token=garbage!").status_code == 422
    assert client.get("/v1/nothing").json()["status"] == 404


def test_list_pages_and_delete(client: TestClient, settings: Settings) -> None:
    ids = [
        client.post(f"/v1/datasets?name=d{i}", content=REVIEWS, headers=NDJSON).json()["id"]
        for i in range(5)
    ]
    seen, token = [], None
    while True:
        page = client.get(
            "/v1/datasets", params={"page_size": 2, **({"page_token": token} if token else {})}
        ).json()
        seen += [d["id"] for d in page["datasets"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == ids[::-1]
    assert client.delete(f"/v1/datasets/{ids[0]}").status_code == 204
    assert client.get(f"/v1/datasets/{ids[0]}").status_code == 404
    assert not (settings.data_dir / "datasets" / ids[0]).exists()


def test_concurrent_uploads(client: TestClient) -> None:
    def upload(i: int) -> int:
        return client.post(f"/v1/datasets?name=c{i}", content=REVIEWS, headers=NDJSON).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(upload, range(8))) == [201] * 8
    assert len(client.get("/v1/datasets?page_size=100").json()["datasets"]) == 8


def test_hostile_rows_are_row_errors_not_500s(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.storage.ingest.MAX_LINE_BYTES", 6_000)
    rows = [
        b'{"text": "fine", "label": 1}',
        b'{"text": "' + b"x" * 10_000 + b'", "label": 1}',  # over the line cap: never parsed
        b'{"text": "big number", "label": ' + b"9" * 5_000 + b"}",
        b'{"text": "deep", "label": 1, "meta": ' + b"[" * 2_000 + b"]" * 2_000 + b"}",
        b'{"text": "nan", "label": NaN}',
        b'{"text": "inf", "label": Infinity}',
        b'{"text": "long id", "label": 1, "id": "' + b"i" * 300 + b'"}',
    ]
    r = client.post(
        "/v1/datasets?id_field=id&on_error=reject",
        content=b"\n".join(rows),
        headers=NDJSON,
    )
    assert r.status_code == 422, r.text
    by_line = {e["line"]: e for e in r.json()["errors"]}
    assert "longer than 6000 bytes" in by_line[2]["message"]
    assert by_line[3]["message"].startswith("invalid JSON")
    assert by_line[4]["message"] == "invalid JSON: nested too deeply"
    assert by_line[5]["field"] == "label" and "finite" in by_line[5]["message"]
    assert by_line[6]["field"] == "label"
    assert stored_nothing(settings)


def test_texts_over_the_limit_are_row_errors(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient as Client

    from app.main import create_app

    small = Settings(data_dir=tmp_path / "d", max_text_chars=10)
    with Client(create_app(small)) as c:
        body = b'{"text": "short", "label": 1}\n{"text": "far too long a text", "label": 1}\n'
        r = c.post("/v1/datasets", content=body, headers=NDJSON)
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {"line": 2, "field": "text", "message": "text has 19 characters; the limit is 10"}
        ]


def test_a_full_disk_is_507_and_leaves_nothing(tmp_path: Path) -> None:
    import subprocess

    from fastapi.testclient import TestClient as Client

    from app.main import create_app

    disk = tmp_path / "small"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"needs root to mount a 2 MB tmpfs: {mounted.stderr.decode().strip()}")
    try:
        full = Settings(
            data_dir=disk / "data",
            database_url=f"sqlite:///{tmp_path / 'meta.db'}",  # the metadata lives elsewhere
            max_upload_bytes=10_000_000,
        )
        with Client(create_app(full)) as c:
            line = json.dumps({"text": "words " * 200, "label": 1}) + "\n"
            r = c.post("/v1/datasets", content=line * 4_000, headers=NDJSON)  # ~5 MB
            assert r.status_code == 507, r.text
            assert r.json()["type"] == "urn:antifit:problem:insufficient-storage"
            assert stored_nothing(full)
            ok = c.post("/v1/datasets", content=line * 10, headers=NDJSON)
            assert ok.status_code == 201  # space came back: the service works on
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_a_parquet_decompression_bomb_is_refused_before_decoding(
    client: TestClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.storage.ingest.MAX_ROW_GROUP_BYTES", 50_000)
    table = pa.table({"text": ["a" * 100_000] * 10, "label": [1] * 10})  # compresses to little
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    assert len(buffer.getvalue()) < 5_000
    r = client.post(
        "/v1/datasets?format=parquet",
        content=buffer.getvalue(),
        headers={"content-type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 422 and "uncompressed" in r.json()["errors"][0]["message"]
    assert stored_nothing(settings)


def test_a_generation_dataset_of_prompts_and_responses(client: TestClient) -> None:
    body = (EXAMPLES / "instructions.jsonl").read_bytes()
    r = client.post(
        "/v1/datasets?id_field=id&split_field=split&prompt_field=prompt&response_field=response",
        content=body,
        headers=NDJSON,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["task"] == "generation" and created["labels"] == []
    assert created["fields"]["prompt"] == "prompt" and created["response_length"]["min"] > 0
    first = json.loads(body.decode().splitlines()[0])
    record = client.get(f"/v1/datasets/{created['id']}/records?page_size=1").json()["records"][0]
    assert record["text"] == first["prompt"]
    assert record["label"] == {"response": first["response"]}
    assert record["meta"] == {}  # the used columns are not repeated
    # a classification dataset says so too
    plain = client.post("/v1/datasets?id_field=id", content=REVIEWS, headers=NDJSON).json()
    assert plain["task"] == "classification" and plain["response_length"] is None


def test_a_generation_dataset_of_chats(client: TestClient) -> None:
    r = client.post(
        "/v1/datasets?id_field=id&split_field=split&messages_field=messages",
        content=(EXAMPLES / "chats.jsonl").read_bytes(),
        headers=NDJSON,
    )
    assert r.status_code == 201, r.text
    records = client.get(f"/v1/datasets/{r.json()['id']}/records").json()["records"]
    gift = next(x for x in records if x["id"] == "c1")
    assert gift["text"] == "She loves gardening."  # the last user turn: what augmentation sees
    assert gift["label"]["response"].startswith("A set of quality pruning shears")
    assert [m["role"] for m in gift["label"]["context"]] == ["user", "assistant"]
    assert "context" not in next(x for x in records if x["id"] == "c2")["label"]


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"messages": "not json"}, "messages", "not a JSON list"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "messages", "at least two"),
        ({"messages": [{"role": "bot", "content": "x"}, {}]}, "messages[0]", "a role among"),
        (
            {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]},
            "messages[1].content",
            "content is empty",
        ),
        (
            {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]},
            "messages",
            "end with a user message",
        ),
    ],
)
def test_bad_chats_name_the_message(
    client: TestClient, settings: Settings, row: dict[str, object], field: str, message: str
) -> None:
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    lines = [json.dumps(good), json.dumps(row)]
    r = client.post(
        "/v1/datasets?messages_field=messages", content="\n".join(lines), headers=NDJSON
    )
    assert r.status_code == 422, r.text
    (error,) = r.json()["errors"]
    assert error["line"] == 2 and error["field"] == field and message in error["message"]
    assert stored_nothing(settings)


def test_generation_fields_go_together(client: TestClient) -> None:
    r = client.post("/v1/datasets?prompt_field=prompt", content=b"{}", headers=NDJSON)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "response_field"
    r = client.post(
        "/v1/datasets?messages_field=m&prompt_field=p&response_field=r",
        content=b"{}",
        headers=NDJSON,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "messages_field"
    # a missing response is a row error naming the column
    r = client.post(
        "/v1/datasets?prompt_field=prompt&response_field=response",
        content=b'{"prompt": "q", "response": "a"}\n{"prompt": "q2"}\n',
        headers=NDJSON,
    )
    assert r.status_code == 422
    error = {"line": 2, "field": "response", "message": "response is missing"}
    assert r.json()["errors"][0] == error
