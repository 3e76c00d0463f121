"""Apertium round trips: antifit's engine (each text tagged as if alone) vs the plain command.

    .venv/bin/python bench/apertium.py [--sentences 1000] [--repeats 5]

The same English sentences (WordNet glosses, as in bench/augment.py) go eng>PIVOT>eng through
``ApertiumEngine`` (one ``apertium`` call per hop and chunk, with antifit's stand-in for
``apertium-tagger``) and through the ``apertium`` command as it is installed (one call per hop,
the way the engine worked before). Both sides run alternately in one process; the script
prints sentences/s (median of repeats), their ratio, and for each side how many of the round
trips change when the sentences are sent in reverse order (0 is the promise: a translation
depends on its text alone).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from augmenters.backtranslation import ApertiumEngine  # noqa: E402
from augmenters.resources import apertium_binary  # noqa: E402
from bench.augment import paired, sentences  # noqa: E402


def plain(texts: list[str], source: str, target: str) -> list[str]:
    """One call of the installed ``apertium``, blank lines between texts."""
    out = subprocess.run(
        [apertium_binary(), "-u", "-f", "txt", f"{source}-{target}"],
        input="\n\n".join(texts) + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    parts = [p.strip() for p in out.strip("\n").split("\n\n")]
    if len(parts) != len(texts):
        raise SystemExit(f"plain apertium {source}-{target}: {len(parts)} outputs, {len(texts)} in")
    return parts


def engine(texts: list[str], source: str, target: str) -> list[str]:
    return [c[0][0] if c else "" for c in ApertiumEngine().translate(texts, source, target)]


Translate = Callable[[list[str], str, str], list[str]]


def round_trip(translate: Translate, texts: list[str], pivot: str) -> list[str]:
    return translate(translate(texts, "eng", pivot), pivot, "eng")


def order_dependent(translate: Translate, texts: list[str], pivot: str) -> int:
    forward = round_trip(translate, texts, pivot)
    backward = round_trip(translate, texts[::-1], pivot)[::-1]
    return sum(a != b for a, b in zip(forward, backward, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    texts = sentences(args.sentences)
    print(f"{len(texts)} WordNet glosses, median of {args.repeats} alternating runs\n")
    print(
        f"{'round trip':14s} {'antifit s/s':>11s} {'plain s/s':>10s} {'cost':>6s}   "
        f"{'order-dependent: antifit':>24s} {'plain':>6s}"
    )
    for pivot in ("spa", "cat"):
        t_ours, t_plain, ratio, _, _ = paired(
            lambda: round_trip(engine, texts, pivot),  # noqa: B023
            lambda: round_trip(plain, texts, pivot),  # noqa: B023
            args.repeats,
        )
        print(
            f"eng>{pivot}>eng    {len(texts) / t_ours:11.0f} {len(texts) / t_plain:10.0f} "
            f"{1 / ratio:5.2f}x   {order_dependent(engine, texts, pivot):24d} "
            f"{order_dependent(plain, texts, pivot):6d}"
        )


if __name__ == "__main__":
    main()
