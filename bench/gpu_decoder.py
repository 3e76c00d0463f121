"""Tokens/s and peak memory of supervised fine-tuning of a ~1B-parameter Llama on one GPU: full
fine-tuning against LoRA, bf16, with and without gradient checkpointing, and the plain
transformers step as the peer. Random-init weights of the real shape (Llama-3.2-1B's: 16
layers, hidden 2048, vocabulary 128256): throughput and memory depend on the shape, not the
values, so no download is needed. Each arm builds its own model and frees it before the next.

    .venv/bin/python bench/gpu_decoder.py               # a CUDA machine; a few minutes
    .venv/bin/python bench/gpu_decoder.py --tiny        # the same code on CPU, seconds

Rows are SFT batches: ``--batch`` rows of ``--length`` tokens, the first half of each row a
prompt (label -100), the second half the response.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.train_step import timed  # noqa: E402
from trainer.config import Lora, Regularization  # noqa: E402
from trainer.generation import Generator  # noqa: E402
from trainer.lora import apply_lora  # noqa: E402
from trainer.model import enable_checkpointing  # noqa: E402
from trainer.step import Stepper  # noqa: E402

ONE_B = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
}


def build(shape: dict[str, int], dtype: torch.dtype, device: torch.device) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**shape, max_position_embeddings=4096, tie_word_embeddings=True)
    with device:
        return LlamaForCausalLM(config).to(dtype)


def arm_step(
    name: str,
    shape: dict[str, int],
    batch: dict[str, torch.Tensor],
    labels: torch.Tensor,
    device: torch.device,
) -> tuple[Callable[[], None], int, int]:
    """The arm's step function, and its parameter and trainable parameter counts."""
    bf16 = device.type == "cuda"
    lora = "LoRA" in name
    # the loop's choices: under LoRA the frozen base is bf16, otherwise fp32 master weights
    model = build(shape, torch.bfloat16 if lora and bf16 else torch.float32, device)
    if "ckpt" in name:
        enable_checkpointing(model)
    if name.startswith("peer"):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def peer() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = model(**batch, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        total = sum(p.numel() for p in model.parameters())
        return peer, total, total
    if lora:
        model = apply_lora(model, Lora(enabled=True, rank=16, alpha=32), generation=True)
        for param in model.parameters():
            if param.requires_grad:
                param.data = param.data.float()
        if "ckpt" in name:
            model.enable_input_require_grads()
    stepper = Stepper(
        Generator(model, None),
        Regularization(),
        learning_rate=1e-5,
        total_steps=10_000,
        device=device,
        bf16=bf16,
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return lambda: stepper.step(batch, labels), total, trainable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model on CPU")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per arm")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    shape = TINY if args.tiny else ONE_B
    length = 64 if args.tiny else args.length
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, shape["vocab_size"], (args.batch, length), generator=generator)
    labels = ids.clone()
    labels[:, : length // 2] = -100  # the prompt half carries no loss
    batch = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}
    labels = labels.to(device)
    arms = [
        "peer: transformers step, full",
        "antifit full",
        "antifit full + grad ckpt",
        "antifit LoRA r=16",
        "antifit LoRA r=16 + grad ckpt",
    ]
    print(
        f"random Llama {shape['num_hidden_layers']} layers, hidden {shape['hidden_size']}, "
        f"vocabulary {shape['vocab_size']}; batch {args.batch} x {length} tokens; {device}"
        + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else "")
        + f"; bf16 {device.type == 'cuda'}; median of {args.steps} steps after 2 warm-up"
    )
    print(
        f"{'arm':32s} {'params':>8s} {'trainable':>10s} {'ms/step':>9s} {'tokens/s':>9s} "
        f"{'peak GiB':>9s}"
    )
    for name in arms:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        try:
            step, total, trainable = arm_step(name, shape, batch, labels, device)
            for _ in range(2):
                step()
            times = [timed(step, device) for _ in range(args.steps)]
        except torch.OutOfMemoryError:
            print(f"{name:32s} out of memory")
            continue
        seconds = statistics.median(times)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
        del step
        print(
            f"{name:32s} {total / 1e6:7.0f}M {trainable / 1e6:9.1f}M {1000 * seconds:9.1f} "
            f"{args.batch * length / seconds:9.0f} {peak:9.2f}"
        )


if __name__ == "__main__":
    main()
