"""Which representation should the classifier read: the first token ([CLS], what
``AutoModelForSequenceClassification`` and antifit's encoders use) or the mean of the tokens
(the pooling all-MiniLM-L6-v2 was trained with as a sentence encoder)?

Two measurements on the splits of bench/efficacy.py (same ``make_split``, 16 training texts a
class, 150 test texts a class):

- ``--mode frozen``: logistic regression (scikit-learn, C=1 and C=10) on the frozen encoder's
  mean-pooled, [CLS] and pooler outputs — how good each representation is before training;
- ``--mode finetune --pooling mean|cls``: plain fine-tuning of the encoder with a linear head on
  that representation, the same loop for both (AdamW 5e-5, linear decay without warm-up,
  dropout 0.1 before the head, batch 16, 20 epochs, max length 64, the last weights), scored by
  test accuracy;
- ``--mode setfit``: SetFit's recipe on the mean-pooled embeddings (``setfit()`` says how);
  ``--mode setfit-finetune``: its contrastive stage, then plain fine-tuning on [CLS].

    .venv/bin/python bench/pooling.py --dataset wordnet --first-seed 40 --seeds 5 --mode frozen
    .venv/bin/python bench/pooling.py --dataset wordnet --first-seed 40 --seeds 5 --pooling mean
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from antifit.corpora import SOURCES, make_split  # noqa: E402
from augmenters.resources import sentence_encoder_dir  # noqa: E402
from trainer.pooled import mean_pool  # noqa: E402


def pooled(output: Any, batch: dict[str, torch.Tensor], pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return output.last_hidden_state[:, 0]  # type: ignore[no-any-return]
    return mean_pool(output.last_hidden_state, batch["attention_mask"])


def frozen(encoder: Any, tokenizer: Any, train: list[Any], test: list[Any]) -> dict[str, float]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    @torch.no_grad()
    def features(items: list[Any]) -> dict[str, Any]:
        parts: dict[str, list[torch.Tensor]] = {"mean": [], "cls": [], "pooler": []}
        for i in range(0, len(items), 64):
            batch = tokenizer(
                [x["text"] for x in items[i : i + 64]],
                padding=True,
                truncation=True,
                max_length=64,
                return_tensors="pt",
            )
            out = encoder(**batch)
            parts["mean"].append(torch.nn.functional.normalize(pooled(out, batch, "mean"), dim=-1))
            parts["cls"].append(pooled(out, batch, "cls"))
            parts["pooler"].append(out.pooler_output)
        return {k: torch.cat(v).numpy() for k, v in parts.items()}

    x_train, x_test = features(train), features(test)
    y_train, y_test = [x["label"] for x in train], np.array([x["label"] for x in test])
    scores = {}
    for kind in x_train:
        for c in (1.0, 10.0):
            model = LogisticRegression(C=c, max_iter=2000).fit(x_train[kind], y_train)
            scores[f"{kind} C={c:g}"] = float((model.predict(x_test[kind]) == y_test).mean())
    return scores


def finetune(
    directory: Path,
    tokenizer: Any,
    train: list[Any],
    test: list[Any],
    pooling: str,
    seed: int,
    encoder: Any = None,
) -> float:
    """Plain fine-tuning of ``encoder`` (default: the packaged one) with a new head."""
    from transformers import AutoModel, get_linear_schedule_with_warmup

    labels = sorted({x["label"] for x in train + test})
    with torch.random.fork_rng():  # the head's initialisation and dropout, from the seed
        torch.manual_seed(seed)
        encoder = encoder or AutoModel.from_pretrained(directory)
        head = torch.nn.Linear(encoder.config.hidden_size, len(labels))
        dropout = torch.nn.Dropout(0.1)
        optimizer = torch.optim.AdamW(
            [*encoder.parameters(), *head.parameters()], lr=5e-5, weight_decay=0.0
        )
        epochs, size = 20, 16
        schedule = get_linear_schedule_with_warmup(optimizer, 0, epochs * -(-len(train) // size))
        order_rng = random.Random(seed)
        targets = torch.tensor([labels.index(x["label"]) for x in train])
        for _ in range(epochs):
            encoder.train()
            order = list(range(len(train)))
            order_rng.shuffle(order)
            for i in range(0, len(order), size):
                rows = order[i : i + size]
                batch = tokenizer(
                    [train[j]["text"] for j in rows],
                    padding=True,
                    truncation=True,
                    max_length=64,
                    return_tensors="pt",
                )
                logits = head(dropout(pooled(encoder(**batch), batch, pooling)))
                loss = torch.nn.functional.cross_entropy(logits, targets[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        encoder.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(test), 64):
                items = test[i : i + 64]
                batch = tokenizer(
                    [x["text"] for x in items],
                    padding=True,
                    truncation=True,
                    max_length=64,
                    return_tensors="pt",
                )
                predicted = head(pooled(encoder(**batch), batch, pooling)).argmax(-1).tolist()
                correct += sum(
                    labels[p] == x["label"] for p, x in zip(predicted, items, strict=True)
                )
    return correct / len(test)


def setfit(
    directory: Path,
    tokenizer: Any,
    train: list[Any],
    test: list[Any],
    seed: int,
    iterations: int = 20,
    then_finetune: bool = False,
) -> float:
    """SetFit (Tunstall et al. 2022): contrastive fine-tuning of the mean-pooled sentence
    embeddings on pairs of training texts (per iteration and text, one pair with a text of its
    class, target cosine 1, and one with a text of another, target 0; one epoch, batch 16,
    learning rate 2e-5, 10% warm-up), then logistic regression on the tuned embeddings — or,
    ``then_finetune``, plain fine-tuning of the tuned encoder with a head on [CLS], as a
    transformers classifier is built."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModel, get_linear_schedule_with_warmup

    rng = random.Random(seed)
    by_label: dict[str, list[str]] = {}
    for x in train:
        by_label.setdefault(x["label"], []).append(x["text"])
    pairs: list[tuple[str, str, float]] = []
    for _ in range(iterations):
        for x in train:
            others = [t for label, texts in by_label.items() if label != x["label"] for t in texts]
            pairs.append((x["text"], rng.choice(by_label[x["label"]]), 1.0))
            pairs.append((x["text"], rng.choice(others), 0.0))
    rng.shuffle(pairs)

    def encode(encoder: Any, texts: list[str]) -> torch.Tensor:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        return pooled(encoder(**batch), batch, "mean")

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        encoder = AutoModel.from_pretrained(directory)
        optimizer = torch.optim.AdamW(encoder.parameters(), lr=2e-5)
        size = 16
        steps = -(-len(pairs) // size)
        schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
        encoder.train()
        for i in range(0, len(pairs), size):
            chunk = pairs[i : i + size]
            a = encode(encoder, [p[0] for p in chunk])
            b = encode(encoder, [p[1] for p in chunk])
            target = torch.tensor([p[2] for p in chunk])
            loss = torch.nn.functional.mse_loss(torch.cosine_similarity(a, b), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        if then_finetune:
            return finetune(directory, tokenizer, train, test, "cls", seed, encoder)
        encoder.eval()
        with torch.no_grad():
            x_train = torch.cat(
                [
                    encode(encoder, [x["text"] for x in train[i : i + 64]])
                    for i in range(0, len(train), 64)
                ]
            ).numpy()
            x_test = torch.cat(
                [
                    encode(encoder, [x["text"] for x in test[i : i + 64]])
                    for i in range(0, len(test), 64)
                ]
            ).numpy()
    head = LogisticRegression(max_iter=2000).fit(x_train, [x["label"] for x in train])
    return float((head.predict(x_test) == np.array([x["label"] for x in test])).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=list(SOURCES), default="wordnet")
    parser.add_argument("--noise", type=float, default=0.0)
    parser.add_argument("--first-seed", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--mode", choices=("frozen", "finetune", "setfit", "setfit-finetune"), default="finetune"
    )
    parser.add_argument("--pooling", choices=("mean", "cls"), default="mean")
    parser.add_argument(
        "--run", type=int, default=0, help="training seed = split + 1000 * RUN, as efficacy's runs"
    )
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / ".cache")
    args = parser.parse_args()

    from transformers import AutoModel, AutoTokenizer

    directory = sentence_encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(directory)
    texts = SOURCES[args.dataset](args.cache)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        split = make_split(texts, seed, 16, 16, 150, args.noise)
        train, test = split.of("train"), split.of("test")
        train_seed = seed + 1000 * args.run
        started = time.monotonic()
        if args.mode == "frozen":
            encoder = AutoModel.from_pretrained(directory).eval()
            result = " ".join(
                f"{k} {v:.3f}" for k, v in frozen(encoder, tokenizer, train, test).items()
            )
        elif args.mode.startswith("setfit"):
            tuned = args.mode == "setfit-finetune"
            accuracy = setfit(directory, tokenizer, train, test, train_seed, then_finetune=tuned)
            result = f"{args.mode} {accuracy:.3f}"
        else:
            accuracy = finetune(directory, tokenizer, train, test, args.pooling, train_seed)
            result = f"{args.pooling} fine-tuned {accuracy:.3f}"
        seconds = time.monotonic() - started
        print(f"{args.dataset} split {seed}/{train_seed}: {result} ({seconds:.0f}s)")


if __name__ == "__main__":
    main()
