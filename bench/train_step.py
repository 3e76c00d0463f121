"""Step time of each regularizer against plain fine-tuning, in one run.

The peer is a plain transformers step (``model(**batch, labels=...).loss.backward()``, fused
AdamW as the Trainer's default, ``zero_grad``) on the packaged all-MiniLM-L6-v2; every other
arm is antifit's ``Stepper`` (the code ``antifit train`` runs) with one regularizer on. Batch
16, length 64 (padded to exactly 64), CPU unless CUDA is present. Arms alternate within each
round; the ratio is the median over rounds of (the arm's median step time / plain's) in that
round.

    .venv/bin/python bench/train_step.py --rounds 7 --steps 3

``--decoder`` measures a decoder LM instead: a random-init Llama (``--layers``, ``--hidden``;
no weights needed for timing) built locally with MiniLM's tokenizer, full fine-tuning (the
plain transformers step as the peer, and antifit's) against LoRA and LoRA with gradient
checkpointing, with each arm's trainable parameters and optimizer state (what LoRA saves).

    .venv/bin/python bench/train_step.py --decoder --rounds 5 --steps 2

``--generation`` measures supervised fine-tuning of the same random Llama as a causal LM:
the peer is transformers' own step (``model(**batch, labels=labels).loss``: shifted
cross-entropy, -100 ignored) on the same response-only labels; antifit's arms are its SFT step
plain, with label smoothing over tokens, NEFTune, token-level R3F, and LoRA.

    .venv/bin/python bench/train_step.py --generation --rounds 5 --steps 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.config import (  # noqa: E402
    Averaging,
    Consistency,
    DomainAdversarial,
    Mixout,
    R3FSettings,
    RDrop,
    Regularization,
    RobustLoss,
    SmartSettings,
    WeightDecay,
    preset,
)
from trainer.model import enable_checkpointing, load_classifier  # noqa: E402
from trainer.step import Stepper  # noqa: E402

WORDS = (
    "the battery lasts two days and charging is quick while support answered within an hour "
    "screen bright sharp easy to read outdoors instructions terrible could not pair it at all"
).split()

ARMS: dict[str, Regularization] = {
    "antifit, no regularizer": Regularization(),
    "weight decay 0.01": Regularization(weight_decay=WeightDecay(rate=0.01)),
    "L2-SP 0.01": Regularization(weight_decay=WeightDecay(rate=0.01, l2sp=True)),
    "label smoothing 0.1": Regularization(label_smoothing=0.1),
    "Mixout p=0.1": Regularization(mixout=Mixout(enabled=True, p=0.1)),
    "R3F": Regularization(r3f=R3FSettings(enabled=True)),
    "SMART K=1": Regularization(smart=SmartSettings(enabled=True, steps=1, teacher=False)),
    "SMART K=1 + teacher": Regularization(smart=SmartSettings(enabled=True, steps=1, teacher=True)),
    "DANN (+16 auxiliary rows)": Regularization(
        domain_adversarial=DomainAdversarial(enabled=True, auxiliary_dataset="aux")
    ),
    "weight average (EMA)": Regularization(averaging=Averaging(enabled=True)),
    "layer-wise lr decay 0.8": Regularization(layer_lr_decay=0.8),
    "generalized CE": Regularization(robust_loss=RobustLoss(kind="gce")),
    "early-learning reg. (ELR)": Regularization(robust_loss=RobustLoss(kind="elr")),
    "R-Drop": Regularization(rdrop=RDrop(enabled=True)),
    "consistency (+32 variant rows)": Regularization(
        augmented=True, consistency=Consistency(enabled=True)
    ),
    "preset basic": preset("basic"),
    "preset enhanced (+32 variant rows)": preset("enhanced"),
    "preset advanced": preset("advanced"),
}


def texts(n: int, offset: int) -> list[str]:
    return [" ".join(WORDS[(i + offset + j) % len(WORDS)] for j in range(80)) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per arm per round")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--decoder", action="store_true", help="a Llama: full vs LoRA")
    parser.add_argument(
        "--generation", action="store_true", help="a Llama causal LM: SFT regularizers"
    )
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.generation:
        generation_arms(args, device)
        return
    if args.decoder:
        decoder_arms(args, device)
        return

    labels = [0, 1, 2]
    plain = load_classifier(None, labels)

    def fixed_length(n: int) -> dict[str, torch.Tensor]:
        encoded = plain.tokenizer(
            texts(n, 0),
            padding="max_length",
            truncation=True,
            max_length=args.length,
            return_tensors="pt",
        )
        return {k: v.to(device) for k, v in encoded.items()}

    n = args.batch_size
    inputs = fixed_length(n)
    inputs_with_aux = fixed_length(n * 2)  # task rows + auxiliary rows
    y = torch.tensor([i % 3 for i in range(n)], device=device)
    ids = [f"r{i}" for i in range(n)]
    # a grouped batch: n originals, then 2 variants of each (consistency training)
    grouped = fixed_length(n * 3)
    y3 = torch.cat([y, y, y])
    sources = torch.tensor([-1] * n + list(range(n)) * 2, device=device)

    plain_step, _ = transformers_step(plain.model, inputs, y, device)
    # the same step with AdamW's per-tensor loop (torch's default; antifit's before it went fused)
    looped = load_classifier(None, labels).model
    looped_step, _ = transformers_step(looped, inputs, y, device, fused=False)

    steps: dict[str, Callable[[], None]] = {
        "plain fine-tuning (peer)": plain_step,
        "plain, AdamW loop, not fused": looped_step,
    }
    for name, reg in ARMS.items():
        stepper = Stepper(
            load_classifier(None, labels, reg.dropout),
            reg,
            learning_rate=2e-5,
            total_steps=10_000,
            grad_clip=None,
            device=device,
        )
        if reg.domain_adversarial.enabled:
            steps[name] = lambda s=stepper: s.step(inputs_with_aux, y, n_aux=n)
        elif reg.augmented:
            steps[name] = lambda s=stepper: s.step(grouped, y3, ids=ids * 3, sources=sources)
        else:
            steps[name] = lambda s=stepper: s.step(inputs, y, ids=ids)

    print(
        f"MiniLM-L6, batch {args.batch_size}, length {args.length}, {device}, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds x {args.steps} steps"
    )
    report(time_rounds(steps, args.rounds, args.steps, device), "plain fine-tuning (peer)")


def time_rounds(
    steps: dict[str, Callable[[], None]], rounds: int, per_round: int, device: torch.device
) -> dict[str, list[float]]:
    """Each arm's median step time per round, the arms alternating within each round."""
    times: dict[str, list[list[float]]] = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        step()
        step()
    for _ in range(rounds):
        for name, step in steps.items():
            times[name].append([])
            for _ in range(per_round):
                times[name][-1].append(timed(step, device))
    return {name: [statistics.median(r) for r in values] for name, values in times.items()}


def timed(step: Callable[[], None], device: torch.device) -> float:
    """Seconds one step takes (a CUDA step is waited for: kernels run asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def report(
    rounds: dict[str, list[float]], peer_name: str, extra: dict[str, str] | None = None
) -> None:
    """Ratios paired by round (drift on a shared machine cancels)."""
    peer = rounds[peer_name]
    print(f"{'arm':32s} {'median ms/step':>15s} {'vs plain':>9s} {'range over rounds':>18s}")
    for name, values in rounds.items():
        ratios = [a / b for a, b in zip(values, peer, strict=True)]
        print(
            f"{name:32s} {1000 * statistics.median(values):15.1f} "
            f"{statistics.median(ratios):8.2f}x {min(ratios):8.2f}-{max(ratios):.2f}x"
            + (f"  {extra[name]}" if extra and name in extra else "")
        )


def transformers_step(
    model: Any,
    batch: dict[str, torch.Tensor],
    labels: torch.Tensor,
    device: torch.device,
    fused: bool = True,
) -> tuple[Callable[[], None], torch.optim.Optimizer]:
    """The peer: transformers' own loss (``labels=``) and an AdamW step with the fused kernel
    (the Trainer's default optimizer, ``adamw_torch_fused``), or with ``fused`` off AdamW's
    per-tensor loop."""
    model.to(device).train()
    kernel = {"fused": True} if fused else {"foreach": True}
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, **kernel)

    def step() -> None:
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, optimizer


def random_llama(args: argparse.Namespace) -> Path:
    """A random-init Llama of the asked shape with MiniLM's tokenizer, saved to a temp folder."""
    import tempfile

    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(tempfile.mkdtemp(prefix="bench-llama-"))
    minilm = load_classifier(None, [0, 1])
    minilm.tokenizer.eos_token = minilm.tokenizer.sep_token  # BERT's has no end-of-text
    minilm.tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(minilm.tokenizer),
        hidden_size=args.hidden,
        intermediate_size=args.hidden * 8 // 3,
        num_hidden_layers=args.layers,
        num_attention_heads=max(1, args.hidden // 64),
        num_key_value_heads=max(1, args.hidden // 256),
        max_position_embeddings=512,
        pad_token_id=minilm.tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(folder)  # random weights: timing needs no others
    return folder


def generation_arms(args: argparse.Namespace, device: torch.device) -> None:
    from trainer.config import Lora, NEFTune
    from trainer.generation import load_generator
    from trainer.lora import apply_lora

    folder = random_llama(args)
    n = args.batch_size
    prompts = texts(n, 0)
    items = [
        {"id": str(i), "text": prompt, "label": {"response": response}}
        for i, (prompt, response) in enumerate(zip(prompts, texts(n, n), strict=True))
    ]
    peer = load_generator(folder)
    inputs, labels = peer.encode(items, args.length)
    batch = {k: v.to(device) for k, v in inputs.items()}
    labels = labels.to(device)
    peer_step, _ = transformers_step(peer.model, batch, labels, device)
    steps: dict[str, Callable[[], None]] = {"SFT, transformers step (peer)": peer_step}
    arms = {
        "SFT, antifit": (Regularization(), False),
        "SFT, label smoothing 0.1": (Regularization(label_smoothing=0.1), False),
        "SFT, NEFTune alpha 5": (Regularization(neftune=NEFTune(enabled=True)), False),
        "SFT, R3F (token-level KL)": (Regularization(r3f=R3FSettings(enabled=True)), False),
        "SFT, LoRA r=8": (Regularization(), True),
    }
    for name, (reg, lora) in arms.items():
        gen = load_generator(folder)
        if lora:
            gen.model = apply_lora(gen.model, Lora(enabled=True, rank=8), generation=True)
        stepper = Stepper(
            gen, reg, learning_rate=2e-5, total_steps=10_000, grad_clip=None, device=device
        )
        steps[name] = lambda s=stepper: s.step(batch, labels)
    response_tokens = int((labels != -100).sum())
    print(
        f"random Llama causal LM, {args.layers} layers, hidden {args.hidden}, batch {n}, "
        f"{batch['input_ids'].shape[1]} tokens per row ({response_tokens} response tokens in "
        f"the batch), {device}, {torch.get_num_threads()} threads, "
        f"{args.rounds} rounds x {args.steps} steps"
    )
    report(time_rounds(steps, args.rounds, args.steps, device), "SFT, transformers step (peer)")


def decoder_arms(args: argparse.Namespace, device: torch.device) -> None:
    from trainer.config import Lora
    from trainer.lora import apply_lora

    labels = [0, 1, 2]
    folder = random_llama(args)
    n = args.batch_size
    texts_n = texts(n, 0)
    y = torch.tensor([i % 3 for i in range(n)], device=device)

    def classifier() -> Any:
        return load_classifier(folder, labels)

    peer = classifier()
    batch = {k: v.to(device) for k, v in peer.encode(texts_n, args.length).items()}
    peer_model = peer.model
    peer_step, peer_opt = transformers_step(peer_model, batch, y, device)
    steps: dict[str, Callable[[], None]] = {"Llama, plain step (peer)": peer_step}
    optimizers: dict[str, Any] = {"Llama, plain step (peer)": peer_opt}
    trainable: dict[str, int] = {
        "Llama, plain step (peer)": sum(p.numel() for p in peer_model.parameters())
    }
    for name, lora, checkpointing in (
        ("Llama, antifit full", False, False),
        ("Llama, antifit LoRA r=8", True, False),
        ("Llama, LoRA r=8 + grad. ckpt.", True, True),
    ):
        clf = classifier()
        if checkpointing:
            enable_checkpointing(clf.model)
        if lora:
            clf.model = apply_lora(clf.model, Lora(enabled=True, rank=8))
            if checkpointing:
                clf.model.enable_input_require_grads()
        stepper = Stepper(
            clf,
            Regularization(),
            learning_rate=2e-5,
            total_steps=10_000,
            grad_clip=None,
            device=device,
        )
        steps[name] = lambda s=stepper: s.step(batch, y)
        optimizers[name] = stepper.optimizer
        trainable[name] = sum(p.numel() for p in clf.model.parameters() if p.requires_grad)

    rounds = time_rounds(steps, args.rounds, args.steps, device)
    state_mb = {
        name: sum(
            t.numel() * t.element_size()
            for st in opt.state.values()
            for t in st.values()
            if torch.is_tensor(t)
        )
        / 2**20
        for name, opt in optimizers.items()
    }
    total = trainable["Llama, plain step (peer)"]
    print(
        f"random Llama, {args.layers} layers, hidden {args.hidden} ({total / 1e6:.1f}M "
        f"parameters), batch {n}, length {args.length}, {device}, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds x {args.steps} steps"
    )
    report(
        rounds,
        "Llama, plain step (peer)",
        {
            name: f"trainable {trainable[name] / 1e6:.2f}M, optimizer state {state_mb[name]:.1f} MB"
            for name in steps
        },
    )


if __name__ == "__main__":
    main()
