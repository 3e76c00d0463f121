"""One regularized optimisation step, apart from where batches come from: the module (and its
DDP wrapper), AdamW with decay groups (and layer-wise learning rates), the warm-up/decay
schedule, L2-SP, the task loss (cross-entropy, label smoothing, or a noise-robust loss), R-Drop,
consistency on augmented views, SMART with its momentum teacher or R3F, domain-adversarial
training, and the weight average that evaluation uses. The loop and the step-cost benchmark
both drive it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from trainer.config import Regularization
from trainer.generation import Generator, next_token, token_loss
from trainer.lora import load_trainable_state, trainable_state
from trainer.model import Classifier
from trainer.regularizers.adversarial import DomainClassifier, dann_lambda
from trainer.regularizers.averaging import WeightAverage, half_life_decay
from trainer.regularizers.consistency import uda_consistency
from trainer.regularizers.label_smoothing import LabelSmoother
from trainer.regularizers.mixout import apply_mixout
from trainer.regularizers.neftune import add_neftune
from trainer.regularizers.robust_loss import EarlyLearning, generalized_cross_entropy
from trainer.regularizers.smoothness import (
    R3F,
    SMART,
    MomentumTeacher,
    divergence,
    symmetric_kl,
)
from trainer.regularizers.weight_decay import L2SP, adamw, param_groups
from trainer.task_module import Inputs, Outputs, TaskModule, task_rows


class Stepper:
    def __init__(
        self,
        classifier: Classifier | Generator,
        reg: Regularization,
        *,
        learning_rate: float,
        total_steps: int,
        warmup_steps: int = 0,
        steps_per_epoch: int | None = None,
        grad_clip: float | None = 1.0,
        device: torch.device | None = None,
        bf16: bool = False,
        distributed: bool = False,
    ) -> None:
        self.reg = reg
        self.total_steps = total_steps
        self.grad_clip = grad_clip
        self.device = device or torch.device("cpu")
        self.bf16 = bf16
        # a causal LM's labels are token ids per position (-100 off the response)
        self.generation = isinstance(classifier, Generator)
        self.n_classes = len(classifier.labels)
        if reg.mixout.enabled:
            self.mixed = apply_mixout(classifier.model, reg.mixout.p)
        if reg.neftune.enabled:
            add_neftune(classifier.model.get_input_embeddings(), reg.neftune.alpha)
        head = None
        if reg.domain_adversarial.enabled:
            head = DomainClassifier(classifier.model.config.hidden_size)
        self.module = TaskModule(classifier.model, head, classifier.pooling).to(self.device)
        # the smoothness forwards use self.module directly (see trainer/task_module.py)
        self.ddp = DistributedDataParallel(self.module) if distributed else None
        wd = reg.weight_decay
        self.l2sp = L2SP(self.module.model, wd.rate) if wd.l2sp else None
        groups = param_groups(
            self.module, 0.0 if self.l2sp else wd.rate, learning_rate, reg.layer_lr_decay
        )
        self.optimizer = adamw(groups, learning_rate)
        self.scheduler = linear_schedule(self.optimizer, warmup_steps, total_steps)
        self.teacher = (
            MomentumTeacher(self.module.model, reg.smart.beta, reg.smart.mu)
            if reg.smart.enabled and reg.smart.teacher
            else None
        )
        self.average = (
            WeightAverage(
                self.module.model,
                half_life_decay(reg.averaging.half_life * (steps_per_epoch or total_steps)),
                warmup=True,
            )
            if reg.averaging.enabled
            else None
        )
        self.smoother = LabelSmoother(reg.label_smoothing) if reg.label_smoothing else None
        smart, r3f = reg.smart, reg.r3f  # built once, not every step
        self.smart = (
            SMART(smart.epsilon, smart.sigma, smart.eta, smart.steps) if smart.enabled else None
        )
        self.r3f = R3F(r3f.sigma, r3f.noise) if r3f.enabled else None
        robust = reg.robust_loss
        self.elr = (
            EarlyLearning(self.n_classes, robust.beta, robust.weight)
            if robust.kind == "elr"
            else None
        )
        self.steps_done = 0
        # records whose label is not trained on (label cleaning's suspects); set by the loop
        self.unlabelled: frozenset[str] = frozenset()

    def autocast(self) -> Any:
        if not self.bf16:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def step(
        self,
        inputs: Inputs,
        labels: torch.Tensor,
        n_aux: int = 0,
        *,
        ids: Sequence[str] | None = None,
        sources: torch.Tensor | None = None,
    ) -> float:
        """One step on a batch whose first rows are the task's (``labels``; their record
        ``ids``) and whose last ``n_aux`` rows are the auxiliary domain's; ``sources[i]`` is
        the row of task row i's original when row i is an augmented variant of it, else -1
        (consistency training). Returns the training objective."""
        objective = self.accumulate(inputs, labels, n_aux, ids=ids, sources=sources)
        self.apply()
        return objective

    def accumulate(
        self,
        inputs: Inputs,
        labels: torch.Tensor,
        n_aux: int = 0,
        *,
        ids: Sequence[str] | None = None,
        sources: torch.Tensor | None = None,
        scale: float = 1.0,
    ) -> float:
        """The forward and backward of one (micro-)batch, its gradients times ``scale`` added
        to the parameters' (gradient accumulation: ``scale`` = 1 / micro-batches per step);
        ``apply`` then takes the step. Returns the training objective."""
        self.module.train()
        n_task = len(labels)
        lam = dann_lambda(min(1.0, self.steps_done / self.total_steps))
        forward = self.ddp or self.module
        copies = 2 if self.reg.rdrop.enabled else 1
        if copies > 1:  # R-Drop: the task rows twice, under different dropout masks
            inputs = {k: torch.cat([v[:n_task], v]) for k, v in inputs.items()}
        with self.autocast():
            out: Outputs = forward(inputs, copies * n_task, lam)
            logits = out.logits[:n_task]
            rows, row_ids = self._supervised(n_task, ids, sources)
            loss = self._task_loss(logits[rows], labels[rows], row_ids)
            if copies > 1:
                second = out.logits[n_task : 2 * n_task]
                loss = (loss + self._task_loss(second[rows], labels[rows], row_ids)) / 2
                loss = loss + self.reg.rdrop.weight * symmetric_kl(logits, second) / 2
            if sources is not None and self.reg.consistency.enabled:
                c = self.reg.consistency
                variants = (sources >= 0).nonzero().squeeze(-1)
                loss = loss + c.weight * uda_consistency(
                    logits[variants], logits[sources[variants]], c.temperature, c.threshold
                )
            task = task_rows(inputs, n_task)
            scored = self._scored(labels)
            objective: torch.Tensor = loss + self._smoothness(task, logits, scored)
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher.teacher(**task).logits
                objective = objective + self.teacher.penalty(scored(logits), scored(teacher_logits))
            if out.domain is not None:
                domains = torch.tensor([0] * (copies * n_task) + [1] * n_aux, device=self.device)
                weight = self.reg.domain_adversarial.weight
                objective = objective + weight * F.cross_entropy(out.domain.float(), domains)
        (objective * scale).backward()  # type: ignore[no-untyped-call]
        return float(objective.detach())

    def apply(self) -> None:
        """The optimizer step on the accumulated gradients, and what follows a step."""
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip)
        lr = self.optimizer.param_groups[-1]["lr"]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.l2sp is not None:
            self.l2sp.step(lr)
        if self.teacher is not None:
            self.teacher.update(self.module.model)
        if self.average is not None:
            self.average.update(self.module.model)
        self.scheduler.step()
        self.steps_done += 1

    def _supervised(
        self, n_task: int, ids: Sequence[str] | None, sources: torch.Tensor | None
    ) -> tuple[slice | torch.Tensor, list[str]]:
        """The rows trained on their label, and their record ids: all of them (a slice, so
        the logits are not copied: a causal LM's are batch x length x vocabulary), or only
        the originals when consistency training leaves the variants unsupervised, and only
        the rows whose record is not in ``unlabelled`` (label cleaning)."""
        unsupervised_variants = sources is not None and not self.reg.consistency.supervised_variants
        if not unsupervised_variants and not (self.unlabelled and ids is not None):
            return slice(0, n_task), list(ids or [])
        keep = torch.ones(n_task, dtype=torch.bool, device=self.device)
        if sources is not None and unsupervised_variants:
            keep &= sources < 0
        if self.unlabelled and ids is not None:
            keep &= torch.tensor([i not in self.unlabelled for i in ids], device=self.device)
        rows = keep.nonzero().squeeze(-1)
        return rows, [ids[i] for i in rows.tolist()] if ids is not None else []

    def _task_loss(
        self, logits: torch.Tensor, labels: torch.Tensor, ids: Sequence[str]
    ) -> torch.Tensor:
        if len(labels) == 0:  # every row of the batch trains without its label
            return logits.float().sum() * 0.0
        if self.generation:
            return token_loss(logits, labels, self.smoother)
        robust = self.reg.robust_loss
        if robust.kind == "gce":
            return generalized_cross_entropy(logits, labels, robust.q)
        if self.elr is not None:
            if len(ids) != len(labels):
                raise ValueError("early-learning regularization needs each row's record id")
            return self.elr(logits, labels, ids)
        if self.smoother is not None:
            return self.smoother(logits, labels)
        return F.cross_entropy(logits.float(), labels)

    def _scored(self, labels: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """What the divergences compare: a classifier's logits, or a causal LM's at the
        positions that predict a response token ([N, vocab]: a token-level KL)."""
        if not self.generation:
            return lambda logits: logits
        return lambda logits: next_token(logits, labels)[0]

    def _smoothness(
        self,
        inputs: Inputs,
        logits: torch.Tensor,
        scored: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor | float:
        if self.smart is None and self.r3f is None:
            return 0.0
        embeds = self.module.embed(inputs["input_ids"])

        def forward(e: torch.Tensor) -> torch.Tensor:
            return scored(self.module.logits_from_embeds(e, inputs))

        clean = scored(logits)
        if self.smart is not None:
            delta = self.smart.perturbation(forward, embeds, clean.detach())
            return self.reg.smart.weight * divergence("kl", forward(embeds + delta), clean)
        assert self.r3f is not None
        return self.reg.r3f.weight * self.r3f(forward, embeds, clean)

    @property
    def evaluated(self) -> nn.Module:
        """The model that is evaluated and shipped: the weight average when there is one."""
        return self.average.model if self.average is not None else self.module.model

    def evaluated_state(self) -> dict[str, Any]:
        """What training changes in the evaluated model (its tensors are live, not copies)."""
        return trainable_state(self.evaluated, trained=self.module.model)

    def load_evaluated_state(self, state: dict[str, Any]) -> None:
        """Put back into the evaluated model what ``evaluated_state`` returned."""
        load_trainable_state(self.evaluated, state, trained=self.module.model)

    @torch.no_grad()
    def predict(self, inputs: Inputs) -> torch.Tensor:
        """Logits in eval mode (no dropout, no mixout) of the evaluated model."""
        model = self.evaluated
        model.eval()
        with self.autocast():
            logits: torch.Tensor = model(**inputs).logits.float()
        self.module.train()
        return logits

    def state_dict(self) -> dict[str, Any]:
        return {
            "module": trainable_state(self.module),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "teacher": self.teacher.average.state_dict() if self.teacher else None,
            "average": self.average.state_dict() if self.average else None,
            "steps_done": self.steps_done,
        }

    def rank_state_dict(self) -> dict[str, Any]:
        """What differs between DDP ranks: ELR's targets of the records this rank saw."""
        return {"elr": self.elr.state_dict() if self.elr else None}

    def load_rank_state_dict(self, state: dict[str, Any]) -> None:
        if self.elr is not None:
            self.elr.load_state_dict(state["elr"])

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_trainable_state(self.module, state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.teacher is not None:
            self.teacher.average.load_state_dict(state["teacher"])
        if self.average is not None:
            self.average.load_state_dict(state["average"])
        self.steps_done = state["steps_done"]


def linear_schedule(
    optimizer: torch.optim.Optimizer, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then linear decay to 0 at ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
