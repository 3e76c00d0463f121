"""Where a parameter sits in a transformer's stack of layers, for layer-wise learning-rate
decay (Howard & Ruder 2018; the few-sample recipe of Zhang et al. 2021 too) and for
re-initialising the top layers (Zhang et al. 2021)."""

from __future__ import annotations

import re

from torch import nn

# ".layer.3." (BERT, RoBERTa), ".layers.3." (Llama, Mistral), ".h.3." (GPT-2), ".block.3."
LAYER = re.compile(r"(?:^|\.)(?:layer|layers|h|block)\.(\d+)\.")
EMBEDDINGS = re.compile(r"(?:^|\.)(?:embeddings|embed_tokens|wte|wpe|word_embeddings)\b")


def n_layers(model: nn.Module) -> int:
    found = [int(m.group(1)) for name, _ in model.named_parameters() if (m := LAYER.search(name))]
    return max(found) + 1 if found else 0


def depth(name: str, layers: int) -> int:
    """0 for the embeddings, i + 1 for layer i, layers + 1 for what comes after (pooler, head,
    final norm)."""
    if m := LAYER.search(name):
        return int(m.group(1)) + 1
    if EMBEDDINGS.search(name):
        return 0
    return layers + 1


def layer_stack(model: nn.Module) -> nn.ModuleList | None:
    """The model's stack of layers: the longest ModuleList of one module class."""
    best: nn.ModuleList | None = None
    for module in model.modules():
        if (
            isinstance(module, nn.ModuleList)
            and len(module) > (len(best) if best is not None else 0)
            and len({type(m) for m in module}) == 1
        ):
            best = module
    return best


def reinit_top_layers(model: nn.Module, k: int) -> int:
    """Re-initialise the top ``k`` layers (and a pooler, if the model has one) with the model's
    own initialiser (transformers' ``_init_weights``); returns how many layers were reset."""
    if k <= 0:
        return 0
    init = getattr(model, "_init_weights", None)
    stack = layer_stack(model)
    if init is None or stack is None:
        raise ValueError("reinit_layers needs a transformers model with a stack of layers")
    top = list(stack)[-k:]
    pooler = [m for name, m in model.named_modules() if name.endswith("pooler")]
    for part in top + pooler:
        for module in part.modules():
            init(module)
    return len(top)
