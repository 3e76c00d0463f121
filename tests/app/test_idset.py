from pathlib import Path

from app.storage.idset import IdSet


def test_duplicates_are_found_before_and_after_the_spill(tmp_path: Path) -> None:
    spill = tmp_path / "ids.sqlite"
    ids = IdSet(spill, in_memory=3)
    assert [ids.add(i) for i in ["a", "b", "a", "c"]] == [True, True, False, True]
    assert not spill.exists()
    assert ids.add("d") and spill.exists()  # over the limit: on disk from here on
    assert [ids.add(i) for i in ["a", "d", "e", "e"]] == [False, False, True, False]
    ids.close()
    assert not spill.exists()
