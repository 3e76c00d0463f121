"""One job shard in a worker: written whole, the same bytes when re-run, and checked against
the input digest recorded at upload."""

from pathlib import Path

import pytest

from app.jobs.work import ShardTask, augment_shard
from app.storage.shards import ShardMismatch, ShardWriter, StoredRecord, shard_path

SPEC = {"pipeline": {"type": "sequence", "steps": [{"type": "keyboard", "p": 0.3}]}}


def _task(tmp_path: Path, **changes: object) -> ShardTask:
    writer = ShardWriter(tmp_path, shard_size=100)
    for i in range(20):
        writer.add(
            StoredRecord(f"r{i}", f"the battery of phone {i} lasts for days", i % 2, "train")
        )
    writer.flush()
    fields: dict[str, object] = {
        "job_id": "j",
        "shard": 0,
        "input_path": str(shard_path(tmp_path, 0)),
        "output_path": str(shard_path(tmp_path / "jobs" / "j", 0)),
        "spec": SPEC,
        "seed": 3,
        "n_variants": 2,
        "splits": ("train",),
        "input_sha256": writer.digests[0],
    }
    return ShardTask(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_re_run_shard_writes_the_same_bytes_and_leaves_no_temp_file(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    task = _task(tmp_path)
    first = augment_shard(task)
    output = Path(task.output_path)
    written = output.read_bytes()
    again = augment_shard(task)
    assert again == first and first.variants == 40
    assert output.read_bytes() == written
    assert [p.name for p in output.parent.iterdir()] == [output.name]


def test_an_input_shard_that_differs_from_the_upload_is_refused(tmp_path: Path) -> None:
    task = _task(tmp_path, input_sha256="0" * 64)
    with pytest.raises(ShardMismatch, match="input shard 0 differs"):
        augment_shard(task)
    assert not Path(task.output_path).exists()
