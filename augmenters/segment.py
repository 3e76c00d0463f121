"""Chinese word segmentation for the word-level ops.

Runs of Han characters are cut into words by jieba-rs through ``rjieba`` (MIT; jieba's
dictionary and HMM, compiled in: ~18x faster than the pure-Python jieba on the same texts
with the same cuts, docs/augmenters.md). Each ``Segmenter`` holds a private ``rjieba.Jieba``,
created on first use — never jieba's global dictionary, no cache file in a shared temp
folder, and ``import augmenters`` does not load it. A pipeline may add user words (its spec's
``segmentation``); pipelines without them share one default segmenter per process.
Segmentation is a pure function of (user words, text), so variants stay deterministic.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from augmenters.chinese import has_traditional_characters, simplified
from augmenters.errors import SpecError

MAX_USER_WORDS_BYTES = 16 << 20


class Segmenter:
    def __init__(self, user_words: Sequence[str] = ()) -> None:
        self.user_words = tuple(user_words)
        self._lock = threading.Lock()
        self._jieba: Any = None

    def _instance(self) -> Any:
        with self._lock:
            if self._jieba is None:
                import rjieba

                jieba = rjieba.Jieba()
                for word in self.user_words:
                    jieba.add_word(word, None, None)
                self._jieba = jieba
            return self._jieba

    def words(self, run: str) -> list[str]:
        """The words of a run of Han characters (new words found by the HMM included). A
        traditional run is cut as its simplified form (jieba's dictionary is simplified) at
        the same places, when the conversion keeps its length."""
        cut_as = run
        if has_traditional_characters(run):
            cut_as = simplified(run)
            if len(cut_as) != len(run):
                cut_as = run
        jieba = self._jieba or self._instance()  # the lock only until it exists
        words: list[str] = jieba.cut(cut_as, True)
        if "".join(words) != cut_as:  # never seen; a segmenter must not lose or add characters
            return list(run)
        if cut_as == run:
            return words
        out, start = [], 0
        for word in words:
            out.append(run[start : start + len(word)])
            start += len(word)
        return out

    def tag(self, word: str) -> str:
        """The word's part-of-speech tag in jieba's dictionary; "x" if it is not one word."""
        tagged = self._instance().tag(word, False)
        return str(tagged[0][1]) if len(tagged) == 1 else "x"


DEFAULT = Segmenter()


@lru_cache(maxsize=8)
def with_user_words(words: tuple[str, ...]) -> Segmenter:
    """A segmenter knowing ``words`` besides jieba's dictionary (kept for the pipelines that
    ask again: building one takes ~0.1 s)."""
    return Segmenter(words) if words else DEFAULT


def load_user_words(path: str) -> tuple[str, ...]:
    """A user dictionary file: one word a line (jieba's ``word [freq] [tag]`` lines work: the
    first field is taken); blank lines and ``#`` comments skipped."""
    file = Path(path).expanduser()
    try:
        if not file.is_file():
            raise OSError("not a regular file")
        if file.stat().st_size > MAX_USER_WORDS_BYTES:
            raise OSError(f"larger than {MAX_USER_WORDS_BYTES} bytes")
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read user words {path!r}: {exc}", field="user_words") from exc
    return tuple(
        line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#")
    )
