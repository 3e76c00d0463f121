"""Shared fixtures: tiny random transformers models built from tokenizers trained here.

Nothing is downloaded: tokenizers are trained on a small local corpus and the models are
randomly initialised, so their outputs are gibberish but every code path is real.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import settings

# Property tests check behaviour, not speed (speed is measured in bench/): no per-example
# deadline, which a first example loading a resource (the segmenter, ~0.3 s) or a loaded CI
# machine would miss.
settings.register_profile("antifit", deadline=None)
settings.load_profile("antifit")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PIPELINES = ROOT / "augmenters" / "data" / "pipelines"

Built = TypeVar("Built")


def seeded(build: Callable[[Any], Built], config: Any) -> Built:
    """``build(config)`` with the global generator forked and seeded: a fixture model gets the same
    random weights whatever the tests that ran before it, and the state outside is untouched."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build(config)


CORPUS = [
    "the cat sat on the mat and looked at the dog",
    "a quick brown fox jumps over the lazy dog",
    "the battery lasts two days and charging is quick",
    "support answered within an hour and solved my problem",
    "the screen is bright sharp and easy to read outdoors",
    "I love this movie the actors were great",
    "terrible instructions I could not figure out how to pair it",
    "el gato se sentó en la alfombra y miró al perro",
    "un rápido zorro marrón salta sobre el perro perezoso",
    "la batería dura dos días y la carga es rápida",
    "me encanta esta película los actores eran geniales",
    "这款手机的电池非常耐用",
]


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return CORPUS


@pytest.fixture(scope="session")
def tiny_mlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random BERT masked LM with a WordPiece tokenizer trained on CORPUS."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    out = tmp_path_factory.mktemp("tiny-mlm")
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials)
    tok.train_from_iterator(CORPUS * 5, trainer)
    tok.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    ).save_pretrained(out)
    config = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    seeded(BertForMaskedLM, config).save_pretrained(out)
    return out


def _train_spm(path_prefix: Path, lines: list[str]) -> None:
    import sentencepiece as spm

    text = path_prefix.with_suffix(".txt")
    text.write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(path_prefix),
        vocab_size=60,
        model_type="unigram",
        hard_vocab_limit=False,
        character_coverage=1.0,
        bos_id=-1,
        eos_id=1,
        unk_id=2,
        pad_id=0,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        minloglevel=2,
    )


@pytest.fixture(scope="session")
def tiny_marian_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two tiny random MarianMT directories, eng->spa and spa->eng."""
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    english = CORPUS[:7]
    spanish = CORPUS[7:11]
    dirs: dict[str, str] = {}
    for name, src, tgt in (("eng-spa", english, spanish), ("spa-eng", spanish, english)):
        out = tmp_path_factory.mktemp(f"marian-{name}")
        _train_spm(out / "source", src)
        _train_spm(out / "target", tgt)
        import sentencepiece as spm

        vocab: dict[str, int] = {}
        for part in ("source", "target"):
            sp = spm.SentencePieceProcessor(model_file=str(out / f"{part}.model"))
            for i in range(sp.get_piece_size()):
                vocab.setdefault(sp.id_to_piece(i), len(vocab))
        (out / "source.model").rename(out / "source.spm")
        (out / "target.model").rename(out / "target.spm")
        (out / "vocab.json").write_text(json.dumps(vocab))
        MarianTokenizer(
            source_spm=str(out / "source.spm"),
            target_spm=str(out / "target.spm"),
            vocab=str(out / "vocab.json"),
        ).save_pretrained(out)
        config = MarianConfig(
            vocab_size=len(vocab),
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_position_embeddings=64,
            pad_token_id=vocab["<pad>"],
            eos_token_id=vocab["</s>"],
            decoder_start_token_id=vocab["<pad>"],
        )
        seeded(MarianMTModel, config).save_pretrained(out)
        dirs[name] = str(out)
    return dirs


DECODERS = ("gpt2", "llama", "qwen2")


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_decoders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random 2-layer GPT-2, Llama and Qwen2 causal LMs sharing a byte-level BPE tokenizer
    trained on CORPUS that, like GPT-2's, has an end-of-text token and no pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS * 5, trainer)
    vocab = tok.get_vocab_size()
    eos = tok.token_to_id("<|endoftext|>")
    small = {"vocab_size": vocab, "bos_token_id": eos, "eos_token_id": eos}
    llama_like = {  # Llama and Qwen2 share these names
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "max_position_embeddings": 128,
        **small,
    }
    configs = {
        "gpt2": (
            GPT2LMHeadModel,
            GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=128, **small),
        ),
        "llama": (LlamaForCausalLM, LlamaConfig(**llama_like)),
        "qwen2": (Qwen2ForCausalLM, Qwen2Config(**llama_like)),
    }
    out: dict[str, Path] = {}
    for name, (cls, config) in configs.items():
        folder = tmp_path_factory.mktemp(f"tiny-{name}")
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            eos_token="<|endoftext|>",
            bos_token="<|endoftext|>",
            model_input_names=["input_ids", "attention_mask"],
        )
        if name == "qwen2":  # a chat model: ChatML, as Qwen's tokenizers have
            tokenizer.chat_template = CHATML
        tokenizer.save_pretrained(folder)
        seeded(cls, config).save_pretrained(folder)
        out[name] = folder
    return out


@pytest.fixture(scope="session")
def reviews() -> list[dict[str, object]]:
    with (EXAMPLES / "reviews.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def has_apertium() -> bool:
    try:
        from augmenters.resources import apertium_modes

        return {"eng-spa", "spa-eng"} <= apertium_modes()
    except ValueError:
        return False


def has_wordnet() -> bool:
    try:
        from augmenters.resources import wordnet_source

        wordnet_source()
        return True
    except ValueError:
        return False


needs_apertium = pytest.mark.skipif(
    not has_apertium(), reason="needs Debian's apertium-eng-spa (scripts/setup.sh installs it)"
)
needs_wordnet = pytest.mark.skipif(
    not has_wordnet(), reason="needs Debian's wordnet-base (scripts/setup.sh installs it)"
)
