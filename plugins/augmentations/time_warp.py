"""`time_warp`: stretch a random half of m segments and squeeze the other half, keeping length and endpoints.

After Um et al., "Data augmentation of wearable sensor data" (ICMI 2017) as used for ECG by
Mehari & Strodthoff, "Self-supervised representation learning from 12-lead ECG data" (2022).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ecgcl.errors import EcgclError
from ecgcl.interfaces import Augmentation
from ecgcl.plugins.augmentations._common import (
    check_mode,
    check_fraction,
    check_int,
    check_length,
    draw_leads,
    random_permutations,
    work_dtype,
)


class TimeWarp(Augmentation):
    """Stretch a random half of `segments` pieces and squeeze the rest; length and endpoints are kept.

    Each lead is split into m = `segments` equal pieces; m/2 of them, drawn at random, are stretched by
    (1 + stretch) and the others squeezed by (1 - stretch). The two halves add up to the original length, so
    the warped signal is resampled (linear interpolation) back onto T samples with its first and last
    samples unchanged. `segments` must be even; `stretch` is in [0, 1). `mode="sample"` (default) warps all
    leads of a sample alike (lead-consistent), `mode="lead"` draws the stretched half per lead.
    """

    name = "time_warp"

    def __init__(self, segments: int = 4, stretch: float = 0.25, mode: str = "sample") -> None:
        self.segments = check_int(self.name, "segments", segments, minimum=2)
        if segments % 2:
            raise EcgclError(f"augmentation 'time_warp': segments must be even, got {segments}")
        self.stretch = check_fraction(self.name, "stretch", stretch)
        self.mode = check_mode(self.name, mode)

    def _lines(self, batch: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """The warp as m lines per row: slope and offset `(B, rows, m)` and how many output samples each covers."""
        b, leads, t = batch.shape
        m, dtype, device = self.segments, work_dtype(batch.dtype), batch.device
        rows = draw_leads(self.mode, leads)
        # A random half of the segments is stretched: rank < m/2 in a random permutation.
        stretched = random_permutations((b, rows), m, generator, batch) < m // 2
        scale = torch.where(stretched, 1.0 + self.stretch, 1.0 - self.stretch).to(dtype)  # (b, rows, m)
        width = (t - 1) / m  # index-space width of one input segment, so both endpoints map exactly
        out_knots = torch.zeros(b, rows, m + 1, dtype=dtype, device=device)
        out_knots[..., 1:] = torch.cumsum(scale * width, dim=-1)
        out_knots[..., -1] = t - 1  # remove rounding drift: the warp ends where the signal ends
        # On output segment k the source position is out_pos * slope_k + offset_k (a line through its knots);
        # output samples u with out_knots[k] <= u < out_knots[k + 1] lie on segment k.
        slope = 1.0 / scale
        offset = torch.arange(m, dtype=dtype, device=device) * width - out_knots[..., :-1] * slope
        first_sample = out_knots.ceil()
        first_sample[..., -1] = t
        return slope, offset, first_sample.diff(dim=-1).long()

    @staticmethod
    def _spread(slope: Tensor, offset: Tensor, counts: Tensor, length: int) -> Tensor:
        """Evaluate the lines at every output sample: each line is spread over its samples (one pass, no search)."""
        b, rows, _ = slope.shape
        flat, total = counts.flatten(), b * rows * length
        slopes = slope.flatten().repeat_interleave(flat, output_size=total).view(b, rows, length)
        offsets = offset.flatten().repeat_interleave(flat, output_size=total).view(b, rows, length)
        return torch.addcmul(offsets, slopes, torch.arange(length, dtype=slope.dtype, device=slope.device))

    def source_positions(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        """For every output sample, the (fractional) input position it reads: `(B, 1 or L, T)`."""
        t = batch.shape[-1]
        return self._spread(*self._lines(batch, generator), t).clamp_(0, t - 1)

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        self.check_input(batch, generator)
        t = batch.shape[-1]
        check_length(self.name, "segments", self.segments, t)
        slope, offset, counts = self._lines(batch, generator)
        to_grid = 2.0 / max(t - 1, 1)  # grid_sample reads positions normalised to [-1, 1]
        grid_x = self._spread(slope * to_grid, offset * to_grid - 1.0, counts, t)
        return resample(batch, grid_x)


def resample(batch: Tensor, grid_x: Tensor) -> Tensor:
    """Linear interpolation of `batch` (B, L, T) at positions `grid_x` (B, 1 or L, T) normalised to [-1, 1].

    Uses `grid_sample` (one optimised kernel; positions past either end read the end sample): positions shared
    by all leads form one grid per sample, otherwise every lead is its own image. Half-precision batches are
    interpolated in float32. In float32, positions are exact to about T * 1e-7 samples; the first and last
    samples are kept exactly.
    """
    b, leads, t = batch.shape
    work = batch if batch.dtype in (torch.float32, torch.float64) else batch.float()
    rows = grid_x.shape[1]
    grid = torch.zeros(b * rows, 1, t, 2, dtype=work.dtype, device=batch.device)
    grid[..., 0] = grid_x.reshape(b * rows, 1, t)
    images = work.reshape(b, leads, 1, t) if rows == 1 else work.reshape(b * leads, 1, 1, t)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(b, leads, t).to(batch.dtype)
