"""Named resources: lexicons and model directories an operator registers, which specs name.

A spec run by the library or the CLI may name files by path (it runs as the user, on the
user's files). A spec that arrives over the network must not: the service validates it with
``served=registry`` and then every lexicon and model it names is a *name* registered under the
operator's resources folder (``ANTIFIT_RESOURCES_DIR``)::

    resources/
      lexicons/cilin.json          -> "lexicon": "cilin"
      models/minilm/config.json    -> "model": "minilm"

Names resolve to paths only when a pipeline is built (``resolve``), so a spec, its digest and
the seeds it draws stay the same on every host whatever the folder is called there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, ValidationInfo

from augmenters.errors import SpecError

Kind = Literal["lexicon", "model", "words"]
FOLDERS: dict[Kind, str] = {"lexicon": "lexicons", "model": "models", "words": "words"}
FILES = {"lexicon": ".json", "words": ".txt"}  # the kinds that are one file each
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_LISTED = 1_000  # entries of one kind a registry lists: a folder, not a database
MAX_PATH_CHARS = 4_096


@dataclass(frozen=True)
class Registry:
    """The resources folder (None: nothing registered)."""

    root: Path | None = None

    @classmethod
    def from_env(cls) -> Registry:
        root = os.environ.get("ANTIFIT_RESOURCES_DIR")
        return cls(Path(root) if root else None)

    def lexicons(self) -> dict[str, Path]:
        return self._listing("lexicon")

    def models(self) -> dict[str, Path]:
        return self._listing("model")

    def word_lists(self) -> dict[str, Path]:
        """Segmenter user dictionaries: ``words/NAME.txt``, one word a line."""
        return self._listing("words")

    def _listing(self, kind: Kind) -> dict[str, Path]:
        folder = self.root / FOLDERS[kind] if self.root is not None else None
        if folder is None or not folder.is_dir():
            return {}
        found: dict[str, Path] = {}
        for entry in sorted(folder.iterdir()):
            name = entry.stem if kind in FILES else entry.name
            path = self.named(kind, name)
            if path is not None:
                found[name] = path
            if len(found) == MAX_LISTED:
                break
        return found

    def named(self, kind: Kind, name: str) -> Path | None:
        """The registered path of ``name`` (looked up directly, no listing), or None."""
        if self.root is None or not NAME.fullmatch(name):
            return None
        if kind in FILES:
            path = self.root / FOLDERS[kind] / f"{name}{FILES[kind]}"
            return path.resolve() if path.is_file() else None
        path = self.root / FOLDERS[kind] / name
        return path.resolve() if (path / "config.json").is_file() else None

    def require(self, kind: Kind, name: str) -> Path:
        """The registered path of ``name``; ValueError saying what is registered otherwise."""
        path = self.named(kind, name)
        if path is not None:
            return path
        if not NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} is not a {kind} name: a spec sent to the service names registered "
                f"resources (letters, digits, '.', '_', '-'), never server paths; "
                "GET /v1/augmenters lists them"
            )
        listed = self._listing(kind)
        known = ", ".join(sorted(listed)) or "none"
        raise ValueError(f"no {kind} named {name!r} is registered; registered: {known}")

    def resolve(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A copy of a spec's dict form with every registered name replaced by its path
        (unregistered strings are left as they are: paths, for the library)."""

        def model(ref: str) -> str:
            path = self.named("model", ref)
            return str(path) if path is not None else ref

        def walk(value: Any) -> Any:
            if isinstance(value, list):
                return [walk(v) for v in value]
            if not isinstance(value, dict):
                return value
            out = {k: walk(v) for k, v in value.items()}
            if isinstance(out.get("model"), str):
                out["model"] = model(out["model"])
            if out.get("type") == "back_translation" and isinstance(out.get("models"), dict):
                out["models"] = {k: model(v) for k, v in out["models"].items()}
            if out.get("type") == "synonym" and isinstance(out.get("lexicon"), str):
                out["lexicon_path"] = self._path("lexicon", out.pop("lexicon"), "lexicon")
            return out

        resolved: dict[str, Any] = walk(spec)
        segmentation = resolved.get("segmentation")
        if isinstance(segmentation, dict) and isinstance(segmentation.get("user_words"), str):
            name = segmentation.pop("user_words")
            segmentation["user_words_path"] = self._path("words", name, "user_words")
        return resolved

    def _path(self, kind: Kind, name: str, field: str) -> str:
        path = self.named(kind, name)
        if path is None:
            raise SpecError(
                f"no {kind} named {name!r} is registered (ANTIFIT_RESOURCES_DIR)", field=field
            )
        return str(path)


def _reference(kind: Kind) -> Callable[[str, ValidationInfo], str]:
    def check(value: str, info: ValidationInfo) -> str:
        registry = (info.context or {}).get("served")
        if isinstance(registry, Registry):
            registry.require(kind, value)
        return value

    return check


def _no_paths(value: str, info: ValidationInfo) -> str:
    if isinstance((info.context or {}).get("served"), Registry):
        raise ValueError(
            "a spec sent to the service never names a server file: name a registered resource "
            'instead ("lexicon": NAME, "user_words": NAME; GET /v1/augmenters lists them)'
        )
    return value


# the x- marks let a service's schema say what it accepts there: its registered names
# (app/api/openapi.py), where the library's says "a name or a path"
RESOURCE_MARK = "x-antifit-resource"


def _ref(kind: str) -> Any:
    return Field(min_length=1, max_length=MAX_PATH_CHARS, json_schema_extra={RESOURCE_MARK: kind})


ModelRef = Annotated[str, _ref("model"), AfterValidator(_reference("model"))]
"""A model: a registered name, or (library and CLI only) a local directory."""
LexiconName = Annotated[str, _ref("lexicon"), AfterValidator(_reference("lexicon"))]
"""A registered lexicon's name."""
WordsName = Annotated[str, _ref("words"), AfterValidator(_reference("words"))]
"""A registered segmenter user dictionary's name."""
LocalPath = Annotated[str, _ref("path"), AfterValidator(_no_paths)]
"""A path on the machine running the spec: refused in specs sent to the service."""
