"""`clocs_patient`: the patient-aware contrastive loss of CLOCS (Kiyasseh et al., ICML 2021).

CLOCS treats recordings of the same patient as positives (its CMSC/CMLC variants). Here that idea is
written over SimCLR's 2N-view batch: for each anchor, every other view whose patient id equals the
anchor's is a positive, and the loss is minus the mean log-probability of its positives under the
softmax over the 2N - 1 other views (the "outside" average of Khosla et al., NeurIPS 2020). When every
patient differs, each anchor has exactly one positive and the loss is NT-Xent. (The CLOCS reference code
contrasts view 1 against view 2 only; this version also uses within-view negatives, like NT-Xent.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgcl.interfaces import Loss
from ecgcl.plugins.losses.similarity import as_patient_ids, check_temperature, check_views, pair_logits


class ClocsPatientLoss(Loss):
    """CLOCS patient-aware contrastive loss: all views of the same patient are positives (Kiyasseh et al., 2021)."""

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = check_temperature("clocs_patient", temperature)

    def forward(self, z1: Tensor, z2: Tensor, patient_ids: Tensor | None = None) -> Tensor:
        """Scalar float32 loss; without `patient_ids` every recording is its own patient (NT-Xent)."""
        check_views("clocs_patient", z1, z2)
        pairs = pair_logits(z1, z2, self.temperature)
        b = pairs.local
        if patient_ids is None:  # every recording of the global batch is its own patient
            every = torch.arange(pairs.total, device=z1.device)
        else:
            every = as_patient_ids("clocs_patient", patient_ids, b, z1.device)
        mine = every[pairs.positive_view[b:]]  # the local recordings' ids, in global-batch order
        anchor_ids = torch.cat([mine, mine])
        candidate_ids = torch.cat([every, every])
        positives = (anchor_ids.unsqueeze(1) == candidate_ids.unsqueeze(0)) & ~pairs.self_mask
        log_prob = torch.log_softmax(pairs.logits, dim=1)
        positive_log_prob = torch.where(positives, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
        return -(positive_log_prob / positives.sum(dim=1)).mean()

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


__all__ = ["ClocsPatientLoss"]
