"""Back-translation: translate to one or more pivot languages and back.

Two engines: ``apertium`` (rule-based, Debian packages, offline by default; many sentences per
process call) and ``marian`` (MarianMT through transformers from local model directories,
batched, on CUDA when available). Outputs stay aligned 1:1 with inputs; a text whose
translation fails keeps its original and the failure is noted in the variant's metadata.

Sampling: each hop yields up to ``num_beams`` candidates with scores; with ``temperature`` 0 the
best is taken, otherwise one is drawn from softmax(score / temperature) with the variant's own
generator, so a variant never depends on the batch it was translated in.
"""

from __future__ import annotations

import math
import os
import random
import re
import subprocess
from collections import OrderedDict
from collections.abc import Sequence
from typing import Annotated, Literal, Protocol

from pydantic import Field, model_validator

from augmenters.base import Applied, Augmenter, Draft, StepSpec
from augmenters.errors import ResourceMissing
from augmenters.limits import (
    MAX_MODELS,
    MAX_PIVOT_CHAINS,
    MAX_PIVOT_HOPS,
    BatchSize,
    Device,
    Language,
    MaxLength,
)
from augmenters.registry import ModelRef

Candidates = list[tuple[str, float]]  # (translation, log-score), best first; [] = failed


class TranslationEngine(Protocol):
    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Candidates]: ...


_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_MARK = re.compile(r"(?<!\S)[#@](?=\w)")


class ApertiumEngine:
    """Runs ``apertium SRC-TGT`` once per chunk of texts, one blank line between texts.

    Its part-of-speech tagger is ``apertium_tagger.py``, which tags each text as if alone:
    Apertium's own HMM tagger carries state from one text to the next.
    """

    def __init__(self, chunk: int = 1000, timeout: float = 600.0) -> None:
        self.chunk = chunk
        self.timeout = timeout

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Candidates]:
        from augmenters import apertium_tagger
        from augmenters.resources import apertium_binary, apertium_modes, apertium_tagger_binary

        mode = f"{source}-{target}"
        if mode not in apertium_modes():
            raise ResourceMissing(
                f"Apertium pair {mode}",
                f"installed: {', '.join(sorted(apertium_modes())) or 'none'}; install Debian's "
                f"apertium-{source}-{target} or apertium-{target}-{source}",
            )
        binary = apertium_binary()
        env = {**os.environ, **apertium_tagger.environment(apertium_tagger_binary())}
        out: list[Candidates] = []
        for start in range(0, len(texts), self.chunk):
            out += self._run(binary, mode, list(texts[start : start + self.chunk]), env)
        return out

    def _run(
        self, binary: str, mode: str, texts: list[str], env: dict[str, str]
    ) -> list[Candidates]:
        flat = [" ".join(t.split()) for t in texts]  # no blank lines inside a text
        sendable = [i for i, t in enumerate(flat) if t]
        result: list[Candidates] = [[(t, 0.0)] if not t else [] for t in flat]
        if not sendable:
            return result
        try:
            proc = subprocess.run(
                [binary, "-u", "-f", "txt", mode],
                input="\n\n".join(flat[i] for i in sendable) + "\n",
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
                env=env,
            )
        except subprocess.TimeoutExpired:
            return result
        parts = _BLANK_LINE.split(proc.stdout.strip("\n"))
        if proc.returncode != 0 or len(parts) != len(sendable):
            if len(sendable) == 1:
                return result  # this text cannot be translated: it stays [] (failed)
            # misaligned output: split the chunk until every piece aligns
            half = len(texts) // 2
            return self._run(binary, mode, texts[:half], env) + self._run(
                binary, mode, texts[half:], env
            )
        for i, part in zip(sendable, parts, strict=True):
            cleaned = part.strip()
            if "#" not in flat[i] and "@" not in flat[i]:
                cleaned = _MARK.sub("", cleaned)
            result[i] = [(cleaned, 0.0)] if cleaned else []
        return result


class MarianEngine:
    """MarianMT (or any seq2seq translation model) from local directories, batched."""

    def __init__(
        self,
        models: dict[str, str],
        *,
        num_beams: int,
        batch_size: int,
        max_length: int,
        device: str,
    ) -> None:
        self.models = models
        self.num_beams = num_beams
        self.batch_size = batch_size
        self.max_length = max_length
        self.device = device

    def translate(self, texts: Sequence[str], source: str, target: str) -> list[Candidates]:
        import torch

        from augmenters.resources import seq2seq, torch_device

        path = self.models[f"{source}-{target}"]
        tokenizer, model = seq2seq(path, torch_device(self.device))
        out: list[Candidates] = []
        k = self.num_beams
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            enc = tokenizer(
                batch,
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.max_length,
            ).to(model.device)
            with torch.inference_mode():
                gen = model.generate(
                    **enc,
                    num_beams=k,
                    num_return_sequences=k,
                    do_sample=False,
                    max_new_tokens=self.max_length,
                    output_scores=True,
                    return_dict_in_generate=True,
                )
            decoded = tokenizer.batch_decode(gen.sequences, skip_special_tokens=True)
            scores = (
                gen.sequences_scores.tolist()
                if k > 1 and gen.sequences_scores is not None
                else [0.0] * len(decoded)
            )
            for j in range(len(batch)):
                cands = [(decoded[j * k + r].strip(), scores[j * k + r]) for r in range(k)]
                out.append([(t, s) for t, s in cands if t])
        return out


class BackTranslationSpec(StepSpec):
    type: Literal["back_translation"] = "back_translation"
    engine: Literal["apertium", "marian"] = "apertium"
    source: Language = "eng"
    pivots: tuple[Annotated[tuple[Language, ...], Field(max_length=MAX_PIVOT_HOPS)], ...] = Field(
        default=(("spa",),),
        min_length=1,
        max_length=MAX_PIVOT_CHAINS,
        description="pivot chains; each variant draws one (e.g. [['spa'], ['cat']])",
    )
    models: dict[Annotated[str, Field(max_length=40)], ModelRef] = Field(
        default_factory=dict,
        max_length=MAX_MODELS,
        description="marian: 'src-tgt' -> local model directory",
    )
    num_beams: int = Field(default=4, ge=1, le=32)
    temperature: float = Field(default=0.0, ge=0.0, le=100.0)
    batch_size: BatchSize = 32
    max_length: MaxLength = 256
    device: Device = "auto"

    @model_validator(mode="after")
    def _chains(self) -> BackTranslationSpec:
        for chain in self.pivots:
            if not chain or any(not lang for lang in chain):
                raise ValueError("each pivot chain needs one or more language codes")
        if self.engine == "marian":
            missing = sorted({f"{a}-{b}" for a, b in self.hops_all()} - set(self.models))
            if missing:
                raise ValueError(f"marian needs 'models' for {', '.join(missing)}")
        return self

    def hops(self, chain: Sequence[str]) -> list[tuple[str, str]]:
        langs = [self.source, *chain, self.source]
        return list(zip(langs, langs[1:], strict=False))

    def hops_all(self) -> list[tuple[str, str]]:
        return [hop for chain in self.pivots for hop in self.hops(chain)]

    def build(self) -> BackTranslationAugmenter:
        return BackTranslationAugmenter(self)


class BackTranslationAugmenter(Augmenter):
    op = "back_translation"
    spec: BackTranslationSpec

    def __init__(self, spec: BackTranslationSpec, engine: TranslationEngine | None = None) -> None:
        super().__init__(spec)
        self.engine: TranslationEngine = engine or self._engine(spec)
        # variants of one record share their translations: cache (hop, text) -> candidates
        self._cache: OrderedDict[tuple[str, str, str], Candidates] = OrderedDict()
        self._cache_size = 100_000

    @staticmethod
    def _engine(spec: BackTranslationSpec) -> TranslationEngine:
        if spec.engine == "apertium":
            return ApertiumEngine(chunk=max(spec.batch_size, 1000))
        return MarianEngine(
            spec.models,
            num_beams=spec.num_beams,
            batch_size=spec.batch_size,
            max_length=spec.max_length,
            device=spec.device,
        )

    def augment_batch(self, drafts: Sequence[Draft], rngs: Sequence[random.Random]) -> None:
        chains = [rng.choice(self.spec.pivots) for rng in rngs]
        for chain in dict.fromkeys(chains):
            group = [j for j, c in enumerate(chains) if c == chain]
            texts: list[str | None] = [drafts[j].text for j in group]
            for src, tgt in self.spec.hops(chain):
                live = [i for i, t in enumerate(texts) if t is not None]
                cands = self._translate([texts[i] for i in live], src, tgt)  # type: ignore[misc]
                for i, c in zip(live, cands, strict=True):
                    texts[i] = self._choose(c, rngs[group[i]]) if c else None
            pivot = "-".join(chain)
            for j, text in zip(group, texts, strict=True):
                if text is None:
                    drafts[j].applied.append(
                        Applied(self.op, 0, f"translation via {pivot} failed; original kept")
                    )
                else:
                    changed = int(text != drafts[j].text)
                    drafts[j].text = text
                    drafts[j].applied.append(Applied(self.op, changed, f"via {pivot}"))

    def _translate(self, texts: list[str], source: str, target: str) -> list[Candidates]:
        keys = [(source, target, t) for t in texts]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        fresh = (
            dict(
                zip(todo, self.engine.translate([k[2] for k in todo], source, target), strict=True)
            )
            if todo
            else {}
        )
        out = [fresh[k] if k in fresh else self._cache[k] for k in keys]
        self._cache.update(fresh)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out

    def _choose(self, cands: Candidates, rng: random.Random) -> str:
        if self.spec.temperature == 0 or len(cands) == 1:
            return cands[0][0]
        best = max(s for _, s in cands)
        weights = [round(math.exp((s - best) / self.spec.temperature), 4) for _, s in cands]
        return rng.choices([t for t, _ in cands], weights=weights)[0]
