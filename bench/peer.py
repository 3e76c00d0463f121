"""The peer users would otherwise run: the Hugging Face ``Trainer`` on the same records, model
and settings, in one of two recipes.

- ``plain``: plain fine-tuning — no weight decay, no label smoothing, no early stopping; the
  last weights are the model.
- ``hf``: the Trainer's standard regularized recipe — weight decay 0.01, label smoothing 0.1,
  an evaluation and a checkpoint per epoch, ``EarlyStoppingCallback(patience=3)`` on the
  validation loss and ``load_best_model_at_end``.

``setfit_library`` runs SetFit itself, the peer of antifit's ``setfit`` preset.

Both recipes: AdamW, linear schedule with 10% warm-up, gradient clipping at 1.0, dynamic
padding — what ``antifit train`` does too. As a script (the whole-run benchmark times it in
its own process, like ``antifit train``)::

    python bench/peer.py --data records.jsonl --recipe hf --out DIR --epochs 8
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

Recipe = Literal["plain", "hf"]


class _Encoded(torch.utils.data.Dataset[dict[str, Any]]):
    def __init__(self, tokenizer: Any, records: list[dict[str, Any]], labels: list[str], n: int):
        index = {label: i for i, label in enumerate(labels)}
        self.rows = [
            {**tokenizer(r["text"], truncation=True, max_length=n), "labels": index[r["label"]]}
            for r in records
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def finetune(
    records: list[dict[str, Any]],
    labels: list[str],
    recipe: Recipe,
    out: Path,
    *,
    model: str | None = None,
    epochs: int = 20,
    learning_rate: float = 1e-4,
    batch_size: int = 16,
    max_length: int = 64,
    seed: int = 0,
    evaluate_training: bool = False,
) -> dict[str, Any]:
    """Fine-tune with the Trainer; the model is saved in ``out/model``. With
    ``evaluate_training`` each evaluation scores the training texts too (``eval_train_*``), as
    a Trainer user measuring the train/validation gap would: the work of antifit's default
    gap evaluation. Returns the evaluation log (one row per epoch), the best checkpoint (hf)
    and the wall time."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
    )

    from augmenters.resources import quiet_transformers, sentence_encoder_dir

    quiet_transformers()
    started = time.monotonic()
    directory = model or str(sentence_encoder_dir())
    tokenizer = AutoTokenizer.from_pretrained(directory)

    def new_model() -> Any:  # built by the Trainer after it seeds: the head's draw is the seed's
        return AutoModelForSequenceClassification.from_pretrained(
            directory,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
        )

    train = _Encoded(tokenizer, [r for r in records if r["split"] == "train"], labels, max_length)
    val = _Encoded(
        tokenizer, [r for r in records if r["split"] == "validation"], labels, max_length
    )
    regularized = recipe == "hf"
    # named evaluation sets make the Trainer prefix each one's metrics with its name
    evaluated: Any = {"validation": val, "train": train} if evaluate_training else val
    validation_loss = "eval_validation_loss" if evaluate_training else "eval_loss"
    args = TrainingArguments(
        output_dir=str(out / "trainer"),
        num_train_epochs=epochs,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        warmup_steps=0.1,
        weight_decay=0.01 if regularized else 0.0,
        label_smoothing_factor=0.1 if regularized else 0.0,
        eval_strategy="epoch",
        save_strategy="epoch" if regularized else "no",
        save_total_limit=1 if regularized else None,
        load_best_model_at_end=regularized,
        metric_for_best_model=validation_loss if regularized else None,
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=seed,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = Trainer(
        model_init=new_model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluated,
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[EarlyStoppingCallback(early_stopping_patience=3)] if regularized else [],
    )
    trainer.train()
    trainer.save_model(str(out / "model"))
    tokenizer.save_pretrained(out / "model")
    log = [row for row in trainer.state.log_history if validation_loss in row]
    return {
        "evaluations": log,
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "epochs_run": trainer.state.epoch,
        "steps": trainer.state.global_step,
        "seconds": time.monotonic() - started,
    }


def setfit_library(
    records: list[dict[str, Any]],
    labels: list[str],
    out: Path,
    *,
    model: str | None = None,
    max_length: int = 64,
    seed: int = 0,
) -> Callable[[list[str]], torch.Tensor]:
    """SetFit itself (PyPI ``setfit``, the ``bench`` extra) as its users run it: the packaged
    sentence encoder through ``SetFitModel.from_pretrained``, its ``Trainer`` with the default
    ``TrainingArguments`` (contrastive pairs by oversampling, one epoch, batch 16, body learning
    rate 2e-5, then logistic regression), seeded, its checkpoints in ``out``. It trains on the
    training split only. Returns a function giving texts' log-probabilities (what scoring
    takes as logits)."""
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from augmenters.resources import quiet_transformers, sentence_encoder_dir

    quiet_transformers()
    index = {label: i for i, label in enumerate(labels)}  # its head's classes: these ids
    train = [
        {"text": r["text"], "label": index[r["label"]]} for r in records if r["split"] == "train"
    ]
    net = SetFitModel.from_pretrained(model or str(sentence_encoder_dir()))
    args = TrainingArguments(
        output_dir=str(out),
        seed=seed,
        max_length=max_length,
        report_to="none",
        show_progress_bar=False,
    )
    trainer = Trainer(model=net, args=args, train_dataset=Dataset.from_list(train))
    trainer.train()

    def log_probabilities(texts: list[str]) -> torch.Tensor:
        probabilities = torch.as_tensor(net.predict_proba(texts), dtype=torch.float32)
        return probabilities.clamp_min(1e-12).log()

    return log_probabilities


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="JSONL: id, text, label, split")
    parser.add_argument("--recipe", choices=["plain", "hf"], required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--evaluate-training", action="store_true", help="evaluate the training texts too"
    )
    args = parser.parse_args()
    records = [json.loads(line) for line in args.data.read_text().splitlines() if line]
    labels = sorted({r["label"] for r in records}, key=json.dumps)
    result = finetune(
        records,
        labels,
        args.recipe,
        args.out,
        model=args.model,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        evaluate_training=args.evaluate_training,
    )
    print(json.dumps({k: v for k, v in result.items() if k != "evaluations"}))


if __name__ == "__main__":
    main()
