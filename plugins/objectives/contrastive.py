"""`contrastive`: two augmented views -> encoder -> projection head -> the `--loss` (SimCLR, Chen et al., ICML 2020;
with `--loss clocs_patient` and `--aug clocs:...` the patient-aware CLOCS of Kiyasseh et al., ICML 2021).

The seed's objective: `--aug` draws both views from the batch's generator, each view goes through the encoder
on its own (batch-norm statistics of one view), and the loss compares the projections in float32 outside
autocast. The projection head is trained with the encoder and dropped after pretraining. Without `--aug` the two
views are two segments of the same recording (`clocs`, cmsc), which tuning on validation chose over
permute+noise (benchmarks/tuned_objectives.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgcl.engine.heads import ProjectionHead
from ecgcl.interfaces import Objective


class Contrastive(Objective):
    """SimCLR-style objective around any registered contrastive `Loss`."""

    takes_loss = True
    default_aug = "clocs"  # --aug when not given: CLOCS segment views (cmsc), docs/objectives.md "Tuned objectives"
    two_views = True

    def __init__(self, embed_dim: int, augmentation, loss, projection_dim: int = 64) -> None:
        super().__init__()
        self.projection = ProjectionHead(embed_dim, embed_dim, projection_dim)
        self.augmentation, self.loss = augmentation, loss

    def draws(self, encoder, batch: Tensor, generator: torch.Generator) -> dict:
        """The two views of `batch` (`--aug`'s `views`), drawn from `generator`."""
        return {"views": self.augmentation.views(batch, generator)}

    def forward(self, encoder, batch: Tensor, patient_ids: Tensor, generator: torch.Generator) -> Tensor:
        view1, view2 = self.draws(encoder, batch, generator)["views"]
        z1, z2 = self.projection(encoder.embed(view1)), self.projection(encoder.embed(view2))
        with torch.autocast(device_type=z1.device.type, enabled=False):
            return self.loss(z1.float(), z2.float(), patient_ids=patient_ids)


__all__ = ["Contrastive"]
