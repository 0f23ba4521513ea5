"""`ntxent`: SimCLR's normalized temperature-scaled cross-entropy (Chen et al., ICML 2020).

Each of the 2N views has one positive (the other view of its recording) and 2N - 2 negatives; the loss
is the cross-entropy of the positive among the 2N - 1 others, averaged over anchors. Under
torch.distributed the candidates are gathered from every rank, and each rank averages over its own
anchors, so DDP's gradient average equals the single-process loss over the global batch.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ecgcl.interfaces import Loss
from ecgcl.plugins.losses.similarity import check_temperature, check_views, pair_logits


class NTXentLoss(Loss):
    """SimCLR's NT-Xent over both views with cosine similarity and a temperature (Chen et al., 2020)."""

    def __init__(self, temperature: float = 0.07) -> None:  # tuned on validation (docs/objectives.md)
        super().__init__()
        self.temperature = check_temperature("ntxent", temperature)

    def forward(self, z1: Tensor, z2: Tensor, patient_ids: Tensor | None = None) -> Tensor:
        """Scalar float32 loss; `patient_ids` is accepted for interface compatibility and ignored."""
        check_views("ntxent", z1, z2)
        pairs = pair_logits(z1, z2, self.temperature)
        return F.cross_entropy(pairs.logits, pairs.positive_view)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


__all__ = ["NTXentLoss"]
