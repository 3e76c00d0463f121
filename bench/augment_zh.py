"""Chinese augmenters vs nlpcda 2.5.8, same sentences, one run.

    .venv/bin/python bench/augment_zh.py [--sentences 1000] [--repeats 3]

Sentences: the first N modern Chinese sentences of Debian's fortunes-zh (antifit/corpora.py;
downloaded with ``apt-get download``). For each op, ours (the pipeline API, as users call it)
and its nlpcda counterpart at a similar change rate make one variant of every sentence; we print
sentences/s (median of repeats), the ratio, and the share of characters each changed. nlpcda's
ops do not all match ours: its deletion and position exchange act on characters, ours on
segmenter words (the point of antifit's version), so read those rows as "the op users would pick
for the job". Then reproducibility: each side runs in two fresh processes, the sentences in
file order and reversed, same seed; a side is reproducible when every sentence gets the same
variant in both (nlpcda seeds the global ``random`` once and draws in sentence order, so a
sentence's variant depends on the sentences before it).

``--floor``: instead, what any op of antifit pays a sentence before it chooses a word — the
segmenter cutting the sentence, the variant's generator, reading the record — next to each
nlpcda op's whole time a sentence and a third of it (the time a 3x-faster op would have);
best of ``max(repeats, 9)`` passes over the sentences.
"""

from __future__ import annotations

import argparse
import difflib
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from antifit.corpora import chinese_sentences  # noqa: E402
from augmenters import Pipeline  # noqa: E402
from bench.augment import ours, paired  # noqa: E402

CACHE = ROOT / "bench" / ".cache"
# op -> (our step, nlpcda tool and its arguments)
OPS: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    "synonym (Cilin)": (
        {"type": "synonym", "source": "cilin", "p": 0.5, "max_senses": 3},
        "Similarword",
        {"change_rate": 0.3},
    ),
    "deletion": ({"type": "word_delete", "p": 0.1}, "RandomDeleteChar", {"change_rate": 0.1}),
    "swap / position exchange": (
        {"type": "word_swap", "p": 0.1},
        "CharPositionExchange",
        {"change_rate": 0.1, "char_gram": 3},
    ),
    "homophone": ({"type": "homophone", "p": 0.2}, "Homophone", {"change_rate": 0.1}),
}


def nlpcda_tool(name: str, kwargs: dict[str, Any]) -> Any:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # it prints as it loads
        import nlpcda

        return getattr(nlpcda, name)(create_num=2, seed=1, **kwargs)


def peer(tool: Any, texts: list[str]) -> Any:
    def run() -> list[str]:
        out = []
        for text in texts:
            made = tool.replace(text)
            out.append(made[1] if len(made) > 1 else text)
        return out

    return run


def changed_chars(originals: list[str], outputs: list[str]) -> float:
    changed = total = 0
    for a, b in zip(originals, outputs, strict=True):
        same = sum(m.size for m in difflib.SequenceMatcher(a=a, b=b).get_matching_blocks())
        changed += len(a) - same
        total += len(a)
    return changed / total


def emit(side: str, op: str, order: str, n: int) -> None:
    """One side's variants, by sentence, as a fresh process makes them (``--emit``)."""
    texts = chinese_sentences(CACHE, n)
    indices = list(range(len(texts)))
    if order == "reverse":
        indices.reverse()
    step, name, kwargs = OPS[op]
    ordered = [texts[i] for i in indices]
    if side == "antifit":  # records keep their ids (their file positions) in either order
        records = [{"id": i, "text": texts[i]} for i in indices]
        variants = Pipeline({"pipeline": step}).augment(records, seed=1, n_variants=1)
        out = [v.text for v in variants]
    else:
        out = peer(nlpcda_tool(name, kwargs), ordered)()
    print(json.dumps(dict(zip(indices, out, strict=True)), ensure_ascii=False))


def reproducible(side: str, op: str, n: int) -> bool:
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, __file__, "--emit", side, op, order, "--sentences", str(n)],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for order in ("forward", "reverse")
    ]
    return bool(runs[0] == runs[1])


def per_sentence(run: Callable[[], object], n: int, passes: int) -> float:
    """Microseconds a sentence: the best of ``passes`` runs over ``n`` sentences."""
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / n * 1e6


def floor(texts: list[str], repeats: int) -> None:
    from augmenters.pipeline import Record
    from augmenters.rng import VariantSeeder
    from augmenters.segment import DEFAULT

    passes = max(repeats, 9)
    n = len(texts)
    seeder = VariantSeeder("spec digest", 1)
    DEFAULT.words(texts[0])  # loads the dictionary
    print(f"{n} sentences from Debian's fortunes-zh, best of {passes} passes, µs a sentence")
    print(f"{'nlpcda op':26s} {'whole op':>9s} {'3x budget':>10s}")
    for op, (_, name, kwargs) in OPS.items():
        took = per_sentence(peer(nlpcda_tool(name, kwargs), texts), n, passes)
        print(f"{op:26s} {took:9.1f} {took / 3:10.1f}")
    print("what every antifit op pays before it chooses a word")
    fixed = {
        "cut (jieba-rs)": lambda: [DEFAULT.words(t) for t in texts],
        "the variant's generator": lambda: [seeder(str(i), 0) for i in range(n)],
        "reading the record": lambda: [
            Record.coerce({"id": i, "text": t}, i) for i, t in enumerate(texts)
        ],
    }
    for what, run in fixed.items():
        print(f"{what:26s} {per_sentence(run, n, passes):9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--floor", action="store_true", help="the fixed costs (module docs)")
    parser.add_argument("--emit", nargs=3, metavar=("SIDE", "OP", "ORDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emit:
        emit(*args.emit, args.sentences)
        return
    texts = chinese_sentences(CACHE, args.sentences)
    if args.floor:
        floor(texts, args.repeats)
        return
    print(f"{len(texts)} sentences from Debian's fortunes-zh, {args.repeats} repeats")
    print(
        f"{'op':26s} {'antifit s/s':>12s} {'nlpcda s/s':>11s} {'ratio':>7s} "
        f"{'changed: ours':>14s} {'nlpcda':>7s} {'reproducible: ours':>19s} {'nlpcda':>7s}"
    )
    for op, (step, name, kwargs) in OPS.items():
        tool = nlpcda_tool(name, kwargs)
        ours_run, peer_run = ours(step, texts), peer(tool, texts)
        ours_run()  # warm: the segmenter, Cilin, the readings load once per process
        t_ours, t_peer, ratio, out_ours, out_peer = paired(ours_run, peer_run, args.repeats)
        print(
            f"{op:26s} {len(texts) / t_ours:12.0f} {len(texts) / t_peer:11.0f} "
            f"{ratio:6.1f}x {changed_chars(texts, out_ours):14.3f} "
            f"{changed_chars(texts, out_peer):7.3f} "
            f"{str(reproducible('antifit', op, 200)):>19s} "
            f"{str(reproducible('nlpcda', op, 200)):>7s}",
            flush=True,
        )


if __name__ == "__main__":
    main()
