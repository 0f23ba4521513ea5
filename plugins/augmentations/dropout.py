"""`dropout`: zero individual samples at random, a given fraction of each lead on average.

Sample-wise dropout as in nn.Dropout but without rescaling (an ECG amplitude keeps its physical meaning);
used as a contrastive view by e.g. Mehari & Strodthoff (2022).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgcl.interfaces import Augmentation
from ecgcl.plugins.augmentations._common import check_mode, check_fraction, draw_leads, uniform


class Dropout(Augmentation):
    """Zero each sample independently with probability `fraction`, without rescaling.

    `fraction` is in [0, 1); about that share of every lead is zeroed. `mode="lead"` (default) draws the
    zeroed positions per lead; `mode="sample"` zeroes the same time points in all leads of a sample
    (lead-consistent, like samples lost by the acquisition).
    """

    name = "dropout"

    def __init__(self, fraction: float = 0.1, mode: str = "lead") -> None:
        self.fraction = check_fraction(self.name, "fraction", fraction)
        self.mode = check_mode(self.name, mode)

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        self.check_input(batch, generator)
        b, leads, t = batch.shape
        dropped = uniform((b, draw_leads(self.mode, leads), t), generator, batch) < self.fraction
        return batch.masked_fill(dropped, 0)
