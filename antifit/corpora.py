"""Real labelled text the project does not ship, fetched from Debian, and the small splits that
``antifit demo`` and the training benchmarks draw from it.

- ``fortunes``: fortune cookies of four categories from Debian's ``fortunes`` package
  (downloaded with ``apt-get download`` into the cache; no root needed).
- ``chinese_sentences``: modern Chinese sentences from Debian's ``fortunes-zh`` (quotations,
  the Debian code of conduct, jokes), unlabelled: the Chinese augmentation benchmark's corpus.
- ``packages``: Debian package descriptions (the synopsis and the long description's first
  paragraph) labelled with their archive section (editors, games, graphics, mail, math,
  sound), one package per source package, from Debian 12's package index and English
  descriptions (``Packages.xz`` and ``Translation-en.xz`` of bookworm main, downloaded from
  deb.debian.org into the cache once; a point release may change a few entries).
- ``wordnet``: WordNet 3.0 noun definitions labelled with their lexicographer file (the
  semantic category a lexicographer filed the synset under: animal, artifact, food, person,
  plant, communication), from Debian's ``wordnet-base`` (installed by ``scripts/setup.sh``).

A split is drawn per seed: ``per_class`` training and ``val_per_class`` validation examples per
class, ``test_per_class`` test examples (all the rest when None), and a share ``noise`` of the
training labels flipped to another class (the training split only). Same seed, same split.
"""

from __future__ import annotations

import lzma
import random
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORTUNES = "usr/share/games/fortunes"
FORTUNE_CATEGORIES = ("computers", "politics", "science", "work")
DEBIAN_INDEX = "https://deb.debian.org/debian/dists/bookworm/main"
PACKAGE_SECTIONS = ("editors", "games", "graphics", "mail", "math", "sound")
# packages whose description is about another package: libraries, their data, docs, debug
# symbols, headers
_NOT_A_PROGRAM = re.compile(r"^lib|-(data|doc|dbg|dev|common|examples|tests)$")
# lexicographer file numbers (lexnames(5WN)) -> label
WORDNET_CATEGORIES = {
    5: "animal",
    6: "artifact",
    10: "communication",
    13: "food",
    18: "person",
    20: "plant",
}


def debian_package(cache: Path, package: str) -> Path:
    """The files of a Debian package, downloaded (``apt-get download``, no root) and unpacked
    into the cache once."""
    root = cache / package
    if not (root / "usr").exists():
        if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
            raise FileNotFoundError(
                f"the {package} corpus comes from Debian's package archive: this needs "
                "apt-get and dpkg-deb"
            )
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True)
        deb = next(cache.glob(f"{package}_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root


def fortunes(cache: Path) -> dict[str, list[str]]:
    """Download Debian's fortunes package and read the chosen categories."""
    root = debian_package(cache, "fortunes")
    texts: dict[str, list[str]] = {}
    for category in FORTUNE_CATEGORIES:
        raw = (root / FORTUNES / category).read_text(encoding="utf-8", errors="replace")
        items = []
        for entry in raw.split("\n%\n"):
            text = re.sub(r".\x08", "", entry)  # overstriking (bold/underline) in old fortunes
            items.append(" ".join(text.split()))
        texts[category] = _clean(items, 20, 400)
    return texts


def chinese_sentences(cache: Path, n: int = 1000) -> list[str]:
    """The first ``n`` distinct sentences of 8-80 characters, mostly Han, of fortunes-zh."""
    root = debian_package(cache, "fortunes-zh")
    raw = (root / FORTUNES / "chinese").read_text(encoding="utf-8", errors="replace")
    raw = re.sub(r"\x1b\[[0-9;]*m", "", raw)  # the package's colour escapes
    sentences = []
    for entry in raw.split("\n%\n"):
        for paragraph in re.split(r"\n\s*\n", entry):  # a title is a paragraph of its own
            lines = [line.strip() for line in paragraph.splitlines() if "--" not in line]
            sentences += re.findall(r"[^。！？]+[。！？]", "".join(lines))
    han = re.compile(r"[\u4e00-\u9fff]")
    mostly_han = [s for s in sentences if len(han.findall(s)) >= 0.7 * len(s)]
    return _clean(mostly_han, 8, 80)[:n]


def wordnet(cache: Path) -> dict[str, list[str]]:
    """WordNet noun definitions (the gloss without its quoted examples) by category."""
    del cache  # installed from Debian by scripts/setup.sh
    from augmenters.resources import wordnet_source

    texts: dict[str, list[str]] = {label: [] for label in WORDNET_CATEGORIES.values()}
    with open(wordnet_source() / "data.noun", encoding="latin-1") as f:
        for line in f:
            if line.startswith("  "):  # the licence header
                continue
            head, _, gloss = line.partition("|")
            label = WORDNET_CATEGORIES.get(int(head.split()[1]))
            if label is None:
                continue
            definition = gloss.split('; "')[0].split(' "')[0].strip().rstrip(";").strip()
            texts[label].append(definition)
    return {label: _clean(items, 25, 300) for label, items in texts.items()}


def packages(cache: Path) -> dict[str, list[str]]:
    """Debian package descriptions by section (``PACKAGE_SECTIONS``)."""
    folder = cache / "debian-packages"
    descriptions = {
        fields["Description-md5"]: fields["Description-en"]
        for fields in _stanzas(_downloaded(folder, "i18n/Translation-en.xz"))
        if "Description-md5" in fields and "Description-en" in fields
    }
    texts: dict[str, dict[str, str]] = {section: {} for section in PACKAGE_SECTIONS}
    for fields in _stanzas(_downloaded(folder, "binary-amd64/Packages.xz")):
        by_source = texts.get(fields.get("Section", ""))
        description = descriptions.get(fields.get("Description-md5", ""))
        if by_source is None or description is None or _NOT_A_PROGRAM.search(fields["Package"]):
            continue
        source = fields.get("Source", fields["Package"]).split()[0]
        by_source.setdefault(source, _first_paragraph(description))
    return {section: _clean(list(t.values()), 40, 400) for section, t in texts.items()}


def _downloaded(folder: Path, name: str) -> Path:
    """A file of bookworm main's index, downloaded into ``folder`` once (atomically)."""
    path = folder / name.replace("/", "_")
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        with urllib.request.urlopen(f"{DEBIAN_INDEX}/{name}", timeout=120) as response:
            partial.write_bytes(response.read())
        partial.replace(path)
    return path


def _stanzas(path: Path) -> Iterator[dict[str, str]]:
    """The fields of each stanza of an xz-compressed Debian index; continuation lines keep
    their newline."""
    with lzma.open(path, "rt", encoding="utf-8") as f:
        for stanza in f.read().split("\n\n"):
            fields = re.finditer(r"^([\w-]+): (.*(?:\n .*)*)", stanza, re.M)
            yield {m.group(1): m.group(2) for m in fields}


def _first_paragraph(description: str) -> str:
    """The synopsis and the long description's first paragraph, as one text."""
    synopsis, *lines = description.split("\n")
    paragraph = []
    for line in lines:
        if line.strip() == ".":
            break
        paragraph.append(line.strip())
    return " ".join([synopsis.strip().rstrip(".") + ".", *paragraph]).strip()


def _clean(items: list[str], shortest: int, longest: int) -> list[str]:
    """In-length, deduplicated, in source order."""
    seen: set[str] = set()
    kept = []
    for text in items:
        if shortest <= len(text) <= longest and text not in seen:
            seen.add(text)
            kept.append(text)
    return kept


SOURCES: dict[str, Callable[[Path], dict[str, list[str]]]] = {
    "fortunes": fortunes,
    "packages": packages,
    "wordnet": wordnet,
}


@dataclass
class Split:
    records: list[dict[str, Any]]  # id, text, label (as trained on), split
    flipped: dict[str, str]  # training id -> its true label, for the flipped ones

    def of(self, split: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["split"] == split]


def make_split(
    texts: dict[str, list[str]],
    seed: int,
    per_class: int,
    val_per_class: int,
    test_per_class: int | None,
    noise: float,
) -> Split:
    rng = random.Random(f"split-{seed}")
    records: list[dict[str, Any]] = []
    for label, items in texts.items():
        wanted = (
            per_class + val_per_class + (len(items) if test_per_class is None else test_per_class)
        )
        chosen = rng.sample(items, min(len(items), wanted))
        for i, text in enumerate(chosen):
            split = (
                "train"
                if i < per_class
                else "validation"
                if i < per_class + val_per_class
                else "test"
            )
            records.append({"id": f"{label}-{i}", "text": text, "label": label, "split": split})
    labels = list(texts)
    train = [r for r in records if r["split"] == "train"]
    flipped: dict[str, str] = {}
    for record in rng.sample(train, round(noise * len(train))):
        flipped[record["id"]] = record["label"]
        record["label"] = rng.choice([c for c in labels if c != record["label"]])
    return Split(records, flipped)
