"""`byol`: Bootstrap Your Own Latent (Grill et al., "Bootstrap your own latent: a new approach to self-supervised
learning", NeurIPS 2020).

The online branch (encoder -> projection -> predictor) regresses the target branch's projection of the other
view; the target (a copy of encoder and projection) is an exponential moving average of the online weights,
tau = 1 - (1 - tau_base) (cos(pi k / K) + 1) / 2, from tau_base at the first optimizer step (k = 0) to exactly 1
at the last (k = K = total_steps - 1). Loss: 2 - 2 cos(q, z'), symmetrised and averaged over both directions.

Batch norm: the target runs in train mode like the online branch, normalising with the current views' batch
statistics (in eval mode it would use running statistics that lag its EMA weights); its running statistics are
its own, are not averaged, and never reach the loss. Sizes: the MLPs are Linear-BN-ReLU-Linear as in
the paper, with `hidden_dim` = 2 * embed_dim by default (BYOL: 4096 for a 2048-d ResNet-50, sized down for CPU).
`batch_norm=false` drops their batch norm (per-rank statistics under gloo DDP, where SyncBatchNorm is GPU-only).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecgcl.engine.heads import ProjectionHead
from ecgcl.engine.model import embed
from ecgcl.interfaces import Objective


def byol_tau(step: int, total_steps: int, base: float) -> float:
    """The target momentum after optimizer step `step` (0-based) of `total_steps`: `base` first, 1 at the last."""
    progress = min(step / max(total_steps - 1, 1), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


def regression_loss(p: Tensor, z: Tensor) -> Tensor:
    """BYOL's 2 - 2 cos(p, z), averaged over the batch, in float32 outside autocast."""
    with torch.autocast(device_type=p.device.type, enabled=False):
        return (2.0 - 2.0 * F.cosine_similarity(p.float(), z.float(), dim=1)).mean()


class BYOL(Objective):
    """BYOL: online projection + predictor against a momentum (EMA) target; no negatives, no `--loss`."""

    takes_loss = False
    default_aug = "permute+noise"

    def __init__(self, encoder: nn.Module, embed_dim: int, augmentation, projection_dim: int = 64,
                 hidden_dim: int | None = None, momentum: float = 0.996, batch_norm: bool = True) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        hidden = 2 * embed_dim if hidden_dim is None else hidden_dim
        self.momentum, self.augmentation = float(momentum), augmentation
        self.projection = ProjectionHead(embed_dim, hidden, projection_dim, batch_norm=batch_norm)
        self.predictor = ProjectionHead(projection_dim, hidden, projection_dim, batch_norm=batch_norm)
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.target_projection = copy.deepcopy(self.projection).requires_grad_(False)
        self._online = (encoder,)  # the encoder being pretrained, by reference: not part of this module's state

    def forward(self, encoder, batch: Tensor, patient_ids: Tensor, generator: torch.Generator) -> Tensor:
        view1, view2 = self.augmentation.views(batch, generator)
        q1, q2 = (self.predictor(self.projection(encoder.embed(v))) for v in (view1, view2))
        with torch.no_grad():
            z1, z2 = (self.target_projection(embed(self.target_encoder, v, window=encoder.window,
                                                   representation=encoder.representation)) for v in (view1, view2))
        return (regression_loss(q1, z2) + regression_loss(q2, z1)) / 2

    @torch.no_grad()
    def after_step(self, step: int, total_steps: int) -> None:
        """target <- tau * target + (1 - tau) * online, parameters only, in a fixed order (the same on every rank)."""
        tau = byol_tau(step, total_steps, self.momentum)
        pairs = ((self._online[0], self.target_encoder), (self.projection, self.target_projection))
        for online, target in pairs:
            for p_online, p_target in zip(online.parameters(), target.parameters(), strict=True):
                p_target.mul_(tau).add_(p_online.detach(), alpha=1.0 - tau)


__all__ = ["BYOL", "byol_tau", "regression_loss"]
