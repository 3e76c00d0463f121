"""The training loop: streamed batches in, regularized AdamW steps, evaluations on fixed sets,
early stopping, checkpoints that resume exactly, and the run's outputs.

Randomness (dropout, Mixout masks, SMART/R3F noise) comes from torch's global generator inside
``torch.random.fork_rng``, seeded from the run's seed and rank: the caller's generator state is
left as it was, and checkpoints carry the generator state so a resumed run draws what the
uninterrupted one would have. Batch order is the service's, a function of (seed, epoch).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from trainer import checkpoint
from trainer.calibration import Scaling, fit_scaling, fit_temperature, fold_scaling, nll
from trainer.config import TrainConfig, direction
from trainer.distributed import Ranks, choose_device, init_distributed, reseed, run_generator
from trainer.ensemble import (
    EnsembleClassifier,
    is_ensemble,
    member_path,
    partner_configs,
    write_manifest,
)
from trainer.evalset import EvalSet
from trainer.generation import GenerationEvalSet, Generator, load_generator
from trainer.label_check import SUSPECTS, check_labels, checked_records
from trainer.lora import apply_lora, load_trainable_state, trainable_state
from trainer.memory import available, check_fits, estimate
from trainer.metrics import evaluate, reliability
from trainer.model import Classifier, enable_checkpointing, load_classifier
from trainer.pooled import MeanPooledClassifier, write_sentence_encoder
from trainer.registry import RunRegistry
from trainer.regularizers.contrastive import BestWeights, tune
from trainer.regularizers.early_stopping import EarlyStopping
from trainer.regularizers.layers import reinit_top_layers
from trainer.regularizers.probe import features, fit_probe, set_head
from trainer.report import (
    append_jsonl,
    final_metrics,
    pick_rows,
    plot_learning_curve,
    read_jsonl,
    truncate_jsonl,
    write_json,
    write_jsonl,
)
from trainer.service import Service
from trainer.soup import average_into, member_configs, member_seed
from trainer.step import Stepper
from trainer.stream import Batch, StreamDataset
from trainer.task_module import Inputs

METRICS = "metrics.jsonl"
REPORT = "report.json"
CURVE = "learning_curve.png"
MODEL = "model"


class TrainingError(RuntimeError):
    pass


class Interrupted(TrainingError):
    """Stopped on request (SIGTERM/SIGINT under ``antifit train``) after a checkpoint."""


def train(
    config: TrainConfig,
    *,
    progress: bool = True,
    restart: bool = False,
    on_log: Callable[[str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Run (or resume) a training run; returns its report. Under torchrun the process group
    is set up here (gloo on CPU, NCCL on GPU) and each rank streams its own share. When
    ``should_stop`` turns true the run checkpoints and raises ``Interrupted``; running it
    again resumes."""
    started_group = init_distributed(config.device)
    options: dict[str, Any] = {
        "progress": progress,
        "restart": restart,
        "on_log": on_log,
        "should_stop": should_stop,
    }
    try:
        others = member_configs(config)
        partners = partner_configs(config)
        registry = _soup_registration(config, restart, on_log) if others or partners else None
        members = []
        partner_reports = []
        with _ended_on_failure(registry):
            for member in others:
                if on_log:
                    on_log(f"soup member {member.member} of {config.regularization.soup.members}")
                with run_generator(member.seed):
                    members.append(Training(member, **options).run())
            for k, partner in enumerate(partners):
                if on_log:
                    which = f" {k + 1} of {len(partners)}" if len(partners) > 1 else ""
                    on_log(f"the ensemble's plain fine-tune{which}")
                with run_generator(partner.seed):
                    partner_reports.append(Training(partner, **options).run())
        with run_generator(config.seed):
            return Training(
                config, soup=members, partners=partner_reports, registry=registry, **options
            ).run()
    finally:
        if started_group:
            dist.destroy_process_group()


@contextmanager
def _ended_on_failure(registry: RunRegistry | None) -> Iterator[None]:
    """A failure ends the registration as failed; an interruption leaves it running (the run
    resumes under it)."""
    try:
        yield
    except Interrupted:
        raise
    except BaseException as exc:
        if registry is not None:
            registry.failed(exc)
        raise


def _soup_registration(
    config: TrainConfig, restart: bool, on_log: Callable[[str], None] | None
) -> RunRegistry | None:
    """A soup (or an ensemble) registers before its other members train, so the service shows
    it from its first step, not from member 0's. Once member 0 has a checkpoint the others are
    done, and the run itself takes up its registration (or, finished, has nothing to
    register)."""
    out = Path(config.output_dir)
    if not config.register_run or Ranks().rank != 0:
        return None
    if not restart and (out / checkpoint.NAME).exists():
        return None
    out.mkdir(parents=True, exist_ok=True)
    log = on_log or (lambda message: None)
    service = Service(config.service, config.api_key)
    return _register(config, service, _job(config, service, log), log, restart)


def _job(config: TrainConfig, service: Service, log: Callable[[str], None]) -> str | None:
    """The augmentation job the run trains on: the configured one, or the one it starts (or
    joins: the request is idempotent, so ranks, resumed runs and soup members share it)."""
    if not config.regularization.augmented:
        if config.job:
            log("regularization.augmented is off: training on originals only")
        return None
    if config.job:
        return config.job
    log("starting (or joining) the augmentation job over the training split")
    return service.ensure_job(
        config.dataset,
        config.augment,
        config.seed,
        config.n_variants,
        target=config.augment_target,
        on_progress=lambda job: log(
            f"augmentation job {job['id']}: {job['state']} "
            f"{job['records_done']}/{job['records_total']}"
        ),
    )


def _register(
    config: TrainConfig,
    service: Service,
    job: str | None,
    log: Callable[[str], None],
    fresh: bool,
) -> RunRegistry | None:
    return RunRegistry.open(
        service,
        Path(config.output_dir),
        config.model_dump(mode="json"),  # the API key is excluded
        config.dataset,
        job,
        log,
        fresh=fresh,
    )


class Training:
    def __init__(
        self,
        config: TrainConfig,
        *,
        progress: bool = True,
        restart: bool = False,
        on_log: Callable[[str], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        soup: list[dict[str, Any]] | None = None,
        partners: list[dict[str, Any]] | None = None,
        registry: RunRegistry | None = None,
    ) -> None:
        self.config = config
        self.soup = soup or []  # the reports of the soup's other members, trained already
        # the reports of the ensemble's plain fine-tunes, trained already
        self.partners = partners or []
        self.reg = config.regularization
        self.ranks = Ranks()
        self.rank, self.world = self.ranks.rank, self.ranks.world
        self.device = self.ranks.device = self._device()
        self.bf16 = (
            config.bf16
            if config.bf16 is not None
            else self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        )
        self.eval_batch_size = config.evaluation_batch(self.device.type)
        self.progress = progress and self.rank == 0
        self.log = on_log or (lambda message: None)
        self.should_stop = should_stop or (lambda: False)
        self.restart = restart
        self.registry = registry  # None: the run registers itself (when it is configured to)
        self.out = Path(config.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            checkpoint.remove_partial(self.out)
            if restart:
                checkpoint.remove(self.out)
        self.ranks.barrier()
        self.writer = checkpoint.Writer(self.out)

        self.service = Service(config.service, config.api_key)
        self.summary = self.service.dataset(config.dataset)
        self.generation = config.task == "generation"
        self.labels = self.service.labels(self.summary, config.task)
        self.job = _job(config, self.service, self.log)
        # consistency training needs each original with its variants in one batch
        self.grouped = self.reg.consistency.enabled and self.job is not None

        self.task_model = self._task_model()
        self.cleaning: dict[str, Any] | None = None  # label cleaning's summary, for the report
        # training records whose label is not trained on (label cleaning's suspects)
        validation = self.service.originals(config.dataset, "validation")
        self.unlabelled = (
            self._clean_labels(validation) if self.reg.label_cleaning.enabled else frozenset()
        )
        self.validation = self._evalset(validation)
        self.train_subset = (
            self._evalset(
                self._labelled(
                    self.service.originals(
                        config.dataset, "train", limit=config.train_eval_size, seed=config.seed
                    )
                )
            )
            if config.train_eval_size
            else None
        )
        self._prepare_model()
        if config.member:  # a soup member: the same start, its own dropout masks from here
            reseed(member_seed(config.seed, config.member))
        self.steps_per_epoch = self._steps_per_epoch()
        # few-sample fine-tuning needs enough steps (Zhang et al. 2021): more epochs when the
        # configured ones fall short of min_steps
        self.epochs = max(config.epochs, math.ceil(self.reg.min_steps / self.steps_per_epoch))
        if self.reg.linear_probe.enabled and not self.reg.linear_probe.fine_tune:
            self.epochs = 0  # the probe is what ships
        planned = config.max_steps or self.epochs * self.steps_per_epoch
        self.total_steps = planned if self.epochs else 0
        self.stepper = Stepper(
            self.task_model,
            self.reg,
            learning_rate=config.learning_rate,
            total_steps=self.total_steps,
            warmup_steps=int(self.total_steps * config.warmup_ratio),
            steps_per_epoch=self.steps_per_epoch,
            grad_clip=config.grad_clip,
            device=self.device,
            bf16=self.bf16,
            distributed=self.ranks.distributed,
        )
        self.stepper.unlabelled = self.unlabelled
        es = self.reg.early_stopping
        self.stopper = EarlyStopping(
            es.metric,
            es.direction,
            es.patience,
            es.min_delta,
            es.tie_break,
            direction(es.tie_break) if es.tie_break else "min",
        )

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
        self.best_logits: torch.Tensor | None = None  # validation logits of the best weights
        self.last_logits: torch.Tensor | None = None  # ... and of the last evaluation
        self.last_eval_step = -1
        self.resumed_from: int | None = None
        # wall time of the run (earlier processes' included) and training throughput
        self.clock = time.monotonic()
        self.elapsed_before = 0.0
        self.examples_since_eval = 0
        self.train_seconds_since_eval = 0.0
        self.last_checkpoint = time.monotonic()

    # ----------------------------------------------------------------------------- set-up

    def _device(self) -> torch.device:
        try:
            return choose_device(self.config.device)
        except ValueError as exc:
            raise TrainingError(str(exc)) from exc

    def _stream(self, dataset: str, job: str | None) -> StreamDataset:
        return StreamDataset(
            self.config.service,
            dataset,
            job=job,
            split="train",
            originals=True,
            batch_size=self.config.batch_size,
            group=self.grouped and dataset == self.config.dataset,
            seed=member_seed(self.config.seed, self.config.member),
            rank=self.rank,
            world_size=self.world,
            api_key=self.config.api_key,
        )

    def _evalset(self, items: Batch) -> EvalSet | GenerationEvalSet:
        size, length = self.eval_batch_size, self.config.max_length
        if isinstance(self.task_model, Generator):
            return GenerationEvalSet.build(self.task_model, items, length, size)
        return EvalSet.build(self.task_model, items, length, size)

    def _prepare_model(self) -> None:
        """Model surgery and stages before the optimizer, averages and anchors see the weights:
        re-initialise the top layers, tune the embeddings contrastively (SetFit), fit the head
        by a linear probe (LP-FT) on the training subset, or on the contrastive stage's
        texts."""
        model = self.task_model.model.to(self.device)
        reinit_top_layers(model, self.reg.reinit_layers)
        probed = self._contrastive_stage() if self.reg.contrastive.enabled else self.train_subset
        if not self.reg.linear_probe.enabled or not isinstance(probed, EvalSet):
            return
        set_head(model, len(self.labels), *self._probe(model, probed))

    def _clean_labels(self, validation: Batch) -> frozenset[str]:
        """Label cleaning (``regularization.label_cleaning``) on the pretrained weights, before
        anything trains: the suspects listed in ``suspect_labels.jsonl``, and those left
        unlabelled (none when the validation check says no). Deterministic, so every rank (and
        a resumed run) finds the same."""
        settings, classifier = self.reg.label_cleaning, self.task_model
        if not isinstance(classifier, Classifier):
            raise TrainingError("label cleaning needs a classifier's labels")
        verdict = check_labels(
            classifier,
            checked_records(self.service, self.config),
            validation,
            settings,
            seed=self.config.seed,
            max_length=self.config.max_length,
            batch_size=self.eval_batch_size,
            device=self.device,
        )
        if self.rank == 0:
            write_jsonl(self.out / SUSPECTS, verdict.rows)
        self.cleaning = verdict.summary()
        self.log(f"label cleaning: {verdict.sentence()}")
        return verdict.unlabelled()

    def _labelled(self, items: Batch) -> Batch:
        """``items`` without label cleaning's suspects."""
        return [item for item in items if str(item["id"]) not in self.unlabelled]

    def _features(self, model: Any, items: EvalSet) -> tuple[torch.Tensor, torch.Tensor]:
        """What the head reads for each of ``items`` (eval mode), and their labels."""
        inputs = [{k: v.to(self.device) for k, v in b.items()} for b, _ in items.batches]
        x = features(model, len(self.labels), inputs, lambda batch: model(**batch))
        positions = torch.cat([p for _, p in items.batches])
        return x, items.labels[positions]

    def _probe(self, model: Any, items: EvalSet) -> tuple[torch.Tensor, torch.Tensor]:
        """The linear probe's (weight, bias) fitted on ``items``."""
        x, y = self._features(model, items)
        return fit_probe(x, y, len(self.labels), self.reg.linear_probe.l2)

    def _contrastive_stage(self) -> EvalSet:
        """SetFit's stage on up to ``max_texts`` training originals; its texts, as an
        evaluation set for the probe. A run that has a checkpoint loads the weights the stage
        left (saved once, when it ran) instead of running it again."""
        settings, classifier = self.reg.contrastive, self.task_model
        if not isinstance(classifier, Classifier) or classifier.pooling != "mean":
            raise TrainingError("the contrastive stage tunes an encoder's mean-pooled embeddings")
        model = classifier.model
        items = self._labelled(
            self.service.originals(
                self.config.dataset, "train", limit=settings.max_texts, seed=self.config.seed
            )
        )
        length = self.config.max_length
        texts = EvalSet.build(classifier, items, length, self.eval_batch_size)
        resumed = (self.out / checkpoint.NAME).exists()
        prepared = checkpoint.load(self.out, checkpoint.PREPARED) if resumed else None
        if prepared is not None:
            load_trainable_state(model, prepared)
        else:

            def embed(batch: list[str]) -> torch.Tensor:
                inputs = classifier.encode(batch, length)
                pooled: torch.Tensor = model.embeddings(
                    **{k: v.to(self.device) for k, v in inputs.items()}
                )
                return pooled

            best = BestWeights(lambda: self._stage_score(model, texts), settings.evaluations)
            best.start(model)
            self.log(f"contrastive stage on {len(items)} training texts")
            model.train()
            steps = tune(
                embed,
                [p for p in model.encoder.parameters() if p.requires_grad],
                [item["text"] for item in items],
                classifier.label_ids(items).tolist(),
                settings,
                self.config.seed,
                on_progress=lambda step, total, loss: best.update(model, step, total),
            )
            kept = best.restore(model)
            self.log(
                f"contrastive stage: {steps} steps"
                + (f", kept the weights of step {kept[0]} (validation {kept[1]})" if kept else "")
            )
            if self.rank == 0:
                checkpoint.save(self.out, trainable_state(model), checkpoint.PREPARED)
            self.ranks.barrier()
        return texts

    def _stage_score(self, model: Any, texts: EvalSet) -> tuple[float, float]:
        """How good the stage's embeddings are now: a probe fitted on its training texts,
        scored on the validation split (accuracy, then minus the loss: higher is better)."""
        if not isinstance(self.validation, EvalSet):
            raise TrainingError("the contrastive stage needs a classifier's validation split")
        weight, bias = self._probe(model, texts)
        x, y = self._features(model, self.validation)
        scores = evaluate(x @ weight.T + bias, y)
        return scores.accuracy, -scores.loss

    def _task_model(self) -> Classifier | Generator:
        """The model as configured (a classifier, or a causal LM for generation): LoRA
        adapters (over a bf16 base when bf16 is on: the frozen weights need no fp32 master
        copy; what is trained stays fp32), gradient checkpointing; checked to fit the device
        before anything runs."""
        config = self.config
        dtype = torch.bfloat16 if config.lora.enabled and self.bf16 else None
        task_model: Classifier | Generator
        if self.generation and config.model is not None:
            task_model = load_generator(config.model, self.reg.dropout, dtype)
        else:
            if config.model is not None and is_ensemble(Path(config.model).expanduser()):
                raise TrainingError(
                    f"{config.model} is an ensemble antifit saved: it predicts; to train on, "
                    "take one of its members (members/0, members/1)"
                )
            try:
                task_model = load_classifier(
                    config.model,
                    self.labels,
                    self.reg.dropout,
                    dtype,
                    config.mean_pooling,
                    config.unit_embeddings,
                )
            except ValueError as exc:  # a decoder asked to mean-pool
                raise TrainingError(str(exc)) from exc
        if config.gradient_checkpointing:
            enable_checkpointing(task_model.model)
        if config.lora.enabled:
            task_model.model = apply_lora(task_model.model, config.lora, self.generation)
            for param in task_model.model.parameters():
                if param.requires_grad:
                    param.data = param.data.float()
            if config.gradient_checkpointing:  # frozen embeddings: let gradients flow through
                task_model.model.enable_input_require_grads()
        if config.compile:  # in place: the state dict's names stay those of the model
            task_model.model.compile()
        reg = self.reg
        rows = config.batch_size * (3 if reg.consistency.enabled else 1)
        rows *= 2 if reg.rdrop.enabled or reg.domain_adversarial.enabled else 1
        need = estimate(task_model.model, rows, config.max_length, config.gradient_checkpointing)
        try:
            check_fits(need, self.device, available(self.device))
        except ValueError as exc:
            raise TrainingError(str(exc)) from exc
        return task_model

    def _steps_per_epoch(self) -> int:
        """Batches per epoch and rank: records, or records + variants (a grouped stream
        counts records per batch, each with its variants)."""
        examples = int(self.summary["splits"].get("train", 0))
        if self.job and not self.grouped:
            examples += int(self.service.job(self.job).get("variants_written") or 0)
        per_rank = math.ceil(examples / self.world)
        batches = math.ceil(per_rank / self.config.batch_size)
        return max(1, math.ceil(batches / self.config.grad_accum))

    # ----------------------------------------------------------------------------- the loop

    def run(self) -> dict[str, Any]:
        state = checkpoint.load(self.out)
        if state is not None:
            self._check_resumable(state)
            if state.get("finished"):
                self.log(f"{self.out} holds a finished run: nothing to do")
                report: dict[str, Any] = json.loads((self.out / REPORT).read_text())
                return report
        if self.registry is None and self.config.register_run and self.rank == 0:
            fresh = self.restart or state is None
            self.registry = _register(self.config, self.service, self.job, self.log, fresh)
        with _ended_on_failure(self.registry):
            report = self._run(state)
        if self.registry is not None:
            self.registry.end("succeeded", report)
        return report

    def _run(self, state: dict[str, Any] | None) -> dict[str, Any]:
        resumed_mid_epoch = self._resume(state)
        stop_reason = None
        bar = _progress_bar(self.progress, self.total_steps, self.step)
        try:
            while stop_reason is None and self.epoch < self.epochs:
                if not resumed_mid_epoch:
                    self.stream.set_epoch(self.epoch)
                resumed_mid_epoch = False
                stop_reason = self._epoch(bar)
                if stop_reason is None:
                    self.epoch += 1
                    if self.config.eval_every is None and self._evaluate():
                        stop_reason = "early_stopping"
                    else:
                        self._between_steps()
        finally:
            bar.close()
            self.writer.wait()
        if self.last_eval_step != self.step:
            self._evaluate()
        report = self._finish(stop_reason or "epochs")
        if self.rank == 0:
            # the model and report are written: a finished run's checkpoint needs no state
            # (for a 7B model the optimizer's alone would be tens of gigabytes)
            finished = {"config": self.config.model_dump(mode="json"), "world_size": self.world}
            self.writer.submit({**finished, "finished": True, "step": self.step}, background=False)
        self.ranks.barrier()
        return report

    def _epoch(self, bar: Any) -> str | None:
        """One epoch: a step every ``grad_accum`` batches (the epoch's last step takes what is
        left). Checkpoints fall between steps, so a resumed run never splits one."""
        batches = iter(self.stream)
        try:
            while True:
                group: list[Batch] = []
                more = True
                while more and len(group) < self.config.grad_accum:
                    batch = next(batches, None)
                    more = self.ranks.everyone(batch is not None) and batch is not None
                    if more and batch is not None:
                        group.append(batch)
                if not group:
                    return None
                started = time.monotonic()
                objective = self._train_step(group)
                self.train_seconds_since_eval += time.monotonic() - started
                self.examples_since_eval += sum(len(b) for b in group)
                self.step += 1
                bar.update(1)
                bar.set_postfix(epoch=self.epoch + 1, loss=f"{objective:.4f}")
                if self.config.eval_every and self.step % self.config.eval_every == 0:
                    if self._evaluate():
                        return "early_stopping"
                if self.config.max_steps and self.step >= self.config.max_steps:
                    return "max_steps"
                self._between_steps()
        finally:
            close = getattr(batches, "close", None)
            if close:
                close()

    def _between_steps(self) -> None:
        """Checkpoint when the step or time budget says so; on a stop request, checkpoint now
        and raise ``Interrupted``. Every rank decides alike."""
        every = self.config.checkpoint_every
        minutes = self.config.checkpoint_minutes
        due = bool(every and self.step % every == 0)
        late = minutes is not None and time.monotonic() - self.last_checkpoint >= 60 * minutes
        late, stop = self.ranks.anyone(late, self.should_stop())
        if stop:
            self._checkpoint(background=False)
            raise Interrupted(
                f"stopped at step {self.step} on request; the checkpoint in {self.out} "
                "resumes it: run the same command again"
            )
        if due or late:
            self._checkpoint()

    def _inputs(self, batch: Batch, aux: Batch) -> tuple[Inputs, torch.Tensor]:
        """The model's inputs (the batch's rows, then the auxiliary domain's) and the batch's
        labels: class ids, or a causal LM's response token ids per position."""
        length = self.config.max_length
        if isinstance(self.task_model, Generator):
            encoded, labels = self.task_model.encode(batch, length)
        else:
            encoded = self.task_model.encode([item["text"] for item in batch + aux], length)
            labels = self.task_model.label_ids(batch)
        return {k: v.to(self.device) for k, v in encoded.items()}, labels.to(self.device)

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

    def _train_step(self, group: list[Batch]) -> float:
        """One optimisation step over ``group``'s batches (their gradients accumulated)."""
        objectives = []
        for batch in group:
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
            inputs, labels = self._inputs(batch, aux)
            objectives.append(
                self.stepper.accumulate(
                    inputs,
                    labels,
                    n_aux=len(aux),
                    ids=[str(item["id"]) for item in batch],
                    sources=_sources(batch).to(self.device) if self.grouped else None,
                    scale=1 / len(group),
                )
            )
        self.stepper.apply()
        objective = sum(objectives) / len(objectives)
        self.objective_sum += objective
        self.objective_count += 1
        return objective

    # ------------------------------------------------------------------------- evaluation

    def _scores(
        self,
        items: EvalSet | GenerationEvalSet,
        prefix: str,
        predict: Callable[[Inputs], torch.Tensor] | None = None,
    ) -> tuple[dict[str, Any], torch.Tensor | None]:
        """An evaluation set's metrics, named ``{prefix}_...``, and a classifier's logits
        (a causal LM's token scores are summed batch by batch, its logits never kept), of the
        model being trained or of ``predict``'s."""
        predict = predict or self.stepper.predict
        if isinstance(items, GenerationEvalSet):
            return items.score(predict, self.device).as_dict(prefix), None
        logits = items.logits(predict, self.device)
        return evaluate(logits, items.labels).as_dict(prefix), logits

    def _evaluate(self) -> bool:
        """Evaluate, log a metrics row, track the best weights; True to stop."""
        started = time.monotonic()
        val, logits = self._scores(self.validation, "val")
        row: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch,
            "lr": self.stepper.scheduler.get_last_lr()[0],
            "train_objective": self.objective_sum / self.objective_count
            if self.objective_count
            else None,
            **val,
        }
        if logits is not None and isinstance(self.validation, EvalSet):
            temperature = fit_temperature(logits, self.validation.labels)
            row["val_calibrated_loss"] = nll(logits, self.validation.labels, temperature)
            row["val_temperature"] = temperature
        if self.train_subset is not None:
            row.update(self._scores(self.train_subset, "train")[0])
            row["gap_loss"] = row["val_loss"] - row["train_loss"]
            if "val_accuracy" in row:
                row["gap_accuracy"] = row["train_accuracy"] - row["val_accuracy"]
        if self.stepper.l2sp is not None:
            row["l2sp_distance"] = self.stepper.l2sp.distance()
        self.objective_sum, self.objective_count = 0.0, 0
        self.last_eval_step = self.step
        self.last_logits = logits
        es = self.reg.early_stopping
        tie = float(row[es.tie_break]) if es.tie_break else None
        if self.stopper.update(float(row[self.stopper.metric]), self.step, tie):
            self.best_logits = logits
            if es.enabled:  # the weights to restore at the end
                self.best_state = checkpoint.snapshot(self.stepper.evaluated_state())
        row["best_step"] = self.stopper.best_step
        row["train_examples_per_second"] = (
            self.examples_since_eval / self.train_seconds_since_eval
            if self.train_seconds_since_eval
            else None
        )
        row["eval_seconds"] = time.monotonic() - started
        row["elapsed_seconds"] = self._elapsed()
        self.examples_since_eval, self.train_seconds_since_eval = 0, 0.0
        if self.rank == 0:
            append_jsonl(self.out / METRICS, row)
            if self.registry is not None:
                self.registry.evaluation(row)
        gap = f" gap_loss {row['gap_loss']:.4f}" if "gap_loss" in row else ""
        second = "val_perplexity" if self.generation else "val_accuracy"
        self.log(
            f"step {self.step} epoch {self.epoch}: val_loss {row['val_loss']:.4f} "
            f"{second} {row[second]:.3f}{gap}"
        )
        stop = es.enabled and self.stopper.stopped and self.step >= es.not_before * self.total_steps
        return self.ranks.anyone(stop)[0]

    def _elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.clock

    # ------------------------------------------------------------------------ checkpoints

    def _rank_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "stream": self.stream.state_dict(),
            "stepper": self.stepper.rank_state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state() if self.device.type == "cuda" else None,
        }
        if self.aux_stream is not None:
            state["aux_stream"] = self.aux_stream.state_dict()
        return state

    def _checkpoint(self, background: bool = True) -> None:
        ranks = self.ranks.gather(self._rank_state())
        self.last_checkpoint = time.monotonic()
        if self.rank != 0:
            return
        self.writer.submit(
            {
                "config": self.config.model_dump(mode="json"),
                "world_size": self.world,
                "step": self.step,
                "epoch": self.epoch,
                "stepper": self.stepper.state_dict(),
                "early_stopping": self.stopper.state_dict(),
                "best_state": self.best_state,
                "best_logits": self.best_logits,
                "last_logits": self.last_logits,
                "objective": [self.objective_sum, self.objective_count],
                "throughput": [self.examples_since_eval, self.train_seconds_since_eval],
                "elapsed": self._elapsed(),
                "last_eval_step": self.last_eval_step,
                "job": self.job,
                "ranks": ranks,
            },
            background=background,
        )

    def _check_resumable(self, state: dict[str, Any]) -> None:
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

    def _resume(self, state: dict[str, Any] | None) -> bool:
        """Load a mid-run checkpoint if there is one; True when it stopped mid-epoch."""
        if state is None:
            if self.rank == 0:
                for name in (METRICS, REPORT):
                    (self.out / name).unlink(missing_ok=True)
            (self.out / f"batches.rank{self.rank}.jsonl").unlink(missing_ok=True)
            self.ranks.barrier()
            return False
        self.stepper.load_state_dict(state["stepper"])
        self.stopper.load_state_dict(state["early_stopping"])
        self.best_state = state["best_state"]
        self.best_logits, self.last_logits = state["best_logits"], state["last_logits"]
        self.objective_sum, self.objective_count = state["objective"]
        self.examples_since_eval, self.train_seconds_since_eval = state["throughput"]
        self.elapsed_before, self.clock = state["elapsed"], time.monotonic()
        self.last_eval_step = state["last_eval_step"]
        self.step, self.epoch = state["step"], state["epoch"]
        mine = state["ranks"][self.rank]
        self.stream.load_state_dict(mine["stream"])
        self.stepper.load_rank_state_dict(mine["stepper"])
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

    def _finish(self, stop_reason: str) -> dict[str, Any]:
        """Restore the best weights (with early stopping), fold the fitted temperature into
        the head (with temperature scaling), evaluate what is shipped, write the outputs."""
        restored = self.reg.early_stopping.enabled and self.best_state is not None
        model = self.stepper.evaluated
        if restored and self.best_state is not None:
            self.stepper.load_evaluated_state(self.best_state)
        rows = read_jsonl(self.out / METRICS) if self.rank == 0 else []
        best, final = pick_rows(rows, self.stopper.best_step, restored)
        logits = self.best_logits if restored else self.last_logits
        soup = None
        if self.soup:
            soup, logits = self._average_members(model, final_metrics(final, "val_") or {})
        saved: dict[str, Any] | None
        shipped: Any = model
        ensemble = None
        class_bias: tuple[float, ...] | None = None
        if isinstance(self.validation, EvalSet):
            scaling, saved, calibration = self._calibrated(model, self.validation, logits)
            temperature = scaling.temperature if scaling else None
            if self.partners:
                shipped, saved, calibration, ensemble = self._ensemble(model, saved)
                scaling = shipped.scaling  # the bias, if any, is the average's
            class_bias = scaling.bias if scaling else None
        elif soup is not None:  # a causal LM: the scores of the average it ships
            temperature, saved, calibration = None, soup["val"], None
        else:  # a causal LM: the evaluation row of the weights it ships
            temperature, saved, calibration = None, final_metrics(final, "val_"), None
        report: dict[str, Any] = {
            "config": self.config.model_dump(mode="json"),
            "task": self.config.task,
            "dataset": self.config.dataset,
            "job": self.job,
            "labels": self.labels,
            "world_size": self.world,
            "device": str(self.device),
            "bf16": self.bf16,
            "steps": self.step,
            "epochs_planned": self.epochs,
            "epochs_completed": self.epoch,
            "stop_reason": stop_reason,
            "best": {
                "metric": self.stopper.metric,
                "value": self.stopper.best,
                "step": self.stopper.best_step,
                "epoch": best["epoch"] if best else None,
            },
            "restored_best_weights": restored,
            "final": final_metrics(final),
            # the saved model on the validation split (after temperature scaling, if on):
            # its metrics and reliability diagram; the test split's when the dataset has one
            "temperature": temperature,
            # with class_bias: the bias per class the shipped model adds (an ensemble's: to
            # its average, whose own temperature is in ensemble.scaling)
            "class_bias": list(class_bias) if class_bias is not None else None,
            "saved_model": saved,
            "calibration": calibration,
            "soup": soup,
            "ensemble": ensemble,
            "label_cleaning": self.cleaning,
            "test": self._test(self._predictor(shipped)),
            "resumed_from_step": self.resumed_from,
            "seconds": self._elapsed(),
            "files": {"metrics": METRICS, "learning_curve": CURVE, "model": MODEL},
        }
        if self.rank == 0:
            if self.config.lora.enabled and self.config.lora.merge:
                shipped = model.merge_and_unload()  # type: ignore[operator]
            self._save(shipped, self.out / MODEL)
            marked = self.stopper.best_step if restored else None
            bins = calibration["bins"] if calibration else None
            plot_learning_curve(rows, self.out / CURVE, marked, bins)
            write_json(self.out / REPORT, report)
        self.ranks.barrier()
        return report

    def _average_members(
        self, model: Any, own: dict[str, Any]
    ) -> tuple[dict[str, Any], torch.Tensor | None]:
        """Average the shipped weights (``own``: their validation scores) with the other
        members' saved ones; what each member scored on the validation split alone and what
        the average scores (before any temperature), and the average's validation logits."""
        average_into(model, [Path(r["config"]["output_dir"]) / MODEL for r in self.soup])
        val, logits = self._scores(self.validation, "val")
        members = [own] + [r["saved_model"] or {} for r in self.soup]
        key = "val_loss" if self.generation else "val_accuracy"
        scores = ", ".join(f"{m[key]:.4f}" for m in members if key in m)
        self.log(f"soup of {len(members)}: {key} {val[key]:.4f} (members {scores})")
        return {"members": len(members), "member_val": members, "val": val}, logits

    def _calibrated(
        self, model: Any, validation: EvalSet, logits: torch.Tensor | None
    ) -> tuple[Scaling | None, dict[str, Any], dict[str, Any]]:
        """A classifier as shipped: the fitted temperature (and class bias, unless the
        ensemble fits that on its average) folded into its head (with temperature scaling),
        its validation metrics and reliability diagram."""
        if logits is None:
            raise TrainingError("the run ended without an evaluation")
        labels = validation.labels
        scaling = None
        if self.reg.temperature_scaling:
            class_bias = self.reg.class_bias and not self.partners
            scaling = fit_scaling(logits, labels, class_bias)
            fold_scaling(model, len(self.labels), scaling)
            logits = scaling(logits)
        return scaling, *self._shipped_scores(logits, labels)

    @staticmethod
    def _shipped_scores(
        logits: torch.Tensor, labels: torch.Tensor
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The shipped model's validation metrics and reliability diagram."""
        bins = [asdict(b) for b in reliability(torch.softmax(logits, -1), labels)]
        return evaluate(logits, labels).as_dict("val"), {"bins": bins}

    def _ensemble(
        self, model: Any, own: dict[str, Any]
    ) -> tuple[EnsembleClassifier, dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The shipped ensemble of the run's calibrated model (``own``: its validation scores)
        and the plain fine-tunes their own runs saved calibrated; the ensemble's validation
        scores and reliability diagram, and what each member scored there alone."""
        assert self.partners and isinstance(self.validation, EvalSet)
        saved = [Path(r["config"]["output_dir"]) / MODEL for r in self.partners]
        partners = [load_classifier(path, self.labels).model.to(self.device) for path in saved]
        ensemble = EnsembleClassifier([model, *partners])
        logits = self.validation.logits(self._predictor(ensemble), self.device)
        if self.reg.class_bias:
            ensemble.scaling = fit_scaling(logits, self.validation.labels, class_bias=True)
            logits = ensemble.scaling(logits)
        val, calibration = self._shipped_scores(logits, self.validation.labels)
        members = [own, *(r["saved_model"] for r in self.partners)]
        scores = ", ".join(f"{m['val_accuracy']:.4f}" for m in members)
        self.log(f"ensemble: val_accuracy {val['val_accuracy']:.4f} (members {scores})")
        seconds = sum(r["seconds"] for r in self.partners)
        info: dict[str, Any] = {"member_val": members, "partner_seconds": seconds}
        if ensemble.scaling is not None:
            scaling = ensemble.scaling
            info["scaling"] = {"temperature": scaling.temperature, "bias": list(scaling.bias or ())}
        return ensemble, val, calibration, info

    def _predictor(self, model: Any) -> Callable[[Inputs], torch.Tensor]:
        """Logits of the shipped ``model`` in eval mode (the stepper's model: its own way)."""
        if model is self.stepper.evaluated:
            return self.stepper.predict

        @torch.no_grad()
        def predict(inputs: Inputs) -> torch.Tensor:
            model.eval()
            with self.stepper.autocast():
                return model(**inputs).logits.float()  # type: ignore[no-any-return]

        return predict

    def _save(self, model: Any, directory: Path) -> None:
        """The shipped model, loadable by ``load_classifier`` (an ensemble: its members each
        in their own folder); a mean-pooled classifier's encoder is a sentence-transformers
        model too."""
        if isinstance(model, EnsembleClassifier):
            for i, member in enumerate(model.members):
                self._save(member, member_path(directory, i))
            write_manifest(directory, len(model.members), model.scaling)
            return
        model.save_pretrained(directory)  # a peft adapter, or full weights
        self.task_model.tokenizer.save_pretrained(directory)
        if isinstance(model, MeanPooledClassifier):
            write_sentence_encoder(
                directory, model, self.task_model.tokenizer, self.config.max_length
            )

    def _test(self, predict: Callable[[Inputs], torch.Tensor]) -> dict[str, float | str] | None:
        if not self.summary["splits"].get("test"):
            return None
        items = self._evalset(self.service.originals(self.config.dataset, "test"))
        return self._scores(items, "test", predict)[0]


def _sources(batch: Batch) -> torch.Tensor:
    """For each row, the row of its record's original when it is a variant, else -1."""
    originals = {item["id"]: i for i, item in enumerate(batch) if item.get("variant") is None}
    return torch.tensor(
        [-1 if item.get("variant") is None else originals.get(item["id"], -1) for item in batch]
    )


def _comparable(config: TrainConfig) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed: everything but where the service is and
    how often to checkpoint."""
    return config.model_dump(
        mode="json", exclude={"service", "api_key", "checkpoint_every", "checkpoint_minutes"}
    )


def _progress_bar(enabled: bool, total: int, initial: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)
