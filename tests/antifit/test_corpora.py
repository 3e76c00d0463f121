"""The demo's and benchmarks' corpora: reading them, and the seeded small splits."""

from collections import Counter
from pathlib import Path

from antifit.corpora import FORTUNE_CATEGORIES, FORTUNES, fortunes, make_split, wordnet
from tests.conftest import needs_wordnet


def test_fortunes_are_read_from_the_extracted_package(tmp_path: Path) -> None:
    root = tmp_path / "fortunes" / FORTUNES
    root.mkdir(parents=True)
    for category in FORTUNE_CATEGORIES:
        entries = [f"A {category} saying number {i}, long enough." for i in range(3)]
        entries.append("B\x08Bo\x08ol\x08ld and   spaced  out, kept once please.")
        entries.append("short")  # under 20 characters: dropped
        (root / category).write_text("\n%\n".join([*entries, entries[0]]) + "\n")
    texts = fortunes(tmp_path)  # already extracted: nothing is downloaded
    assert set(texts) == set(FORTUNE_CATEGORIES)
    assert texts["work"][:3] == [f"A work saying number {i}, long enough." for i in range(3)]
    assert texts["work"][3] == "Bold and spaced out, kept once please."  # overstrike removed
    assert len(texts["work"]) == 4  # the repeat and the short one are gone


@needs_wordnet
def test_wordnet_definitions_by_category() -> None:
    texts = wordnet(Path("unused"))
    assert set(texts) == {"animal", "artifact", "communication", "food", "person", "plant"}
    assert all(len(items) > 2000 for items in texts.values())
    assert not any('"' in t for t in texts["food"][:200])  # usage examples are cut off


def test_splits_are_seeded_sized_and_flip_training_labels_only() -> None:
    texts = {label: [f"{label} text {i}" for i in range(50)] for label in ("a", "b", "c")}
    split = make_split(texts, seed=3, per_class=4, val_per_class=5, test_per_class=10, noise=0.25)
    sizes = Counter(r["split"] for r in split.records)
    assert sizes == {"train": 12, "validation": 15, "test": 30}
    assert len(split.flipped) == 3 and all(i.split("-")[0] in texts for i in split.flipped)
    for record in split.of("train"):
        true = record["id"].split("-")[0]
        assert (record["label"] != true) == (record["id"] in split.flipped)
    assert all(r["label"] == r["id"].split("-")[0] for r in split.records if r["split"] != "train")
    assert len({r["text"] for r in split.records}) == 57  # no text in two splits
    again = make_split(texts, seed=3, per_class=4, val_per_class=5, test_per_class=10, noise=0.25)
    assert again.records == split.records
    rest = make_split(texts, seed=3, per_class=4, val_per_class=5, test_per_class=None, noise=0.0)
    assert Counter(r["split"] for r in rest.records)["test"] == 3 * 41
    none = make_split(texts, seed=3, per_class=4, val_per_class=5, test_per_class=0, noise=0.0)
    assert not none.of("test")
