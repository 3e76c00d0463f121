"""One regularized optimisation step, apart from where batches come from: the module (and its
DDP wrapper), AdamW with decay groups, the warm-up/decay schedule, L2-SP, label smoothing,
SMART with its momentum teacher or R3F, and domain-adversarial training. The loop and the
step-cost benchmark both drive it."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from trainer.config import Regularization
from trainer.model import Classifier
from trainer.module import Inputs, Outputs, TaskModule, task_rows
from trainer.regularizers.adversarial import DomainClassifier, dann_lambda
from trainer.regularizers.label_smoothing import LabelSmoother
from trainer.regularizers.mixout import apply_mixout
from trainer.regularizers.smoothness import R3F, SMART, MomentumTeacher, divergence
from trainer.regularizers.weight_decay import L2SP, param_groups


class Stepper:
    def __init__(
        self,
        classifier: Classifier,
        reg: Regularization,
        *,
        learning_rate: float,
        total_steps: int,
        warmup_steps: int = 0,
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
        if reg.mixout.enabled:
            self.mixed = apply_mixout(classifier.model, reg.mixout.p)
        head = None
        if reg.domain_adversarial.enabled:
            head = DomainClassifier(classifier.model.config.hidden_size)
        self.module = TaskModule(classifier.model, head).to(self.device)
        # the smoothness forwards use self.module directly (see trainer/module.py)
        self.ddp = DistributedDataParallel(self.module) if distributed else None
        wd = reg.weight_decay
        self.l2sp = L2SP(self.module.model, wd.rate) if wd.l2sp else None
        groups = param_groups(self.module, 0.0 if self.l2sp else wd.rate)
        self.optimizer = torch.optim.AdamW(groups, lr=learning_rate)
        self.scheduler = linear_schedule(self.optimizer, warmup_steps, total_steps)
        self.teacher = (
            MomentumTeacher(self.module.model, reg.smart.beta, reg.smart.mu)
            if reg.smart.enabled and reg.smart.teacher
            else None
        )
        self.smoother = LabelSmoother(reg.label_smoothing) if reg.label_smoothing else None
        self.steps_done = 0

    def autocast(self) -> Any:
        if not self.bf16:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def step(self, inputs: Inputs, labels: torch.Tensor, n_aux: int = 0) -> float:
        """One step on a batch whose first rows are the task's (``labels``) and whose last
        ``n_aux`` rows are the auxiliary domain's; returns the training objective."""
        self.module.train()
        n_task = len(labels)
        lam = dann_lambda(min(1.0, self.steps_done / self.total_steps))
        forward = self.ddp or self.module
        with self.autocast():
            out: Outputs = forward(inputs, n_task, lam)
            logits = out.logits
            loss = (
                self.smoother(logits, labels)
                if self.smoother
                else F.cross_entropy(logits.float(), labels)
            )
            objective: torch.Tensor = loss + self._smoothness(task_rows(inputs, n_task), logits)
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher.teacher(**task_rows(inputs, n_task)).logits
                objective = objective + self.teacher.penalty(logits, teacher_logits)
            if out.domain is not None:
                domains = torch.tensor([0] * n_task + [1] * n_aux, device=self.device)
                weight = self.reg.domain_adversarial.weight
                objective = objective + weight * F.cross_entropy(out.domain.float(), domains)
        objective.backward()  # type: ignore[no-untyped-call]
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.grad_clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.l2sp is not None:
            self.l2sp.step(lr)
        if self.teacher is not None:
            self.teacher.update(self.module.model)
        self.scheduler.step()
        self.steps_done += 1
        return float(objective.detach())

    def _smoothness(self, inputs: Inputs, logits: torch.Tensor) -> torch.Tensor | float:
        smart, r3f = self.reg.smart, self.reg.r3f
        if not (smart.enabled or r3f.enabled):
            return 0.0
        embeds = self.module.embed(inputs["input_ids"])

        def forward(e: torch.Tensor) -> torch.Tensor:
            return self.module.logits_from_embeds(e, inputs)

        if smart.enabled:
            unit = SMART(smart.epsilon, smart.sigma, smart.eta, smart.steps)
            delta = unit.perturbation(forward, embeds, logits.detach())
            return smart.weight * divergence("kl", forward(embeds + delta), logits)
        return r3f.weight * R3F(r3f.sigma, r3f.noise)(forward, embeds, logits)

    @torch.no_grad()
    def predict(self, inputs: Inputs) -> torch.Tensor:
        """Logits in eval mode (weights as they are: no dropout, no mixout)."""
        self.module.eval()
        with self.autocast():
            logits: torch.Tensor = self.module.model(**inputs).logits.float()
        self.module.train()
        return logits

    def state_dict(self) -> dict[str, Any]:
        return {
            "module": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "teacher": self.teacher.teacher.state_dict() if self.teacher else None,
            "steps_done": self.steps_done,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.teacher is not None:
            self.teacher.teacher.load_state_dict(state["teacher"])
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
