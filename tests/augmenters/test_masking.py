import random
from pathlib import Path

import pytest

from augmenters import augment
from augmenters.masking import MaskSpec, SpanMaskSpec
from augmenters.tokenize import split

TEXT = "the battery lasts two full days and charging is quick even with the screen on all day"


def test_token_mask_counts_and_keeps_the_rest() -> None:
    aug = MaskSpec(p=0.25, mask_token="<m>").build()
    for seed in range(50):
        out, n = aug.augment(TEXT, random.Random(seed))
        assert out.count("<m>") == n
        kept = [w for w in out.split() if w != "<m>"]
        assert len(kept) + n == len(TEXT.split())
        assert all(w in TEXT.split() for w in kept)


def test_mask_rate_near_p() -> None:
    aug = MaskSpec(p=0.3).build()
    n_words = len(TEXT.split())
    rates = [aug.augment(TEXT, random.Random(s))[1] / n_words for s in range(400)]
    assert abs(sum(rates) / len(rates) - 0.3) < 0.02


def test_chinese_is_masked_per_word() -> None:
    # segmented: 我 / 很 / 喜欢 / 这部 / 电影 — a mask stands for a whole word
    out, n = MaskSpec(p=0.4, mask_token="_").build().augment("我很喜欢这部电影", random.Random(0))
    assert n == 2 and out.count("_") == 2
    kept = out.split("_")
    assert all(word in "我很喜欢这部电影" for word in kept)
    assert {"喜", "欢"} & set(out) in (set(), {"喜", "欢"})  # never half of 喜欢


def test_span_mask_covers_budget_in_contiguous_spans() -> None:
    aug = SpanMaskSpec(p=0.4, mean_span=3, mask_token="<m>").build()
    n_words = len(TEXT.split())
    for seed in range(50):
        out, n = aug.augment(TEXT, random.Random(seed))
        assert abs(n - 0.4 * n_words) <= 1
        assert "<m> <m>" not in out  # collapsed: one mask per span
        words = out.split()
        assert len(words) - words.count("<m>") == n_words - n


def test_span_mask_uncollapsed_has_one_mask_per_word() -> None:
    aug = SpanMaskSpec(p=0.4, collapse=False, mask_token="<m>").build()
    out, n = aug.augment(TEXT, random.Random(5))
    assert out.count("<m>") == n
    assert len(out.split()) == len(TEXT.split())


def test_span_mask_is_fast_on_long_texts() -> None:
    text = " ".join(["word"] * 20_000)
    out, n = SpanMaskSpec(p=0.15).build().augment(text, random.Random(0))
    assert n == round(0.15 * 20_000) or abs(n - 3000) <= 1


def test_contextual_fill_with_a_local_masked_lm(tiny_mlm: Path) -> None:
    records = [
        {"id": i, "text": t}
        for i, t in enumerate(
            [
                "the battery lasts two days",
                "support answered within an hour",
                "the screen is bright",
                "我很喜欢这部电影",
            ]
        )
    ]
    spec = {
        "pipeline": {
            "type": "contextual",
            "model": str(tiny_mlm),
            "p": 0.5,
            "top_k": 5,
            "device": "cpu",
        }
    }
    one = augment(records, spec, seed=3, n_variants=2, batch_size=1)
    many = augment(records, spec, seed=3, n_variants=2, batch_size=64)
    assert [v.text for v in one] == [v.text for v in many]
    english = [v for v in one if v.record_id != "3"]
    assert sum(v.ops[0].changes for v in english) > 0
    for v in english:
        original = records[int(v.record_id)]["text"]
        assert len(split(v.text)) >= len(split(str(original)))  # words replaced, not deleted
        assert "[MASK]" not in v.text


def test_contextual_without_a_local_model_is_a_clear_error(tmp_path: Path) -> None:
    from augmenters import ResourceMissing

    spec = {"pipeline": {"type": "contextual", "model": str(tmp_path / "nowhere"), "p": 0.5}}
    with pytest.raises(ResourceMissing, match="never downloads"):
        augment([{"id": 1, "text": "some words here"}], spec, seed=0)
