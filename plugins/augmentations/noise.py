"""`noise`: add Gaussian noise whose standard deviation is a fraction of each lead's own.

Scaling to the lead's standard deviation keeps the signal-to-noise ratio the same for leads of very
different amplitude (e.g. aVR versus V2); cf. the Gaussian-noise view of Mehari & Strodthoff (2022).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgcl.interfaces import Augmentation
from ecgcl.plugins.augmentations._common import check_nonnegative, lead_std, work_dtype


class Noise(Augmentation):
    """Add Gaussian noise with `std` times each lead's own standard deviation.

    The noise is N(0, (std * sigma_lead)^2), sigma_lead the standard deviation of that lead over time.
    Noise is drawn independently for every sample, lead and time point; `std` >= 0 is relative
    (0.05 means a noise level of 5% of the lead's standard deviation, an SNR of 26 dB).
    """

    name = "noise"

    def __init__(self, std: float = 0.05) -> None:
        self.std = check_nonnegative(self.name, "std", std)

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        self.check_input(batch, generator)
        dtype = batch.dtype if batch.dtype in (torch.float32, torch.float64) else work_dtype(batch.dtype)
        noise = torch.randn(batch.shape, generator=generator, device=batch.device, dtype=dtype)
        work = batch.to(dtype)
        sigma = lead_std(work)
        return torch.addcmul(work, noise, sigma * self.std).to(batch.dtype)
