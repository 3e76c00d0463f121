import json
from pathlib import Path

from antifit.cli import main
from tests.conftest import EXAMPLES, PIPELINES


def test_augment_command_writes_variants(tmp_path: Path) -> None:
    out = tmp_path / "out" / "aug.jsonl"
    code = main(
        [
            "augment",
            str(EXAMPLES / "reviews.jsonl"),
            "--spec",
            str(PIPELINES / "noise.json"),
            "--seed",
            "1",
            "-n",
            "3",
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    originals = {
        json.loads(line)["id"]: json.loads(line) for line in (EXAMPLES / "reviews.jsonl").open()
    }
    assert 0 < len(rows) <= 3 * len(originals)
    for row in rows:
        assert row["label"] == originals[row["id"]]["label"]
        assert row["text"] != originals[row["id"]]["text"]  # the spec drops unchanged variants
        assert {op["op"] for op in row["ops"]} <= {"keyboard", "ocr", "char_noise"}


def test_a_bad_line_is_reported_with_its_number_and_nothing_is_written(
    tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "in.jsonl"
    data.write_text(
        '{"id": 1, "text": "fine"}\n{"id": 2, "text": "fine"}\n{"id": 3, "txt": "oops"}\n'
    )
    out = tmp_path / "out.jsonl"
    code = main(
        [
            "augment",
            str(data),
            "--spec",
            str(PIPELINES / "noise.json"),
            "-o",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 2
    assert f"{data}:3: field 'text'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [data]  # no output, no temp file left


def test_invalid_spec_and_invalid_json_are_clear_errors(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "spec.json"
    spec.write_text('{"pipeline": {"type": "mask", "p": 7}}')
    assert (
        main(
            [
                "augment",
                str(EXAMPLES / "reviews.jsonl"),
                "--spec",
                str(spec),
                "-o",
                str(tmp_path / "o.jsonl"),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "pipeline.p" in capsys.readouterr().err
    data = tmp_path / "in.jsonl"
    data.write_bytes(b'{"text": "ok"}\n{"text": "\xff"}\n')
    assert (
        main(
            [
                "augment",
                str(data),
                "--spec",
                str(PIPELINES / "noise.json"),
                "-o",
                str(tmp_path / "o.jsonl"),
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "in.jsonl:2" in err and "UTF-8" in err
