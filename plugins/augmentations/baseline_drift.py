"""`baseline_drift`: add slow sinusoidal baseline wander, as respiration and electrode motion cause.

Baseline wander lies below about 0.5 Hz (Clifford, Azuaje & McSharry, "Advanced Methods and Tools for ECG
Data Analysis", 2006, ch. 3; the `bw` record of the MIT-BIH Noise Stress Test Database, Moody, Muldrow &
Mark, 1984). The amplitude is relative to each lead's standard deviation, like `noise`, so it means the
same on stores in mV and on per-lead normalised stores; `fs` (set by the runtime from the store) turns
the frequencies in Hz into samples.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ecgcl.errors import EcgclError
from ecgcl.interfaces import Augmentation
from ecgcl.plugins.augmentations._common import check_mode, check_nonnegative, draw_leads, lead_std, uniform, work_dtype


class BaselineDrift(Augmentation):
    """Add `amplitude` x lead std x sin(2 pi f t + phase), f uniform in [min_hz, max_hz] Hz.

    `mode="sample"` (default) draws one frequency and phase per sample, shared by its leads (one breathing
    rhythm); `mode="lead"` draws them per lead. `fs` is the sampling rate in Hz.
    """

    name = "baseline_drift"

    def __init__(self, amplitude: float = 0.5, min_hz: float = 0.05, max_hz: float = 0.5, mode: str = "sample",
                 fs: float = 100.0) -> None:
        self.amplitude = check_nonnegative(self.name, "amplitude", amplitude)
        self.min_hz = check_nonnegative(self.name, "min_hz", min_hz)
        self.max_hz = check_nonnegative(self.name, "max_hz", max_hz)
        self.fs = check_nonnegative(self.name, "fs", fs)
        if not 0 < self.min_hz <= self.max_hz < self.fs / 2:
            raise EcgclError(f"augmentation {self.name!r}: needs 0 < min_hz <= max_hz < fs/2, got min_hz="
                             f"{min_hz}, max_hz={max_hz}, fs={fs}")
        self.mode = check_mode(self.name, mode)

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        self.check_input(batch, generator)
        b, leads, t = batch.shape
        shape = (b, draw_leads(self.mode, leads), 1)
        freq = self.min_hz + (self.max_hz - self.min_hz) * uniform(shape, generator, batch)
        phase = 2 * math.pi * uniform(shape, generator, batch)
        seconds = torch.arange(t, device=batch.device, dtype=work_dtype(batch.dtype)) / self.fs
        drift = torch.sin(2 * math.pi * freq * seconds + phase)
        work = batch.to(work_dtype(batch.dtype))
        sigma = lead_std(work)
        return torch.addcmul(work, drift, sigma * self.amplitude).to(batch.dtype)
