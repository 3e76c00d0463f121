"""Step time of each regularizer against plain fine-tuning, in one run.

The peer is a plain transformers step (``model(**batch, labels=...).loss.backward()``, AdamW,
``zero_grad``) on the packaged all-MiniLM-L6-v2; every other arm is antifit's ``Stepper`` (the
code ``antifit train`` runs) with one regularizer on. Batch 16, length 64 (padded to exactly 64),
CPU unless CUDA is present. Arms alternate within each round; the ratio is the median over
rounds of (the arm's median step time / plain's) in that round.

    .venv/bin/python bench/train_step.py --rounds 7 --steps 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trainer.config import (  # noqa: E402
    R3F,
    Averaging,
    Consistency,
    DomainAdversarial,
    Mixout,
    RDrop,
    Regularization,
    RobustLoss,
    Smart,
    WeightDecay,
    preset,
)
from trainer.model import load_classifier  # noqa: E402
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
    "R3F": Regularization(r3f=R3F(enabled=True)),
    "SMART K=1": Regularization(smart=Smart(enabled=True, steps=1, teacher=False)),
    "SMART K=1 + teacher": Regularization(smart=Smart(enabled=True, steps=1, teacher=True)),
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
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

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

    model = plain.model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)

    def plain_step() -> None:
        loss = model(**inputs, labels=y).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    steps: dict[str, Callable[[], None]] = {"plain fine-tuning (peer)": plain_step}
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

    times: dict[str, list[list[float]]] = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        step()
        step()
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name].append([])
            for _ in range(args.steps):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                step()
                if device.type == "cuda":
                    torch.cuda.synchronize()
                times[name][-1].append(time.perf_counter() - start)

    # each round's median per arm; ratios paired by round (drift on a shared machine cancels)
    rounds = {name: [statistics.median(r) for r in values] for name, values in times.items()}
    peer = rounds["plain fine-tuning (peer)"]
    print(
        f"MiniLM-L6, batch {args.batch_size}, length {args.length}, {device}, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds x {args.steps} steps"
    )
    print(f"{'arm':32s} {'median ms/step':>15s} {'vs plain':>9s} {'range over rounds':>18s}")
    for name, values in rounds.items():
        ratios = [a / b for a, b in zip(values, peer, strict=True)]
        print(
            f"{name:32s} {1000 * statistics.median(values):15.1f} "
            f"{statistics.median(ratios):8.2f}x {min(ratios):8.2f}-{max(ratios):.2f}x"
        )


if __name__ == "__main__":
    main()
