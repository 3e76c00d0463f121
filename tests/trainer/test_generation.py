"""Generative fine-tuning (SFT): encoding with response-only labels, the token loss, and runs
of tiny random causal LMs against the real service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch

from tests.trainer.test_loop import interrupted_state
from trainer.config import TrainConfig
from trainer.generation import IGNORE, GenerationEvalSet, load_generator, token_loss
from trainer.loop import train
from trainer.regularizers.label_smoothing import LabelSmoother
from trainer.report import read_jsonl
from trainer.stream import ServiceError, StreamDataset

QA = {"id": "q", "text": "What do bees make?", "label": {"response": "Bees make honey."}}
CHAT = {
    "id": "c",
    "text": "She loves gardening.",
    "label": {
        "response": "Pruning shears.",
        "context": [
            {"role": "user", "content": "A gift for my sister?"},
            {"role": "assistant", "content": "What does she enjoy?"},
        ],
    },
}


def test_labels_are_the_response_tokens_only(tiny_decoders: dict[str, Path]) -> None:
    gen = load_generator(tiny_decoders["llama"])
    short = {**QA, "label": {"response": "Yes."}}
    inputs, labels = gen.encode([QA, short], max_length=64)
    tok = gen.tokenizer
    for row, item in enumerate([QA, short]):
        prompt, response = gen.tokens(item, 64)
        n = len(prompt) + len(response)
        assert inputs["input_ids"][row, :n].tolist() == prompt + response
        assert (labels[row, : len(prompt)] == IGNORE).all() and (labels[row, n:] == IGNORE).all()
        assert labels[row, len(prompt) : n].tolist() == response
        assert inputs["attention_mask"][row].sum() == n  # padded on the right
        assert tok.decode(response) == item["label"]["response"] + tok.eos_token
        assert tok.decode(prompt).endswith(item["text"] + "\n")


def test_prompt_and_padding_positions_carry_no_gradient(tiny_decoders: dict[str, Path]) -> None:
    gen = load_generator(tiny_decoders["gpt2"])
    inputs, labels = gen.encode([QA, CHAT], max_length=64)
    for smoother in (None, LabelSmoother(0.1)):
        logits = gen.model(**inputs).logits.detach().requires_grad_(True)
        token_loss(logits, labels, smoother).backward()
        assert logits.grad is not None
        predicts_response = torch.zeros_like(labels, dtype=torch.bool)
        predicts_response[:, :-1] = labels[:, 1:] != IGNORE  # position t predicts token t + 1
        per_position = logits.grad.abs().sum(-1)
        assert (per_position[~predicts_response] == 0).all()
        assert (per_position[predicts_response] > 0).all()


def test_a_chat_template_renders_the_conversation(tiny_decoders: dict[str, Path]) -> None:
    gen = load_generator(tiny_decoders["qwen2"])  # ChatML template
    prompt, response = gen.tokens(CHAT, 512)
    text = gen.tokenizer.decode(prompt)
    assert text.startswith("<|im_start|>user\nA gift for my sister?<|im_end|>")
    last = "<|im_start|>user\nShe loves gardening.<|im_end|>\n<|im_start|>assistant\n"
    assert text.endswith(last)
    assert gen.tokenizer.decode(response) == "Pruning shears.<|im_end|>\n"
    # without a template, earlier turns are role lines
    plain, _ = load_generator(tiny_decoders["llama"]).tokens(CHAT, 512)
    assert "assistant: What does she enjoy?\n" in gen.tokenizer.decode(plain)


def test_long_examples_keep_the_prompt_end_and_the_response_start(
    tiny_decoders: dict[str, Path],
) -> None:
    gen = load_generator(tiny_decoders["llama"])
    long = {"id": "l", "text": "word " * 200 + "the question?", "label": {"response": "ok " * 200}}
    prompt, response = gen.tokens(long, 32)
    assert len(prompt) + len(response) == 32 and len(response) == 16
    assert gen.tokenizer.decode(prompt).endswith("the question?\n")
    assert gen.tokenizer.decode(response).startswith("ok ok")
    short_prompt, response = gen.tokens({**long, "text": "hi"}, 32)
    assert len(response) == 32 - len(short_prompt)  # a short prompt leaves the rest to it
    with pytest.raises(ValueError, match="has no response"):
        gen.tokens({"id": "x", "text": "a", "label": "pos"}, 32)


def test_scores_are_token_means(tiny_decoders: dict[str, Path]) -> None:
    generator = load_generator(tiny_decoders["gpt2"])
    gen = generator.model.eval()
    items = [QA, CHAT, {**QA, "id": "q2", "label": {"response": "Honey and wax, mostly."}}]
    one = GenerationEvalSet.build(generator, items, 64, batch_size=1)
    three = GenerationEvalSet.build(generator, items, 64, batch_size=3)
    with torch.no_grad():
        a = one.score(lambda x: gen(**x).logits, torch.device("cpu"))
        b = three.score(lambda x: gen(**x).logits, torch.device("cpu"))
    assert a.tokens == b.tokens == sum(len(generator.tokens(i, 64)[1]) for i in items)
    assert a.loss == pytest.approx(b.loss, rel=1e-5)
    assert a.perplexity == pytest.approx(torch.tensor(a.loss).exp().item(), rel=1e-5)
    assert 0 <= a.token_accuracy <= 1


def gen_config(svc: dict[str, str], out: Path, model: Path, **kwargs: Any) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "service": svc["base"],
            "dataset": svc["instructions"],
            "task": "generation",
            "model": str(model),
            "output_dir": str(out),
            "batch_size": 8,
            "max_length": 48,
            "learning_rate": 3e-3,
            "train_eval_size": 8,
            **kwargs,
        }
    )


def test_sft_run_learns_and_reports(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path
) -> None:
    """Full fine-tuning with the basic preset plus NEFTune and token-level R3F: the training
    loss falls, every evaluation has loss, perplexity and the gap, the best weights are
    restored and saved as a causal LM that transformers loads back."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = gen_config(
        service,
        tmp_path,
        tiny_decoders["llama"],
        preset="advanced",
        augment=None,
        regularization={"augmented": False, "label_smoothing": 0.1},
        epochs=6,
    )
    report = train(cfg, progress=False)
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert len(rows) == report["steps"] // 4 == 6  # 28 train records, batch 8: 4 steps/epoch
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    for row in rows:
        assert row["val_perplexity"] == pytest.approx(torch.tensor(row["val_loss"]).exp().item())
        assert row["gap_loss"] == pytest.approx(row["val_loss"] - row["train_loss"])
    assert report["task"] == "generation" and report["calibration"] is None
    assert report["saved_model"]["val_loss"] == report["final"]["val_loss"]
    assert report["test"]["test_perplexity"] > 1
    assert (tmp_path / "learning_curve.png").stat().st_size > 0
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "model")
    generator = load_generator(tmp_path / "model")
    evalset = GenerationEvalSet.build(generator, [{"id": "q", **QA}], cfg.max_length, batch_size=1)
    with torch.no_grad():
        assert evalset.score(lambda x: model(**x).logits, torch.device("cpu")).tokens > 0
    assert tokenizer.pad_token is not None


def test_lora_sft_on_chats_with_augmented_prompts_resumes_exactly(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path
) -> None:
    """The enhanced preset on a chat dataset and a ChatML model, with LoRA: prompts augmented
    by a job (responses untouched), an adapter-only checkpoint, and a resumed run that ends
    bitwise as a straight one."""

    def cfg(out: Path) -> TrainConfig:
        return gen_config(
            service,
            out,
            tiny_decoders["qwen2"],
            dataset=service["chats"],
            preset="enhanced",
            augment={"version": 1, "pipeline": {"type": "word_swap", "p": 0.3}},
            lora={"enabled": True, "rank": 4},
            max_steps=4,
            batch_size=2,
            eval_every=2,
            train_eval_size=0,
        )

    state = interrupted_state(cfg(tmp_path / "run"), 3)
    assert all("lora_" in k for k in state["stepper"]["module"])  # nothing frozen saved
    resumed = train(cfg(tmp_path / "run"), progress=False)
    straight = train(cfg(tmp_path / "straight"), progress=False)
    assert resumed["resumed_from_step"] == 3 and resumed["final"] == straight["final"]
    variants = [
        item
        for batch in StreamDataset(
            service["base"], service["chats"], job=resumed["job"], split="train", batch_size=64
        )
        for item in batch
    ]
    originals = {v["id"]: v for v in variants if v.get("variant") is None}
    augmented = [v for v in variants if v.get("variant") is not None]
    assert augmented and any(v["text"] != originals[v["id"]]["text"] for v in augmented)
    assert all(v["label"] == originals[v["id"]]["label"] for v in augmented)  # responses kept
    assert (tmp_path / "run" / "model" / "adapter_config.json").is_file()
    adapter = json.loads((tmp_path / "run" / "model" / "adapter_config.json").read_text())
    assert adapter["task_type"] == "CAUSAL_LM"


def test_the_trainer_can_augment_responses_when_asked(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path
) -> None:
    cfg = gen_config(
        service,
        tmp_path,
        tiny_decoders["gpt2"],
        preset="enhanced",
        augment={"version": 1, "pipeline": {"type": "word_swap", "p": 0.5}},
        augment_target="response",
        max_steps=1,
        train_eval_size=0,
    )
    report = train(cfg, progress=False)
    job = httpx.get(f"{service['base']}/v1/jobs/{report['job']}").json()
    assert job["target"] == "response" and job["manifest"]["target"] == "response"


def test_generation_errors_are_clear(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(ServiceError, match="is a classification dataset"):
        train(
            gen_config(service, tmp_path, tiny_decoders["gpt2"], dataset=service["dataset"]),
            progress=False,
        )
    with pytest.raises(ValueError, match="generation needs a causal LM"):
        TrainConfig.model_validate({"dataset": "d", "task": "generation"})
    with pytest.raises(ValueError, match="regularization.consistency"):
        TrainConfig.model_validate(
            {
                "dataset": "d",
                "task": "generation",
                "model": "m",
                "regularization": {"consistency": {"enabled": True}},
            }
        )
    with pytest.raises(ValueError, match="val_loss or gap_loss"):
        TrainConfig.model_validate(
            {
                "dataset": "d",
                "task": "generation",
                "model": "m",
                "regularization": {"early_stopping": {"enabled": True, "metric": "val_accuracy"}},
            }
        )


@pytest.mark.parametrize(
    "reg",
    [
        # perturbations large enough to move a tiny random model's predictions
        {"smart": {"enabled": True, "teacher": True, "epsilon": 1.0, "sigma": 0.1, "eta": 0.1}},
        {"r3f": {"enabled": True, "noise": "uniform", "sigma": 0.5}},
        {"mixout": {"enabled": True}, "weight_decay": {"rate": 0.01, "l2sp": True}},
    ],
)
def test_token_level_regularizers_step(tiny_decoders: dict[str, Path], reg: dict[str, Any]) -> None:
    """SMART (with its momentum teacher) and R3F compare the response positions' token
    distributions; Mixout and L2-SP act on a causal LM's weights as on a classifier's."""
    from trainer.config import Regularization
    from trainer.step import Stepper

    gen = load_generator(tiny_decoders["llama"])
    inputs, labels = gen.encode([QA, CHAT], max_length=64)
    plain = Stepper(
        load_generator(tiny_decoders["llama"]), Regularization(), learning_rate=1e-3, total_steps=4
    )
    stepper = Stepper(gen, Regularization.model_validate(reg), learning_rate=1e-3, total_steps=4)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        base = plain.step(inputs, labels)
        objective = stepper.step(inputs, labels)
    assert torch.isfinite(torch.tensor(objective))
    if "smart" in reg or "r3f" in reg:
        assert objective > base  # the same loss plus a positive divergence


def test_a_compiled_model_trains_as_the_eager_one(
    service: dict[str, str], tiny_decoders: dict[str, Path], tmp_path: Path
) -> None:
    """``compile``: torch.compile in place (the checkpoint's names unchanged), the same run
    (without dropout: compiled code draws its masks from inductor's own generator)."""

    def run(out: Path, compiled: bool) -> dict[str, Any]:
        cfg = gen_config(
            service,
            out,
            tiny_decoders["gpt2"],
            preset="none",
            max_steps=2,
            train_eval_size=0,
            compile=compiled,
            regularization={"dropout": {"hidden": 0.0, "attention": 0.0}},
        )
        return train(cfg, progress=False)

    eager, compiled = run(tmp_path / "eager", False), run(tmp_path / "compiled", True)
    assert compiled["final"]["val_loss"] == pytest.approx(eager["final"]["val_loss"], rel=1e-4)
    from safetensors.torch import load_file

    names = set(load_file(tmp_path / "compiled" / "model" / "model.safetensors"))
    assert names == set(load_file(tmp_path / "eager" / "model" / "model.safetensors"))
