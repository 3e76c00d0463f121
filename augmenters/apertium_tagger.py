"""A stand-in for ``apertium-tagger`` that tags each text as if it were alone.

Apertium 3.8's HMM tagger keeps state from one text to the next: when a word has an ambiguity
class the tagger was not trained on, ``tagger_utils::find_similar_ambiguity_class`` assigns the
most similar known class through a reference to the tagger's *open class* (the tag set given to
unknown words), so every later unknown word in the same process is tagged from a shrunken set.
A translation then depends on the texts before it in the batch ("The charger smashed" becomes
"It charger smashed" after a text with a new class).

This script sits first on ``APERTIUM_PATH`` when ``backtranslation.ApertiumEngine`` runs the
``apertium`` command, so the rest of the pipeline (deformatter, analyser, transfer, generator)
stays one batched process per stage. It splits the tagger's input stream into texts at the
blank-line superblanks that separate them and feeds them one by one to a real tagger in
null-flush mode (``-z``, which resets the Viterbi search between texts) with ``-d`` (which
reports each new ambiguity class on stderr); a text the tagger's changed state may have touched
is tagged again by a fresh tagger (see ``tag_texts``). A fresh tagger costs one model load
(~5 ms for cat-eng): little on the Spanish pairs, where few texts meet a new class, and most of
the cost on cat-eng, where most do (docs/benchmarks.md). The perceptron, sliding-window and
unigram taggers keep no such state and run as they are.

Run as a script (``python apertium_tagger.py -g MODEL``): it must not import the package, it
sits inside every Apertium call. The real tagger is ``$ANTIFIT_APERTIUM_TAGGER``.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from collections.abc import Sequence
from functools import cache

# Texts reach Apertium separated by one blank line and hold no newline of their own, so a
# superblank closing on a blank line ends a text.
_TEXT_END = re.compile(rb"\n[ \t]*\n[ \t]*\]")
_UNKNOWN = b"/*"  # a word without analyses: ^word/*word$


def split_texts(stream: bytes) -> list[bytes]:
    """The stream cut after each text's closing superblank; joined back they are ``stream``."""
    pieces: list[bytes] = []
    start = 0
    for match in _TEXT_END.finditer(stream):
        pieces.append(stream[start : match.end()])
        start = match.end()
    if start < len(stream):
        pieces.append(stream[start:])
    return pieces


class FreshTagger:
    """A tagger process, used so that each text's tags are those of a tagger in its initial
    state.

    The state the tagger keeps is its open class, read only for unknown words (``/*`` in the
    stream) and for words of a new ambiguity class (reported on stderr with ``-d``; whether a
    word's class is new does not depend on the state). Until the tagger first reports a new
    class, every text it tags is right; after that, only texts that hold neither.
    """

    def __init__(self, command: Sequence[str]) -> None:
        self.command = [*command[:1], "-z", "-d", *command[1:]]
        self.proc: subprocess.Popen[bytes] | None = None
        self.dirty = False  # the open class may have changed
        self.starts = 0

    def attempt(self, text: bytes) -> tuple[bytes | None, bool]:
        """The tagged text, or None where the tagger's state may have changed it; and whether
        the text holds a new ambiguity class."""
        was_dirty = self.dirty
        tagged, new_class = self._tag(text)
        if was_dirty and (new_class or _UNKNOWN in text):
            return None, new_class
        return tagged, new_class

    def restart(self) -> None:
        self.close()
        self._start()

    def _tag(self, text: bytes) -> tuple[bytes, bool]:
        """The tagged text, and whether the tagger wrote anything on stderr meanwhile."""
        proc = self.proc or self._start()
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            tagged = _exchange(proc.stdin.fileno(), proc.stdout.fileno(), text + b"\0")
        except BrokenPipeError:  # it exited before reading all of the text
            tagged = None
        if tagged is None:
            raise RuntimeError(f"apertium-tagger exited early ({proc.wait()})")
        # everything it wrote on stderr before its NUL is in the pipe by now
        reported = _drain(proc.stderr.fileno())
        self.dirty = self.dirty or reported
        return tagged, reported

    def _start(self) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self.proc.stdin is not None and self.proc.stderr is not None
        os.set_blocking(self.proc.stdin.fileno(), False)
        os.set_blocking(self.proc.stderr.fileno(), False)
        self.dirty = False
        self.starts += 1
        return self.proc

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
            self.proc = None


def tag_texts(texts: Sequence[bytes], tagger: FreshTagger) -> list[bytes]:
    """Each text tagged as if alone, with as few fresh taggers as it takes.

    One tagger goes through all texts; those its state may have changed are tagged again:
    first the ones without a new class, all by one fresh tagger (they leave it clean), then
    each one with a new class by a fresh tagger of its own.
    """
    tagged: list[bytes | None] = []
    again: list[tuple[bool, int]] = []
    for i, text in enumerate(texts):
        out, new_class = tagger.attempt(text)
        tagged.append(out)
        if out is None:
            again.append((new_class, i))
    for _, i in sorted(again):
        if tagger.dirty:
            tagger.restart()
        tagged[i], _ = tagger.attempt(texts[i])
    assert all(out is not None for out in tagged)
    return tagged  # type: ignore[return-value]


def _exchange(stdin: int, stdout: int, data: bytes) -> bytes | None:
    """Writes ``data`` (a text and its NUL) and reads the tagger's answer up to its NUL,
    without blocking on either side; None if the tagger closed its output first."""
    pending = memoryview(data)
    out = bytearray()
    while True:
        if pending:
            try:
                pending = pending[os.write(stdin, pending) :]
            except BlockingIOError:
                pass
        readable, _, _ = select.select([stdout], [stdin] if pending else [], [])
        if readable:
            chunk = os.read(stdout, 1 << 16)
            if not chunk:
                return None
            out += chunk
            if out.endswith(b"\0"):
                return bytes(out[:-1])


def _drain(fd: int) -> bool:
    """Empties a non-blocking pipe; whether it held anything."""
    seen = False
    try:
        while os.read(fd, 1 << 16):
            seen = True
    except BlockingIOError:
        pass
    return seen


def tag_stream(stream: bytes, command: Sequence[str]) -> list[bytes]:
    tagger = FreshTagger(command)
    try:
        return tag_texts(split_texts(stream), tagger)
    finally:
        tagger.close()


def is_hmm(args: Sequence[str]) -> bool:
    """Whether these tagger options select the HMM (not perceptron, sliding window, unigram)."""
    for arg in args:
        if arg.startswith("--"):
            if arg.split("=")[0] in ("--perceptron", "--sliding-window", "--unigram"):
                return False
        elif arg.startswith("-") and set(arg[1:]) & {"x", "w", "u"}:
            return False
    return True


@cache
def environment(real_tagger: str) -> dict[str, str]:
    """Variables that make an ``apertium`` call use this script as its tagger.

    The stand-in lives in a private temporary folder of this process (removed at exit): an
    executable named ``apertium-tagger`` that runs this file with this interpreter.
    """
    import atexit  # here, not at the top: the script's own start stays short
    import shlex
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="antifit-apertium-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    shim = os.path.join(folder, "apertium-tagger")
    with open(shim, "w", encoding="utf-8") as f:
        f.write(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -I {shlex.quote(__file__)} "$@"\n')
    os.chmod(shim, 0o755)
    prior = os.environ.get("APERTIUM_PATH")
    return {
        "APERTIUM_PATH": f"{folder}:{prior}" if prior else folder,
        "ANTIFIT_APERTIUM_TAGGER": real_tagger,
    }


def main(argv: Sequence[str]) -> int:
    real = os.environ.get("ANTIFIT_APERTIUM_TAGGER")
    if not real:  # on PATH, "apertium-tagger" may be this script again
        print("apertium_tagger.py: set ANTIFIT_APERTIUM_TAGGER to the real tagger", file=sys.stderr)
        return 2
    args = [a for a in argv if a]  # the mode passes an empty "$2" when no tagger option is set
    if not is_hmm(args):
        os.execvp(real, [real, *args])  # the other taggers keep no state between sentences
    try:
        tagged = tag_stream(sys.stdin.buffer.read(), [real, *args])
    except (OSError, RuntimeError) as e:
        print(f"apertium_tagger.py: {e}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(b"".join(tagged))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
