"""The demo's and benchmarks' corpora: reading them, and the seeded small splits."""

import lzma
from collections import Counter
from pathlib import Path

from antifit.corpora import (
    FORTUNE_CATEGORIES,
    FORTUNES,
    PACKAGE_SECTIONS,
    fortunes,
    make_split,
    packages,
    wordnet,
)
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


def test_package_descriptions_by_section_one_per_source_program_packages_only(
    tmp_path: Path,
) -> None:
    def package(name: str, section: str, md5: str, source: str = "") -> str:
        fields = [f"Package: {name}", *([f"Source: {source} (1.0-1)"] if source else [])]
        return "\n".join(
            [*fields, "Version: 1.0-1", f"Description-md5: {md5}", f"Section: {section}"]
        )

    index = [
        package("tuxmath", "games", "a1"),
        package("tuxmath-data", "games", "a2", source="tuxmath"),  # data: left out
        package("libsndfile1", "sound", "a3"),  # a library: left out
        package("mutt", "mail", "a4"),
        package("neomutt", "mail", "a5", source="mutt"),  # the source's second: left out
        package("gimp", "graphics", "a6"),
        package("gcc", "devel", "a7"),  # not a chosen section
        package("tiny", "math", "a8"),  # too short
    ]
    english = {
        "a1": "math game for kids\n Tux must solve\n sums to save penguins.\n .\n More.",
        "a2": "data files for tuxmath\n Nothing else here, just data for the program.",
        "a3": "library for reading and writing audio files\n It reads WAV and AIFF files.",
        "a4": "text-based mailreader supporting MIME, GPG, PGP and threading\n Mutt reads mail.",
        "a5": "command line mail reader based on Mutt\n NeoMutt is a Mutt with more features.",
        "a6": "GNU Image Manipulation Program.\n It edits photos and draws pictures.",
        "a7": "GNU C compiler\n The GNU C compiler, a portable optimising compiler for C.",
        "a8": "calculator\n Adds.",
    }
    translations = [
        f"Package: p\nDescription-md5: {md5}\nDescription-en: {text}"
        for md5, text in english.items()
    ]
    folder = tmp_path / "debian-packages"
    folder.mkdir()
    for name, stanzas in (
        ("binary-amd64_Packages.xz", index),
        ("i18n_Translation-en.xz", translations),
    ):
        (folder / name).write_bytes(lzma.compress("\n\n".join(stanzas).encode()))
    texts = packages(tmp_path)  # already in the cache: nothing is downloaded
    assert set(texts) == set(PACKAGE_SECTIONS)
    assert texts["games"] == ["math game for kids. Tux must solve sums to save penguins."]
    assert texts["mail"] == [
        "text-based mailreader supporting MIME, GPG, PGP and threading. Mutt reads mail."
    ]
    assert texts["graphics"] == [
        "GNU Image Manipulation Program. It edits photos and draws pictures."
    ]
    assert texts["sound"] == texts["math"] == texts["editors"] == []


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
