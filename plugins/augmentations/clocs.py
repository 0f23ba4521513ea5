"""`clocs`: the view strategies of CLOCS (Kiyasseh, Zhu & Clifton, "CLOCS: Contrastive Learning of Cardiac
Signals Across Space, Time, and Patients", ICML 2021).

- CMSC (contrastive multi-segment coding): two non-overlapping, temporally adjacent segments of one
  recording are the two views;
- CMLC (contrastive multi-lead coding): two disjoint groups of leads of one recording are the two views;
- CMSMLC: both at once (segment one with lead group one, segment two with lead group two).
Together with the patient-aware loss (recordings of one patient are positives, the loss's `patient_ids`),
this gives the full CLOCS objective; this module only forms the views.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ecgcl.errors import EcgclError
from ecgcl.interfaces import Augmentation
from ecgcl.plugins.augmentations._common import check_choice, check_int, random_permutations, uniform

STRATEGIES = ("cmsc", "cmlc", "cmsmlc")


class Clocs(Augmentation):
    """CLOCS views of one recording: segments (cmsc), lead groups (cmlc) or both (cmsmlc).

    View shapes, chosen so that one encoder built for a fixed lead count and length sees both views:
    - cmsc:   (B, L, S), S = `segment_length` (default T // 2): two adjacent segments starting at a random
              offset in [0, T - 2S], in random order per sample;
    - cmlc:   (B, L, T): a random set of round(lead_fraction * L) leads (at least 1, at most L - 1) is kept
              in view one and the complementary leads in view two; the leads not kept are zeroed, so
              the lead axis keeps its meaning (lead i is always channel i);
    - cmsmlc: (B, L, S): the segments of cmsc, each with one of the lead groups of cmlc.
    Called on its own (`aug(batch, g)`) it returns the first view, so it can stand anywhere a single
    transform is expected; contrastive training uses `views`.
    """

    name = "clocs"
    pairs_views = True

    def __init__(self, strategy: str = "cmsc", segment_length: int | None = None, lead_fraction: float = 0.5) -> None:
        self.strategy = check_choice(self.name, "strategy", strategy, STRATEGIES)
        if segment_length is not None:
            segment_length = check_int(self.name, "segment_length", segment_length, minimum=1)
        self.segment_length = segment_length
        if isinstance(lead_fraction, bool) or not isinstance(lead_fraction, (int, float)) or not 0 < lead_fraction < 1:
            raise EcgclError(f"augmentation 'clocs': lead_fraction must be a number in (0, 1), got {lead_fraction!r}")
        self.lead_fraction = float(lead_fraction)

    @property
    def temporal(self) -> bool:
        return self.strategy in ("cmsc", "cmsmlc")

    @property
    def spatial(self) -> bool:
        return self.strategy in ("cmlc", "cmsmlc")

    def segment(self, length: int) -> int:
        """The length of one view in samples for a recording of `length` samples."""
        if not self.temporal:
            return length
        segment = self.segment_length or length // 2
        if segment < 1 or 2 * segment > length:
            raise EcgclError(
                f"augmentation 'clocs': segment_length {segment} is too long; two segments need {2 * segment} "
                f"samples but the signal has only {length}"
            )
        return segment

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (*shape[:-1], self.segment(shape[-1]))

    def views(self, batch: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """The two views of every recording (see the class docstring for their shapes)."""
        self.check_input(batch, generator)
        first, second = batch, batch
        if self.temporal:
            first, second = self._segments(batch, generator)
        if self.spatial:
            keep_first = self._lead_group(batch, generator)
            first, second = first.masked_fill(~keep_first, 0), second.masked_fill(keep_first, 0)
        return first, second

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        return self.views(batch, generator)[0]

    def _segments(self, batch: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two adjacent, non-overlapping segments per recording, in a random order per recording."""
        b, _, t = batch.shape
        s = self.segment(t)
        offset = (uniform((b,), generator, batch) * (t - 2 * s + 1)).long()
        swap = (uniform((b,), generator, batch) < 0.5).long()
        windows = batch.unfold(-1, s, 1)  # (B, L, T - s + 1, s): every window of s samples, without a copy
        recording = torch.arange(b, device=batch.device)
        first = windows[recording, :, offset + swap * s]  # (B, L, s): one window per recording
        second = windows[recording, :, offset + (1 - swap) * s]
        return first, second

    def _lead_group(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        """Boolean `(B, L, 1)`: True for the leads of view one; view two gets the others."""
        b, leads, _ = batch.shape
        if leads < 2:
            raise EcgclError(f"augmentation 'clocs': strategy {self.strategy!r} needs at least 2 leads, got {leads}")
        size = min(max(round(self.lead_fraction * leads), 1), leads - 1)
        ranks = random_permutations((b,), leads, generator, batch)
        return (ranks < size).unsqueeze(-1)
