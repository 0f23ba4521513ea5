"""Built-in augmentations: eight vectorised `(B, L, T)` transforms drawn from an explicit `torch.Generator`.

Each class is its own factory: its keyword parameters are what `ecgcl list-plugins` shows and what
`--aug permute:segments=5` sets (see `ecgcl.compose`).
"""

from __future__ import annotations

from ecgcl.hookspecs import hookimpl
from ecgcl.plugins.augmentations.baseline_drift import BaselineDrift
from ecgcl.plugins.augmentations.clocs import Clocs
from ecgcl.plugins.augmentations.dropout import Dropout
from ecgcl.plugins.augmentations.lead_mask import LeadMask
from ecgcl.plugins.augmentations.noise import Noise
from ecgcl.plugins.augmentations.permute import Permute
from ecgcl.plugins.augmentations.time_warp import TimeWarp
from ecgcl.plugins.augmentations.zero_mask import ZeroMask

BUILTIN_AUGMENTATIONS = (TimeWarp, Permute, ZeroMask, Dropout, Noise, Clocs, LeadMask, BaselineDrift)


@hookimpl
def register_augmentations(registry):
    """Register time_warp, permute, zero_mask, dropout, noise, clocs, lead_mask and baseline_drift."""
    for factory in BUILTIN_AUGMENTATIONS:
        registry.add(factory.name, factory, kind="augmentation")


__all__ = ["BaselineDrift", "Clocs", "Dropout", "LeadMask", "Noise", "Permute", "TimeWarp", "ZeroMask",
           "register_augmentations"]
