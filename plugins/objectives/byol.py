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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecgcl.engine.heads import ProjectionHead
from ecgcl.engine.model import embed
from ecgcl.interfaces import Objective
from ecgcl.plugins.objectives.ema import check_momentum, ema_momentum, ema_update


def regression_loss(p: Tensor, z: Tensor) -> Tensor:
    """BYOL's 2 - 2 cos(p, z), averaged over the batch, in float32 outside autocast."""
    with torch.autocast(device_type=p.device.type, enabled=False):
        return (2.0 - 2.0 * F.cosine_similarity(p.float(), z.float(), dim=1)).mean()


class BYOL(Objective):
    """BYOL: online projection + predictor against a momentum (EMA) target; no negatives, no `--loss`."""

    takes_loss = False
    default_aug = "permute+noise"
    two_views = True

    def __init__(self, encoder: nn.Module, embed_dim: int, augmentation, projection_dim: int = 64,
                 hidden_dim: int | None = None, momentum: float = 0.996, batch_norm: bool = True) -> None:
        super().__init__()
        hidden = 2 * embed_dim if hidden_dim is None else hidden_dim
        self.momentum, self.augmentation = check_momentum(momentum), augmentation
        self.projection = ProjectionHead(embed_dim, hidden, projection_dim, batch_norm=batch_norm)
        self.predictor = ProjectionHead(projection_dim, hidden, projection_dim, batch_norm=batch_norm)
        self.target_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.target_projection = copy.deepcopy(self.projection).requires_grad_(False)
        self._online = (encoder,)  # the encoder being pretrained, by reference: not part of this module's state

    def draws(self, encoder, batch: Tensor, generator: torch.Generator) -> dict:
        """The two views of `batch` (`--aug`'s `views`), drawn from `generator`."""
        return {"views": self.augmentation.views(batch, generator)}

    def forward(self, encoder, batch: Tensor, patient_ids: Tensor, generator: torch.Generator) -> Tensor:
        view1, view2 = self.draws(encoder, batch, generator)["views"]
        q1, q2 = (self.predictor(self.projection(encoder.embed(v))) for v in (view1, view2))
        with torch.no_grad():
            z1, z2 = (self.target_projection(embed(self.target_encoder, v, window=encoder.window,
                                                   representation=encoder.representation)) for v in (view1, view2))
        return (regression_loss(q1, z2) + regression_loss(q2, z1)) / 2

    def after_step(self, step: int, total_steps: int) -> None:
        """target <- tau * target + (1 - tau) * online, parameters only (`ema_update`, the same on every rank)."""
        tau = ema_momentum(step, total_steps, self.momentum)
        for online, target in ((self._online[0], self.target_encoder), (self.projection, self.target_projection)):
            ema_update(online, target, tau)


__all__ = ["BYOL", "regression_loss"]
