"""The training loop: streamed batches in, regularized AdamW steps, evaluations on fixed sets,
early stopping, checkpoints that resume exactly, and the run's outputs.

Randomness (dropout, Mixout masks, SMART/R3F noise) comes from torch's global generator inside
``torch.random.fork_rng``, seeded from the run's seed and rank: the caller's generator state is
left as it was, and checkpoints carry the generator state so a resumed run draws what the
uninterrupted one would have. Batch order is the service's, a function of (seed, epoch).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from trainer import checkpoint
from trainer.config import TrainConfig
from trainer.metrics import Bin, evaluate, reliability
from trainer.model import load_classifier
from trainer.module import Inputs
from trainer.regularizers.early_stopping import EarlyStopping
from trainer.report import (
    append_jsonl,
    plot_learning_curve,
    read_jsonl,
    truncate_jsonl,
    write_json,
)
from trainer.service import Service
from trainer.step import Stepper
from trainer.stream import Batch, StreamDataset

METRICS = "metrics.jsonl"
REPORT = "report.json"
CURVE = "learning_curve.png"
MODEL = "model"


class TrainingError(RuntimeError):
    pass


def train(
    config: TrainConfig,
    *,
    progress: bool = True,
    restart: bool = False,
    on_log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a training run; returns its report. Under torchrun the process group
    is set up here (gloo on CPU, NCCL on GPU) and each rank streams its own share."""
    started_group = init_distributed(config)
    try:
        with run_generator(config.seed):
            return Training(config, progress=progress, restart=restart, on_log=on_log).run()
    finally:
        if started_group:
            dist.destroy_process_group()


@contextmanager
def run_generator(seed: int) -> Iterator[None]:
    """torch's global generator seeded from (seed, rank) inside ``fork_rng``: the caller's
    generator state is back as it was afterwards."""
    rank = dist.get_rank() if dist.is_initialized() else 0
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed * 1_000_003 + rank)
        yield


def init_distributed(config: TrainConfig) -> bool:
    """Set up the process group under torchrun; True when this call started it."""
    if dist.is_initialized() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    cuda = config.device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    return True


class Training:
    def __init__(
        self,
        config: TrainConfig,
        *,
        progress: bool = True,
        restart: bool = False,
        on_log: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.reg = config.regularization
        self.distributed = dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.device = self._device()
        self.bf16 = (
            config.bf16
            if config.bf16 is not None
            else self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        )
        self.progress = progress and self.rank == 0
        self.log = on_log or (lambda message: None)
        self.out = Path(config.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        if restart and self.rank == 0:
            checkpoint.remove(self.out)
        self._barrier()

        self.service = Service(config.service, config.api_key)
        self.summary = self.service.dataset(config.dataset)
        self.labels = self.service.labels(self.summary)
        self.job = self._job()
        self.validation = self.service.originals(config.dataset, "validation")
        self.train_subset = self.service.originals(
            config.dataset, "train", limit=config.train_eval_size, seed=config.seed
        )

        self.classifier = load_classifier(config.model, self.labels, self.reg.dropout)
        self.total_steps = self._total_steps()
        self.stepper = Stepper(
            self.classifier,
            self.reg,
            learning_rate=config.learning_rate,
            total_steps=self.total_steps,
            warmup_steps=int(self.total_steps * config.warmup_ratio),
            grad_clip=config.grad_clip,
            device=self.device,
            bf16=self.bf16,
            distributed=self.distributed,
        )
        es = self.reg.early_stopping
        self.stopper = EarlyStopping(es.metric, es.direction, es.patience, es.min_delta)

        self.stream = self._stream(config.dataset, self.job)
        auxiliary = self.reg.domain_adversarial.auxiliary_dataset
        self.aux_stream = (
            self._stream(auxiliary, None)
            if self.reg.domain_adversarial.enabled and auxiliary
            else None
        )
        self._aux_iter: Iterator[Batch] | None = None

        self.step = 0
        self.epoch = 0
        self.objective_sum = 0.0  # training objective since the last evaluation
        self.objective_count = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.last_eval_step = -1
        self.resumed_from: int | None = None
        self.stop_reason: str | None = None

    # ----------------------------------------------------------------------------- set-up

    def _device(self) -> torch.device:
        if self.config.device == "cuda" and not torch.cuda.is_available():
            raise TrainingError("device 'cuda' was asked for but CUDA is not available")
        if self.config.device != "cpu" and torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _job(self) -> str | None:
        if not self.reg.augmented:
            if self.config.job:
                self.log("regularization.augmented is off: training on originals only")
            return None
        if self.config.job:
            return self.config.job
        self.log("starting (or joining) the augmentation job over the training split")
        return self.service.ensure_job(
            self.config.dataset,
            self.config.augment,
            self.config.seed,
            self.config.n_variants,
            on_progress=lambda job: self.log(
                f"augmentation job {job['id']}: {job['state']} "
                f"{job['records_done']}/{job['records_total']}"
            ),
        )

    def _stream(self, dataset: str, job: str | None) -> StreamDataset:
        return StreamDataset(
            self.config.service,
            dataset,
            job=job,
            split="train",
            originals=True,
            batch_size=self.config.batch_size,
            seed=self.config.seed,
            rank=self.rank,
            world_size=self.world,
            api_key=self.config.api_key,
        )

    def _total_steps(self) -> int:
        if self.config.max_steps:
            return self.config.max_steps
        examples = int(self.summary["splits"].get("train", 0))
        if self.job:
            examples += int(self.service.job(self.job).get("variants_written") or 0)
        per_rank = math.ceil(examples / self.world)
        return max(1, self.config.epochs * math.ceil(per_rank / self.config.batch_size))

    # ----------------------------------------------------------------------------- the loop

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        resumed_mid_epoch = self._resume()
        stop_reason = self.stop_reason  # set when the checkpoint is of a finished run
        bar = _progress_bar(self.progress, self.total_steps, self.step)
        try:
            while stop_reason is None and self.epoch < self.config.epochs:
                if not resumed_mid_epoch:
                    self.stream.set_epoch(self.epoch)
                resumed_mid_epoch = False
                stop_reason = self._epoch(bar)
                if stop_reason is None:
                    self.epoch += 1
                    if self.config.eval_every is None and self._evaluate():
                        stop_reason = "early_stopping"
                    else:
                        self._checkpoint()
        finally:
            bar.close()
        if self.stop_reason is None:
            if self.last_eval_step != self.step:
                self._evaluate()
            self.stop_reason = stop_reason or "epochs"
            self._checkpoint()
        return self._finish(self.stop_reason, time.monotonic() - started)

    def _epoch(self, bar: Any) -> str | None:
        batches = iter(self.stream)
        try:
            while True:
                batch = next(batches, None)
                if not self._everyone(batch is not None) or batch is None:
                    return None
                objective = self._train_step(batch)
                self.step += 1
                bar.update(1)
                bar.set_postfix(epoch=self.epoch + 1, loss=f"{objective:.4f}")
                if self.config.eval_every and self.step % self.config.eval_every == 0:
                    if self._evaluate():
                        return "early_stopping"
                elif self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                    self._checkpoint()
                if self.config.max_steps and self.step >= self.config.max_steps:
                    return "max_steps"
        finally:
            close = getattr(batches, "close", None)
            if close:
                close()

    def _encode(self, texts: list[str]) -> Inputs:
        encoded = self.classifier.encode(texts, self.config.max_length)
        return {k: v.to(self.device) for k, v in encoded.items()}

    def _labels(self, batch: Batch) -> torch.Tensor:
        return self.classifier.label_ids(batch).to(self.device)

    def _aux_batch(self) -> Batch:
        """The auxiliary domain's next batch; its stream cycles through epochs."""
        if self.aux_stream is None:
            raise TrainingError("no auxiliary dataset to stream")
        while True:
            if self._aux_iter is None:
                self._aux_iter = iter(self.aux_stream)
            batch = next(self._aux_iter, None)
            if batch is not None:
                return batch
            self._aux_iter = None
            self.aux_stream.set_epoch(self.aux_stream.epoch + 1)

    def _train_step(self, batch: Batch) -> float:
        if self.config.trace_ids:
            append_jsonl(
                self.out / f"batches.rank{self.rank}.jsonl",
                {
                    "step": self.step + 1,
                    "epoch": self.epoch,
                    "ids": [[item["id"], item.get("variant")] for item in batch],
                },
            )
        aux = self._aux_batch() if self.aux_stream is not None else []
        inputs = self._encode([item["text"] for item in batch + aux])
        objective = self.stepper.step(inputs, self._labels(batch), n_aux=len(aux))
        self.objective_sum += objective
        self.objective_count += 1
        return objective

    # ------------------------------------------------------------------------- evaluation

    def _predict(self, items: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.eval_batch_size
        logits = [
            self.stepper.predict(self._encode([item["text"] for item in items[i : i + size]]))
            for i in range(0, len(items), size)
        ]
        return torch.cat(logits).cpu(), self._labels(items).cpu()

    def _evaluate(self) -> bool:
        """Evaluate, log a metrics row, track the best weights, checkpoint; True to stop."""
        train = evaluate(*self._predict(self.train_subset))
        val = evaluate(*self._predict(self.validation))
        row: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch,
            "lr": self.stepper.scheduler.get_last_lr()[0],
            "train_objective": self.objective_sum / self.objective_count
            if self.objective_count
            else None,
            **train.as_dict("train"),
            **val.as_dict("val"),
            "gap_loss": val.loss - train.loss,
            "gap_accuracy": train.accuracy - val.accuracy,
        }
        if self.stepper.l2sp is not None:
            row["l2sp_distance"] = self.stepper.l2sp.distance()
        self.objective_sum, self.objective_count = 0.0, 0
        self.last_eval_step = self.step
        if self.stopper.update(float(row[self.stopper.metric]), self.step):
            weights = self.stepper.module.state_dict().items()
            self.best_state = {k: v.detach().cpu().clone() for k, v in weights}
        row["best_step"] = self.stopper.best_step
        if self.rank == 0:
            append_jsonl(self.out / METRICS, row)
        self.log(
            f"step {self.step} epoch {self.epoch}: val_loss {val.loss:.4f} "
            f"val_accuracy {val.accuracy:.3f} gap_loss {row['gap_loss']:.4f}"
        )
        stop = self.reg.early_stopping.enabled and self.stopper.stopped
        stop = self._anyone(stop)
        self._checkpoint()
        return stop

    # ------------------------------------------------------------------------ checkpoints

    def _rank_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "stream": self.stream.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
        }
        if self.aux_stream is not None:
            state["aux_stream"] = self.aux_stream.state_dict()
        return state

    def _checkpoint(self) -> None:
        ranks = [self._rank_state()]
        if self.distributed:
            gathered: list[Any] = [None] * self.world
            dist.all_gather_object(gathered, ranks[0])
            ranks = gathered
        if self.rank != 0:
            return
        checkpoint.save(
            self.out,
            {
                "config": self.config.model_dump(mode="json"),
                "world_size": self.world,
                "step": self.step,
                "epoch": self.epoch,
                "stepper": self.stepper.state_dict(),
                "early_stopping": self.stopper.state_dict(),
                "best_state": self.best_state,
                "objective": [self.objective_sum, self.objective_count],
                "last_eval_step": self.last_eval_step,
                "job": self.job,
                "stop_reason": self.stop_reason,
                "ranks": ranks,
            },
        )

    def _resume(self) -> bool:
        """Load the checkpoint if there is one; True when it stopped mid-epoch."""
        state = checkpoint.load(self.out)
        if state is None:
            if self.rank == 0:
                for name in (METRICS, REPORT):
                    (self.out / name).unlink(missing_ok=True)
            (self.out / f"batches.rank{self.rank}.jsonl").unlink(missing_ok=True)
            self._barrier()
            return False
        saved = TrainConfig.model_validate(state["config"])
        if _comparable(saved) != _comparable(self.config):
            raise TrainingError(
                f"{self.out} holds a checkpoint of another configuration: pass --restart to "
                "discard it, or choose another output directory"
            )
        if state["world_size"] != self.world:
            raise TrainingError(
                f"the checkpoint was written by {state['world_size']} ranks; resume with as many"
            )
        self.stepper.load_state_dict(state["stepper"])
        self.stopper.load_state_dict(state["early_stopping"])
        self.best_state = state["best_state"]
        self.objective_sum, self.objective_count = state["objective"]
        self.last_eval_step = state["last_eval_step"]
        self.step, self.epoch = state["step"], state["epoch"]
        self.stop_reason = state["stop_reason"]
        mine = state["ranks"][self.rank]
        self.stream.load_state_dict(mine["stream"])
        if self.aux_stream is not None:
            self.aux_stream.load_state_dict(mine["aux_stream"])
        torch.set_rng_state(mine["rng"])
        if mine["cuda_rng"] is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda_rng"])
        if self.rank == 0:
            truncate_jsonl(self.out / METRICS, self.step)
        trace = self.out / f"batches.rank{self.rank}.jsonl"
        truncate_jsonl(trace, self.step)
        self.resumed_from = self.step
        self.log(f"resumed from step {self.step} (epoch {self.epoch})")
        return mine["stream"]["resume_token"] is not None

    # ---------------------------------------------------------------------------- outputs

    def _finish(self, stop_reason: str, seconds: float) -> dict[str, Any]:
        restored = self.reg.early_stopping.enabled and self.best_state is not None
        if restored and self.best_state is not None:
            self.stepper.module.load_state_dict(self.best_state)
        rows = read_jsonl(self.out / METRICS) if self.rank == 0 else []
        best = next((r for r in rows if r["step"] == self.stopper.best_step), None)
        final = best if restored else (rows[-1] if rows else None)
        report: dict[str, Any] = {
            "config": self.config.model_dump(mode="json"),
            "dataset": self.config.dataset,
            "job": self.job,
            "labels": self.labels,
            "world_size": self.world,
            "device": str(self.device),
            "bf16": self.bf16,
            "steps": self.step,
            "epochs_completed": self.epoch,
            "stop_reason": stop_reason,
            "best": {
                "metric": self.stopper.metric,
                "value": self.stopper.best,
                "step": self.stopper.best_step,
                "epoch": best["epoch"] if best else None,
            },
            "restored_best_weights": restored,
            "final": None
            if final is None
            else {
                key: final[key]
                for key in (
                    "step",
                    "val_loss",
                    "val_accuracy",
                    "val_macro_f1",
                    "val_ece",
                    "val_confidence",
                    "val_calibration",
                    "train_loss",
                    "train_accuracy",
                    "gap_loss",
                    "gap_accuracy",
                )
            },
            # the saved model's reliability diagram on the validation split, and the test
            # split's metrics when the dataset has one
            "calibration": {"bins": [asdict(b) for b in self._reliability()]},
            "test": self._test(),
            "resumed_from_step": self.resumed_from,
            "seconds": seconds,
            "files": {"metrics": METRICS, "learning_curve": CURVE, "model": MODEL},
        }
        if self.rank == 0:
            self.classifier.model.save_pretrained(self.out / MODEL)
            self.classifier.tokenizer.save_pretrained(self.out / MODEL)
            marked = self.stopper.best_step if restored else None
            plot_learning_curve(rows, self.out / CURVE, marked, report["calibration"]["bins"])
            write_json(self.out / REPORT, report)
        self._barrier()
        return report

    def _reliability(self) -> list[Bin]:
        logits, labels = self._predict(self.validation)
        return reliability(torch.softmax(logits, dim=-1), labels)

    def _test(self) -> dict[str, float | str] | None:
        if not self.summary["splits"].get("test"):
            return None
        items = self.service.originals(self.config.dataset, "test")
        return evaluate(*self._predict(items)).as_dict("test")

    # ------------------------------------------------------------------ collective helpers

    def _barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def _everyone(self, flag: bool) -> bool:
        """True when the flag holds on every rank (an epoch ends when any rank runs out, so
        every rank takes the same number of steps)."""
        if not self.distributed:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def _anyone(self, flag: bool) -> bool:
        if not self.distributed:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())


def _comparable(config: TrainConfig) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed: everything but where the service is."""
    return config.model_dump(mode="json", exclude={"service", "api_key"})


def _progress_bar(enabled: bool, total: int, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)
