"""`vicreg`: Variance-Invariance-Covariance Regularization (Bardes, Ponce & LeCun, "VICReg: Variance-invariance-
covariance regularization for self-supervised learning", ICLR 2022).

Two views -> encoder -> expander; the loss (the paper's Algorithm 1) is
  sim_weight * MSE(Z, Z') + var_weight * [v(Z) + v(Z')] + cov_weight * [c(Z) + c(Z')],
v(Z) = mean_j max(0, gamma - sqrt(Var(Z_j) + eps)) (gamma 1, eps 1e-4, unbiased variance over the batch) and
c(Z) = sum of the squared off-diagonal entries of Z's covariance / dim. Variance and covariance are taken over
the global batch under torch.distributed (`gather_with_grad`), the invariance over this rank's rows (DDP's
gradient average makes it global); all in float32 outside autocast.

The expander is the paper's three linear layers (Linear-BN-ReLU twice, then Linear) of `expander_dim` units,
4 * embed_dim by default (the paper: 8192 for a 2048-d ResNet-50, sized down for CPU). `batch_norm=false`
drops its batch norm (per-rank statistics under gloo DDP, where SyncBatchNorm is GPU-only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecgcl.distributed import gather_with_grad
from ecgcl.interfaces import Objective


def _variance(z: Tensor, gamma: float, eps: float) -> Tensor:
    return F.relu(gamma - torch.sqrt(z.var(dim=0) + eps)).mean()


def _covariance(z: Tensor) -> Tensor:
    n, dim = z.shape
    centred = z - z.mean(dim=0)
    cov = centred.T @ centred / (n - 1)
    return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / dim


def vicreg_terms(z1: Tensor, z2: Tensor, gamma: float = 1.0, eps: float = 1e-4) -> tuple[Tensor, Tensor, Tensor]:
    """(invariance, variance, covariance) of two (B, D) embeddings, unweighted, in float32; variance and
    covariance are the sums over both views, over the global batch under torch.distributed."""
    with torch.autocast(device_type=z1.device.type, enabled=False):
        z1, z2 = z1.float(), z2.float()
        invariance = F.mse_loss(z1, z2)
        every1, every2 = gather_with_grad(z1), gather_with_grad(z2)
        variance = _variance(every1, gamma, eps) + _variance(every2, gamma, eps)
        covariance = _covariance(every1) + _covariance(every2)
    return invariance, variance, covariance


def expander(in_dim: int, dim: int, batch_norm: bool = True) -> nn.Sequential:
    """VICReg's expander: (Linear, BN, ReLU) x 2, then Linear; every layer `dim` wide."""
    layers: list[nn.Module] = []
    for width in (in_dim, dim):
        layers += [nn.Linear(width, dim), *([nn.BatchNorm1d(dim)] if batch_norm else []), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Linear(dim, dim))


class VICReg(Objective):
    """VICReg: invariance + variance + covariance terms on expanded embeddings of two views; no `--loss`."""

    takes_loss = False
    default_aug = "permute+noise"
    two_views = True

    def __init__(self, embed_dim: int, augmentation, expander_dim: int | None = None, sim_weight: float = 25.0,
                 var_weight: float = 25.0, cov_weight: float = 1.0, batch_norm: bool = True) -> None:
        super().__init__()
        for name, weight in (("sim_weight", sim_weight), ("var_weight", var_weight), ("cov_weight", cov_weight)):
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise ValueError(f"{name} must be a number >= 0, got {weight!r}")
        dim = 4 * embed_dim if expander_dim is None else expander_dim
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"expander_dim must be a positive integer, got {expander_dim!r}")
        self.augmentation = augmentation
        self.weights = (float(sim_weight), float(var_weight), float(cov_weight))
        self.expander = expander(embed_dim, dim, batch_norm)

    def draws(self, encoder, batch: Tensor, generator: torch.Generator) -> dict:
        """The two views of `batch` (`--aug`'s `views`), drawn from `generator`."""
        return {"views": self.augmentation.views(batch, generator)}

    def forward(self, encoder, batch: Tensor, patient_ids: Tensor, generator: torch.Generator) -> Tensor:
        view1, view2 = self.draws(encoder, batch, generator)["views"]
        terms = vicreg_terms(self.expander(encoder.embed(view1)), self.expander(encoder.embed(view2)))
        return sum(w * t for w, t in zip(self.weights, terms))


__all__ = ["VICReg", "expander", "vicreg_terms"]
