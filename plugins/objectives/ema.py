"""The momentum (EMA) target shared by `byol` and `jepa`: the cosine momentum schedule of BYOL (Grill et al.,
NeurIPS 2020), used by I-JEPA / ECG-JEPA too, and the in-place update of a target network's weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def check_momentum(momentum: float) -> float:
    """The base momentum as a float in [0, 1]; a ValueError (one line through the registry) otherwise."""
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
    return float(momentum)


def ema_momentum(step: int, total_steps: int, base: float) -> float:
    """The target momentum after optimizer step `step` (0-based) of `total_steps`: `base` first, 1 at the last,
    1 - (1 - base) (cos(pi k / K) + 1) / 2 with K = total_steps - 1."""
    progress = min(step / max(total_steps - 1, 1), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, momentum: float, *, copy_buffers: bool = False) -> None:
    """target <- momentum * target + (1 - momentum) * online for every parameter, in a fixed order, so every rank
    updates identically; `copy_buffers` also copies the online buffers (batch-norm statistics) into the target."""
    for p_online, p_target in zip(online.parameters(), target.parameters(), strict=True):
        p_target.mul_(momentum).add_(p_online.detach(), alpha=1.0 - momentum)
    if copy_buffers:
        for b_online, b_target in zip(online.buffers(), target.buffers(), strict=True):
            b_target.copy_(b_online)
