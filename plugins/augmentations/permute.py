"""`permute`: cut each lead into m segments and put them back in a random order.

The segment-permutation transformation of Mehari & Strodthoff, "Self-supervised representation learning
from 12-lead ECG data" (Computers in Biology and Medicine, 2022).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgcl.interfaces import Augmentation
from ecgcl.plugins.augmentations._common import (
    check_mode,
    check_int,
    check_length,
    draw_leads,
    random_permutations,
)


class Permute(Augmentation):
    """Cut each lead into `segments` contiguous pieces and shuffle them.

    The multiset of pieces is kept exactly. `segments` need not divide the length: piece k spans
    [floor(kT/m), floor((k+1)T/m)), so lengths differ by at most one. `mode="sample"` (default) applies one
    order to all leads of a sample (lead-consistent), `mode="lead"` shuffles every lead on its own.
    """

    name = "permute"

    def __init__(self, segments: int = 5, mode: str = "sample") -> None:
        self.segments = check_int(self.name, "segments", segments, minimum=1)
        self.mode = check_mode(self.name, mode)

    def source_indices(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        """For every output sample, the input sample it copies: int64 `(B, 1 or L, T)`."""
        b, leads, t = batch.shape
        m, device = self.segments, batch.device
        rows = draw_leads(self.mode, leads)
        bounds = torch.div(torch.arange(m + 1, device=device) * t, m, rounding_mode="floor")  # (m+1,)
        starts, lengths = bounds[:-1], bounds[1:] - bounds[:-1]
        order = random_permutations((b, rows), m, generator, batch)  # output piece j is input piece order[j]
        out_lengths = lengths[order]  # (b, rows, m)
        out_starts = torch.cumsum(out_lengths, dim=-1) - out_lengths
        shift = starts[order] - out_starts  # output sample u of piece j reads input sample u + shift[j]
        total = b * rows * t
        shifts = shift.flatten().repeat_interleave(out_lengths.flatten(), output_size=total).view(b, rows, t)
        return shifts.add_(torch.arange(t, device=device))

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        self.check_input(batch, generator)
        check_length(self.name, "segments", self.segments, batch.shape[-1])
        b, leads, t = batch.shape
        if t % self.segments == 0:  # equal pieces: copy whole pieces as rows, no per-sample index is built
            m, piece = self.segments, t // self.segments
            order = random_permutations((b, draw_leads(self.mode, leads)), m, generator, batch)  # (b, 1 or L, m)
            # row k of the (b * leads * m, piece) view is piece k % m of lead k // m; index_select copies whole
            # contiguous rows (6x faster than a gather over an expanded index on CPU at 12 x 5000)
            rows = torch.arange(b * leads, device=batch.device).view(b, leads, 1) * m + order
            return batch.reshape(b * leads * m, piece).index_select(0, rows.flatten()).view(b, leads, t)
        index = self.source_indices(batch, generator)
        return torch.gather(batch, -1, index.expand(batch.shape))
