"""Chinese word segmentation for the word-level ops.

Runs of Han characters are cut into words by jieba-rs through ``rjieba`` (MIT; jieba's
dictionary and HMM, compiled in: ~18x faster than the pure-Python jieba on the same texts
with the same cuts, docs/augmenters.md). One private ``rjieba.Jieba`` instance per process,
created on first use — never jieba's global dictionary, no cache file in a shared temp
folder, and ``import augmenters`` does not load it. Segmentation is a pure function of the
text (dictionary lookups and a Viterbi pass), so variants stay deterministic.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_instance: Any = None


def _segmenter() -> Any:
    global _instance
    with _lock:
        if _instance is None:
            import rjieba

            _instance = rjieba.Jieba()
        return _instance


def han_words(run: str) -> list[str]:
    """The words of a run of Han characters (new words found by the HMM included). A
    traditional run is cut as its simplified form (jieba's dictionary is simplified) at the
    same places, when the conversion keeps its length."""
    from augmenters.chinese import simplified

    cut_as = simplified(run)
    if len(cut_as) != len(run):
        cut_as = run
    words: list[str] = _segmenter().cut(cut_as, True)
    if "".join(words) != cut_as:  # never seen; a segmenter must not lose or add characters
        return list(run)
    out, start = [], 0
    for word in words:
        out.append(run[start : start + len(word)])
        start += len(word)
    return out


def tag(word: str) -> str:
    """The word's part-of-speech tag in jieba's dictionary; "x" if it is not one word there."""
    tagged = _segmenter().tag(word, False)
    return str(tagged[0][1]) if len(tagged) == 1 else "x"
