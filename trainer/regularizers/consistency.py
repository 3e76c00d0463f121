"""Consistency between predictions that should agree.

- UDA (Xie et al., 2020) on augmented views: KL(sharpened p(original) || p(variant)), the
  original's side without gradient, examples whose original prediction is below a confidence
  threshold masked out.
- R-Drop (Liang et al., 2021): the symmetric KL between two forwards of the same batch under
  different dropout masks (``symmetric_kl`` in smoothness.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def uda_consistency(
    variant_logits: torch.Tensor,
    original_logits: torch.Tensor,
    temperature: float = 0.4,
    threshold: float = 0.0,
) -> torch.Tensor:
    """Mean over variants of KL(target || p(variant)); masked variants count as zero."""
    if not variant_logits.shape[0]:
        return variant_logits.sum() * 0.0
    with torch.no_grad():
        original = F.softmax(original_logits.float(), dim=-1)
        keep = (original.max(dim=-1).values >= threshold).float()
        target = F.softmax(original_logits.float() / temperature, dim=-1)
    log_q = F.log_softmax(variant_logits.float(), dim=-1)
    kl = (target * (target.clamp(min=1e-12).log() - log_q)).sum(dim=-1)
    return (kl * keep).mean()
