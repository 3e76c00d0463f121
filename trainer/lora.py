"""LoRA through peft: wrap a classifier's or a causal LM's model, and tell a trainable
parameter from a frozen one (checkpoints and the best weights keep only what training changes)."""

from __future__ import annotations

from typing import Any

from torch import nn

from trainer.config import Lora


def apply_lora(model: nn.Module, spec: Lora, generation: bool = False) -> Any:
    """The model with LoRA adapters on ``spec.target_modules``; a classifier's head trainable
    whole (peft's sequence-classification task saves it), a causal LM's output layer frozen."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.CAUSAL_LM if generation else TaskType.SEQ_CLS,
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
    )
    return get_peft_model(model, config)


def frozen_parameters(trained: nn.Module) -> set[str]:
    """The names of the parameters training leaves alone."""
    return {name for name, p in trained.named_parameters() if not p.requires_grad}


def trainable_state(module: nn.Module, trained: nn.Module | None = None) -> dict[str, Any]:
    """``state_dict()`` without frozen parameters: all of it for full fine-tuning, the
    adapters and the head (megabytes, not the whole model) under LoRA. ``trained`` says which
    parameters are trained when ``module`` is a frozen copy of it (the weight average, whose
    own parameters all have ``requires_grad`` off)."""
    frozen = frozen_parameters(trained if trained is not None else module)
    return {k: v for k, v in module.state_dict().items() if k not in frozen}


def load_trainable_state(
    module: nn.Module, state: dict[str, Any], trained: nn.Module | None = None
) -> None:
    """Load what ``trainable_state`` kept; anything else missing is an error."""
    frozen = frozen_parameters(trained if trained is not None else module)
    missing, unexpected = module.load_state_dict(state, strict=False)
    absent = [k for k in missing if k not in frozen]
    if absent or unexpected:
        raise RuntimeError(f"state does not fit the model: missing {absent}, extra {unexpected}")
