"""Input representations: raw time samples or the FFT magnitude spectrum.

The frequency-domain option follows the origin of this project, which fed the magnitude of each lead's
real FFT to the encoder. It is applied after augmentation, so views are drawn in time and compared in
frequency.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgcl.config import INPUTS
from ecgcl.errors import EcgclError


def represent(batch: Tensor, representation: str) -> Tensor:
    """(B, L, T) time samples -> the encoder's input: unchanged, or (B, L, T//2 + 1) |rfft| per lead."""
    if representation == "time":
        return batch
    if representation == "fft":
        return torch.fft.rfft(batch, dim=-1).abs()
    raise EcgclError(f"unknown input representation {representation!r}; choose from {', '.join(INPUTS)}")


def represented_length(length: int, representation: str) -> int:
    """The length of `represent` output for time-domain inputs of `length` samples."""
    return length if representation == "time" else length // 2 + 1
