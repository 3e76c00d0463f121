"""The stream client against the real service on loopback."""

import json
from pathlib import Path

import httpx
import pytest
from torch.utils.data import DataLoader

from app.local_server import free_port, running, start
from trainer.stream import StreamDataset, StreamError


def upload(base: str, n: int) -> str:
    body = "".join(
        json.dumps({"id": f"r{i}", "text": f"text {i}", "label": i % 2}) + "\n" for i in range(n)
    )
    r = httpx.post(f"{base}/v1/datasets?id_field=id", content=body, timeout=60)
    r.raise_for_status()
    return str(r.json()["id"])


def ids(batches: list[list[dict]]) -> list[str]:  # type: ignore[type-arg]
    return [item["id"] for batch in batches for item in batch]


def test_epochs_ranks_and_resume(tmp_path: Path) -> None:
    with running(tmp_path, {"ANTIFIT_SHARD_SIZE": "40"}) as (base, _):
        ds = upload(base, 150)
        full = list(StreamDataset(base, ds, batch_size=16, seed=3))
        assert sorted(ids(full)) == sorted(f"r{i}" for i in range(150))
        loader = DataLoader(StreamDataset(base, ds, batch_size=16, seed=3), batch_size=None)
        assert ids(list(loader)) == ids(full)

        data = StreamDataset(base, ds, batch_size=16, seed=3)
        data.set_epoch(1)
        assert ids(list(data)) != ids(full)

        shares = [
            ids(list(StreamDataset(base, ds, batch_size=10, seed=3, rank=r, world_size=2)))
            for r in range(2)
        ]
        assert not set(shares[0]) & set(shares[1]) and len(shares[0] + shares[1]) == 150

        first = StreamDataset(base, ds, batch_size=16, seed=3)
        taken = []
        for batch in first:
            taken.append(batch)
            if len(taken) == 4:
                break
        state = first.state_dict()
        again = StreamDataset(base, ds, batch_size=16, seed=3)
        again.load_state_dict(state)
        assert ids(taken) + ids(list(again)) == ids(full)
        with pytest.raises(StreamError, match="404"):
            list(StreamDataset(base, "nope"))


def test_retries_from_the_last_token_when_the_server_goes_away(tmp_path: Path) -> None:
    port = free_port()
    proc = start(tmp_path, port, {"ANTIFIT_SHARD_SIZE": "5000"})
    base = f"http://127.0.0.1:{port}"
    try:
        ds = upload(base, 50_000)  # far more than the socket buffers hold
        expected = ids(list(StreamDataset(base, ds, batch_size=100, seed=1)))
        data = StreamDataset(base, ds, batch_size=100, seed=1, retries=8, backoff=0.5)
        got = []
        for batch in data:
            got.append(batch)
            if len(got) == 3:  # the server dies under the client, and comes back
                proc.kill()
                proc.wait(timeout=30)
                proc = start(tmp_path, port, {"ANTIFIT_SHARD_SIZE": "5000"})
        assert data.reconnects >= 1
        assert ids(got) == expected
    finally:
        proc.terminate()
        proc.wait(timeout=30)
