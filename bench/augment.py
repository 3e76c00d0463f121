"""Augmenters vs nlpaug, same sentences, one process, one run.

    .venv/bin/python bench/augment.py [--sentences 1000] [--repeats 3]

Sentences: real English glosses from WordNet 3.0 (installed by scripts/setup.sh), 15-25 words,
the first N in file order. For each op, ours (the full pipeline API, as users call it) and its
nlpaug counterpart at a matched change rate run over the same sentences; we print sentences/s
(median of repeats), the ratio, and the share of words each changed, so the match can be
seen: nlpaug rounds p * words up (at least one), ours draws p * eligible words in expectation,
so our p is set higher to change the same share.
nlpaug is given the same WordNet copy and the same tagger weights (patched into nltk.pos_tag),
so the synonym comparison measures code, not resources. Back-translation (Apertium) has no
offline nlpaug peer: its absolute rate is printed against the 200 sentences/s target.
"""

from __future__ import annotations

import argparse
import difflib
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from augmenters import Pipeline
from augmenters.resources import pos_tagger, wordnet


def sentences(n: int) -> list[str]:
    out: list[str] = []
    wn = wordnet()
    for synset in wn.all_synsets("n"):
        text = synset.definition().strip()
        words = text.split()
        if 15 <= len(words) <= 25 and text.isascii():
            out.append(text[0].upper() + text[1:] + ".")
            if len(out) == n:
                return out
    raise SystemExit(f"only {len(out)} sentences found")


def changed_share(originals: list[str], outputs: list[str]) -> float:
    changed = total = 0
    for a, b in zip(originals, outputs, strict=True):
        wa, wb = a.split(), b.split()
        same = sum(
            m.size
            for m in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_matching_blocks()
        )
        changed += len(wa) - same
        total += len(wa)
    return changed / total


def paired(
    a: Callable[[], list[str]], b: Callable[[], list[str]], repeats: int
) -> tuple[float, float, float, list[str], list[str]]:
    """Alternate a and b runs (the machine's noise hits both alike), garbage collector off as in
    timeit; return median times, the median of the per-pair ratios b/a, and last outputs."""
    times_a, times_b, ratios = [], [], []
    out_a: list[str] = []
    out_b: list[str] = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            out_a = a()
            t1 = time.perf_counter()
            out_b = b()
            t2 = time.perf_counter()
        finally:
            gc.enable()
        times_a.append(t1 - t0)
        times_b.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
    med = statistics.median
    return med(times_a), med(times_b), med(ratios), out_a, out_b


def ours(spec: dict[str, Any], texts: list[str], n: int = 1) -> Callable[[], list[str]]:
    records = [{"id": i, "text": t} for i, t in enumerate(texts)]

    def run() -> list[str]:
        # a fresh pipeline each repeat: no cache carried between repeats
        variants = Pipeline({"pipeline": spec}).augment(records, seed=1, n_variants=n)
        return [v.text for v in variants]

    return run


def peer(aug: Any, texts: list[str], n: int = 1) -> Callable[[], list[str]]:
    def run() -> list[str]:
        out = []
        for t in texts:
            r = aug.augment(t, n=n)
            out += r if isinstance(r, list) else [r]
        return out

    return run


def nlpaug_with_our_resources() -> None:
    """Point nltk at the prepared WordNet copy and our tagger weights, as nlpaug would use."""
    import nltk
    import nltk.tag
    from nltk.tag.perceptron import PerceptronTagger

    wordnet()  # prepares the copy and adds its root to nltk.data.path
    mine = pos_tagger()
    tagger = PerceptronTagger(load=False)
    tagger.model.weights = mine.weights
    tagger.tagdict = mine.tagdict
    tagger.classes = tagger.model.classes = set(mine.classes)
    nltk.tag._get_tagger = lambda lang=None: tagger


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.word as naw

    nlpaug_with_our_resources()
    texts = sentences(args.sentences)
    mean_words = statistics.mean(len(t.split()) for t in texts)
    print(
        f"{len(texts)} sentences, {mean_words:.1f} words on average; median of {args.repeats} "
        "alternating runs\n"
    )
    char = {"aug_char_min": 1, "aug_char_max": 1, "aug_word_p": 0.1, "min_char": 3}
    cases: list[tuple[str, dict[str, Any], Any]] = [
        (
            "keyboard typo",
            {"type": "keyboard", "p": 0.2},
            nac.KeyboardAug(**char, include_special_char=False, include_numeric=False),
        ),
        ("ocr", {"type": "ocr", "p": 0.2}, nac.OcrAug(**char)),
        *(
            (
                f"char {action}",
                {"type": "char_noise", "action": action, "p": 0.2},
                nac.RandomCharAug(action=action, **char),
            )
            for action in ("insert", "substitute", "swap", "delete")
        ),
        ("word swap", {"type": "word_swap", "p": 0.1}, naw.RandomWordAug(action="swap", aug_p=0.1)),
        (
            "word delete",
            {"type": "word_delete", "p": 0.15},
            naw.RandomWordAug(action="delete", aug_p=0.1),
        ),
        (
            "token mask",
            {"type": "mask", "p": 0.2},
            naw.RandomWordAug(action="substitute", aug_p=0.15, target_words=["[MASK]"]),
        ),
        (
            "span mask",
            {"type": "span_mask", "p": 0.2},
            naw.RandomWordAug(action="substitute", aug_p=0.15, target_words=["[MASK]"]),
        ),
        (
            "synonym (WordNet, POS)",
            {"type": "synonym", "p": 0.45},
            naw.SynonymAug(aug_src="wordnet", aug_p=0.2),
        ),
    ]
    header = (
        f"{'op':24s} {'antifit s/s':>12s} {'nlpaug s/s':>11s} {'ratio':>7s} "
        f"{'changed: ours':>14s} {'nlpaug':>7s}"
    )
    print(header)
    print("-" * len(header))
    for name, spec, aug in cases:
        t_ours, t_peer, ratio, out_ours, out_peer = paired(
            ours(spec, texts), peer(aug, texts), args.repeats
        )
        print(
            f"{name:24s} {len(texts) / t_ours:12.0f} {len(texts) / t_peer:11.0f} "
            f"{ratio:6.1f}x {changed_share(texts, out_ours):13.1%} "
            f"{changed_share(texts, out_peer):7.1%}"
        )

    # several variants per record, as augmentation jobs run: ours analyses each text once
    keyboard = {"type": "keyboard", "p": 0.2}
    t_ours, t_peer, ratio, _, _ = paired(
        ours(keyboard, texts, 4),
        peer(nac.KeyboardAug(**char, include_special_char=False, include_numeric=False), texts, 4),
        args.repeats,
    )
    print(
        f"{'keyboard, 4 variants':24s} {4 * len(texts) / t_ours:12.0f} "
        f"{4 * len(texts) / t_peer:11.0f} {ratio:6.1f}x   (variants/s)"
    )

    bt = {"type": "back_translation", "engine": "apertium", "pivots": [["spa"]]}
    t_bt, _, _, out_bt, _ = paired(ours(bt, texts), lambda: [], 3)  # no offline nlpaug peer
    print(
        f"\nback-translation eng>spa>eng (Apertium): {len(texts) / t_bt:.0f} sentences/s "
        f"(target >= 200), {changed_share(texts, out_bt):.0%} of words changed"
    )

    imports = []
    for _ in range(5):
        code = "import time; t = time.perf_counter(); import augmenters; "
        code += "print(time.perf_counter() - t)"
        imports.append(
            float(
                subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=True
                ).stdout
            )
        )
    print(
        f"import augmenters: {statistics.median(imports) * 1000:.0f} ms, median of 5 "
        "(target < 500 ms)"
    )


if __name__ == "__main__":
    main()
