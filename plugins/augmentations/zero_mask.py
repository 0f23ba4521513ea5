"""`zero_mask`: set one run of consecutive samples to zero, at a random position per sample or lead.

The "masking" transformation of Mehari & Strodthoff, "Self-supervised representation learning from 12-lead
ECG data" (2022), akin to cutout for images (DeVries & Taylor, 2017).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgcl.interfaces import Augmentation
from ecgcl.plugins.augmentations._common import check_mode, check_fraction, draw_leads, uniform


class ZeroMask(Augmentation):
    """Zero one run of round(fraction * T) consecutive samples at a random position.

    `fraction` is in [0, 1). `mode="sample"` (default) masks the same time span in all leads of a sample
    (lead-consistent, like a gap in the recording), `mode="lead"` places the run per lead.
    """

    name = "zero_mask"

    def __init__(self, fraction: float = 0.1, mode: str = "sample") -> None:
        self.fraction = check_fraction(self.name, "fraction", fraction)
        self.mode = check_mode(self.name, mode)

    def starts(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        """Where each zeroed run begins: int64 `(B, 1 or L, 1)`, uniform in [0, T - run]."""
        b, leads, t = batch.shape
        run = round(self.fraction * t)
        return (uniform((b, draw_leads(self.mode, leads), 1), generator, batch) * (t - run + 1)).long()

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        self.check_input(batch, generator)
        run = round(self.fraction * batch.shape[-1])
        run_index = self.starts(batch, generator) + torch.arange(run, device=batch.device)  # (B, 1 or L, run)
        # Copy once and write zeros over the run only (cheaper than building a full-size mask).
        return batch.clone().scatter_(-1, run_index.expand(*batch.shape[:-1], run), 0)
