"""`lead_mask`: zero a random subset of whole leads per sample, so an encoder learns to work without them.

Random lead masking for contrastive pretraining, as in the CMLC views of Kiyasseh et al., "CLOCS:
Contrastive Learning of Cardiac Signals Across Space, Time, and Patients" (ICML 2021) and the lead-wise
masking of Na et al., "Guiding Masked Representation Learning to Capture Spatio-Temporal Relationship of
Electrocardiogram" (ST-MEM, ICLR 2024). An encoder pretrained with it can be fine-tuned on a store with fewer
leads with `--missing-leads zero` (the default for such encoders).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ecgcl.errors import EcgclError
from ecgcl.interfaces import Augmentation
from ecgcl.plugins.augmentations._common import check_int, uniform

LIMB_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF")


class LeadMask(Augmentation):
    """Zero whole leads at random, each sample drawing its own subset; at least one lead always stays.

    `p` is the probability that a lead is zeroed (independently per sample and lead; a sample that would
    lose every lead keeps one at random). `keep=k` instead keeps exactly k random leads per sample.
    `keep_limb=true` makes sure one limb lead (I, II, III, aVR, aVL, aVF) stays. `leads` (the lead names,
    set by the runtime from the store; the standard 12-lead order when absent) finds the limb leads.
    """

    name = "lead_mask"
    masks_leads = True  # an encoder pretrained with it gets `--missing-leads zero` by default

    def __init__(self, p: float = 0.5, keep: int | None = None, keep_limb: bool = False,
                 leads: Sequence[str] | None = None) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= float(p) <= 1.0:
            raise EcgclError(f"augmentation {self.name!r}: p must be a number in [0, 1], got {p!r}")
        self.p = float(p)
        self.keep = None if keep is None else check_int(self.name, "keep", keep, minimum=1)
        if not isinstance(keep_limb, bool):
            raise EcgclError(f"augmentation {self.name!r}: keep_limb must be true or false, got {keep_limb!r}")
        self.keep_limb = keep_limb
        self.leads = None if leads is None else tuple(str(n) for n in leads)

    def pool(self, leads: int, device: torch.device) -> Tensor:
        """Bool `(L,)`: the leads one of which always stays (the limb leads with `keep_limb`, else all)."""
        if not self.keep_limb:
            return torch.ones(leads, dtype=torch.bool, device=device)
        from ecgcl.data.leads import STANDARD_LEADS, normalise_lead_name

        names = self.leads or (STANDARD_LEADS if leads == len(STANDARD_LEADS) else None)
        if names is None or len(names) != leads:
            raise EcgclError(f"augmentation {self.name!r}: keep_limb needs the names of the {leads} leads")
        limb = torch.tensor([normalise_lead_name(n) in LIMB_LEADS for n in names], device=device)
        if not limb.any():
            raise EcgclError(f"augmentation {self.name!r}: keep_limb, but none of {','.join(names)} is a limb lead")
        return limb

    def kept(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        """Bool `(B, L)`: which leads of each sample stay."""
        b, leads, _ = batch.shape
        if self.keep is not None and self.keep > leads:
            raise EcgclError(f"augmentation {self.name!r}: keep={self.keep} but the batch has only {leads} leads")
        pool = self.pool(leads, batch.device)
        # one random lead of the pool per sample: the lead that always stays
        pick = uniform((b, leads), generator, batch).masked_fill(~pool, -1.0).argmax(dim=1, keepdim=True)
        forced = torch.zeros(b, leads, dtype=torch.bool, device=batch.device).scatter_(1, pick, True)
        scores = uniform((b, leads), generator, batch)
        if self.keep is not None:  # the k smallest scores stay; the forced lead gets the smallest
            ranks = scores.masked_fill(forced, -1.0).argsort(dim=1).argsort(dim=1)
            return ranks < self.keep
        kept = scores >= self.p
        return kept | (forced & ~(kept & pool).any(dim=1, keepdim=True))

    def __call__(self, batch: Tensor, generator: torch.Generator) -> Tensor:
        self.check_input(batch, generator)
        return batch.masked_fill(~self.kept(batch, generator)[:, :, None], 0)
