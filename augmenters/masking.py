"""Random masking: token masking, span masking, and contextual fill with a local masked LM.

Words of spaced scripts and single CJK characters are the units, so Chinese and Japanese text
is masked per character.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from augmenters.base import Applied, Augmenter, Draft, RateSpec, WordAugmenter, WordLevel
from augmenters.limits import MAX_TOP_K, BatchSize, Device, MaxLength, Token
from augmenters.registry import ModelRef
from augmenters.segment import Segmenter
from augmenters.tokenize import HAN_CHAR, HAN_WORD, has_letter, match_case


class MaskSpec(RateSpec):
    """Replace a fraction ``p`` of the words (CJK: characters) with a mask token."""

    type: Literal["mask"] = "mask"
    p: float = Field(default=0.15, ge=0.0, le=1.0)
    mask_token: Token = "[MASK]"

    def build(self) -> MaskAugmenter:
        return MaskAugmenter(self)


class MaskAugmenter(WordAugmenter):
    op = "mask"
    spec: MaskSpec

    def augment(self, text: str, rng: random.Random) -> tuple[str, int]:
        words = self.words(text)
        chosen = words.pick(self.spec, rng)
        return words.text(dict.fromkeys(chosen, self.spec.mask_token)), len(chosen)


class SpanMaskSpec(RateSpec):
    """Mask contiguous spans covering a fraction ``p`` of the words; span lengths are geometric
    with mean ``mean_span``; each span becomes one mask token (``collapse``) or one per word."""

    type: Literal["span_mask"] = "span_mask"
    p: float = Field(default=0.15, ge=0.0, le=1.0)
    mean_span: float = Field(default=3.0, ge=1.0, le=100.0)
    mask_token: Token = "[MASK]"
    collapse: bool = True

    def build(self) -> SpanMaskAugmenter:
        return SpanMaskAugmenter(self)


class SpanMaskAugmenter(WordAugmenter):
    op = "span_mask"
    spec: SpanMaskSpec

    def augment(self, text: str, rng: random.Random) -> tuple[str, int]:
        words = self.words(text)
        runs = _runs(words.parts, words.eligible)
        budget = self.spec.count(len(words.eligible), rng)
        # span starts are drawn among the unmasked positions, kept in a swap-remove list
        free = [(r, j) for r, run in enumerate(runs) for j in range(len(run))]
        where = {pos: k for k, pos in enumerate(free)}
        masked: set[int] = set()
        q = 1.0 / self.spec.mean_span
        while len(masked) < budget:
            r, j = free[rng.randrange(len(free))]
            length = 1 + (int(math.log(1.0 - rng.random()) / math.log(1.0 - q)) if q < 1 else 0)
            for jj in range(j, min(j + length, len(runs[r]))):
                if runs[r][jj] in masked or len(masked) >= budget:
                    break
                masked.add(runs[r][jj])
                k = where.pop((r, jj))
                last = free.pop()
                if k < len(free):
                    free[k] = last
                    where[last] = k
        return self._render(words, masked), len(masked)

    def _render(self, words: WordLevel, masked: set[int]) -> str:
        parts, mask = words.parts, self.spec.mask_token
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            if self.spec.collapse and i in masked and i - 2 in masked and not parts[i - 1].strip():
                out.pop()  # inside a span: the previous mask stands for this word too
            else:
                out.append(mask if i in masked else parts[i])
            out.append(parts[i + 1])
        return "".join(out)


def _runs(parts: Sequence[str], eligible: Sequence[int]) -> list[list[int]]:
    """Group eligible units into runs separated only by whitespace."""
    runs: list[list[int]] = []
    for i in eligible:
        if runs and runs[-1][-1] == i - 2 and not parts[i - 1].strip():
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


class ContextualSpec(RateSpec):
    """Mask a fraction ``p`` of the words and refill each with a masked LM's top-k sample."""

    type: Literal["contextual"] = "contextual"
    model: ModelRef = Field(
        description="a registered masked-LM name, or (library, CLI) a local model directory"
    )
    p: float = Field(default=0.15, ge=0.0, le=1.0)
    top_k: int = Field(default=10, ge=1, le=MAX_TOP_K)
    batch_size: BatchSize = 32
    max_length: MaxLength = 256
    device: Device = "auto"

    def build(self) -> ContextualAugmenter:
        return ContextualAugmenter(self)


class ContextualAugmenter(Augmenter):
    op = "contextual"
    spec: ContextualSpec

    def __init__(self, spec: ContextualSpec) -> None:
        super().__init__(spec)
        self._protection = spec.protection()
        self._banned: list[int] | None = None
        self.segmenter: Segmenter | None = None  # the pipeline's, when it adds user words

    def augment_batch(self, drafts: Sequence[Draft], rngs: Sequence[random.Random]) -> None:
        from augmenters.resources import masked_lm, torch_device

        tokenizer, model = masked_lm(self.spec.model, torch_device(self.spec.device))
        plans = [self._plan(d.text, rng) for d, rng in zip(drafts, rngs, strict=True)]
        for start in range(0, len(drafts), self.spec.batch_size):
            chunk = range(start, min(start + self.spec.batch_size, len(drafts)))
            todo = [j for j in chunk if plans[j][1]]
            fills = self._fill(tokenizer, model, [plans[j] for j in todo], [rngs[j] for j in todo])
            filled = dict(zip(todo, fills, strict=True))
            for j in chunk:
                words, chosen = plans[j]
                new = filled.get(j, {})
                if new:
                    drafts[j].text = words.text(new)
                drafts[j].applied.append(Applied(self.op, len(new)))

    def _plan(self, text: str, rng: random.Random) -> tuple[WordLevel, list[int]]:
        words = WordLevel(text, self._protection, has_letter, self.segmenter)
        return words, words.pick(self.spec, rng)

    def _fill(
        self,
        tokenizer: Any,
        model: Any,
        plans: list[tuple[WordLevel, list[int]]],
        rngs: list[random.Random],
    ) -> list[dict[int, str]]:
        import torch

        if not plans:
            return []
        mask = tokenizer.mask_token
        # a Chinese word gets a mask per character (a Chinese masked LM predicts characters),
        # so "手机" is refilled by two characters, not squeezed into one
        widths = [[_width(words.parts[i]) for i in chosen] for words, chosen in plans]
        texts = [
            words.text({i: mask * n for i, n in zip(chosen, row, strict=True)})
            for (words, chosen), row in zip(plans, widths, strict=True)
        ]
        enc = tokenizer(
            texts,
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.spec.max_length,
        )
        with torch.inference_mode():
            logits = model(**enc.to(model.device)).logits.float()
        if self._banned is None:
            self._banned = _unusable_ids(tokenizer)
        banned = torch.tensor(self._banned, device=logits.device)
        out: list[dict[int, str]] = []
        for row, ((words, chosen), rng) in enumerate(zip(plans, rngs, strict=True)):
            positions = (enc["input_ids"][row] == tokenizer.mask_token_id).nonzero().flatten()
            row_logits = logits[row, positions]
            row_logits[:, banned] = float("-inf")
            top = torch.topk(row_logits, self.spec.top_k + 1, dim=-1)
            probs = torch.softmax(top.values, dim=-1).cpu().tolist()
            ids = top.indices.cpu().tolist()
            new: dict[int, str] = {}
            at = 0
            for i, n in zip(chosen, widths[row], strict=True):
                if at + n > len(ids):
                    break  # masks cut off by truncation: the word stays
                original = words.parts[i]
                # one draw per mask: a Chinese word's characters each from their own top-k,
                # Chinese characters only
                chinese = HAN_WORD.fullmatch(original) is not None
                pieces = list(original) if chinese else [original]
                fill = []
                for k in range(n):
                    decoded = _decode(tokenizer, ids[at + k])
                    cands = [
                        (p, w)
                        for p, w in zip(probs[at + k], decoded, strict=True)
                        if w
                        and w.lower() != pieces[k].lower()
                        and (not chinese or HAN_CHAR.fullmatch(w) is not None)
                    ][: self.spec.top_k]
                    fill.append(_sample(cands, rng) if cands else pieces[k])
                at += n
                if "".join(fill) != original:
                    new[i] = match_case(original, "".join(fill))
            out.append(new)
        return out


def _width(word: str) -> int:
    """Masks for a word: one per character of a Chinese word, one for any other."""
    return len(word) if HAN_WORD.fullmatch(word) else 1


def _sample(cands: list[tuple[float, str]], rng: random.Random) -> str:
    # probabilities rounded so that float noise across batch shapes cannot move a draw
    weights = [round(p, 4) for p, _ in cands]
    total = sum(weights) or 1.0
    x = rng.random() * total
    for w, (_, word) in zip(weights, cands, strict=True):
        x -= w
        if x < 0:
            return word
    return cands[-1][1]


def _decode(tokenizer: Any, ids: list[int]) -> list[str]:
    return [tokenizer.decode([i]).strip() for i in ids]


def _unusable_ids(tokenizer: Any) -> list[int]:
    """Special tokens and word-piece continuations cannot stand for a whole word."""
    banned = set(tokenizer.all_special_ids)
    for token, idx in tokenizer.get_vocab().items():
        if token.startswith("##") or not token.strip("#▁Ġ"):
            banned.add(idx)
    return sorted(banned)
