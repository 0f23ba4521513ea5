"""Built-in augmentations: six vectorised `(B, L, T)` transforms drawn from an explicit `torch.Generator`.

Each class is its own factory: its keyword parameters are what `ecgcl list-plugins` shows and what
`--aug permute:segments=5` sets (see `ecgcl.compose`).
"""

from __future__ import annotations

import ecgcl
from ecgcl.plugins.augmentations.clocs import Clocs
from ecgcl.plugins.augmentations.dropout import Dropout
from ecgcl.plugins.augmentations.noise import Noise
from ecgcl.plugins.augmentations.permute import Permute
from ecgcl.plugins.augmentations.time_warp import TimeWarp
from ecgcl.plugins.augmentations.zero_mask import ZeroMask

BUILTIN_AUGMENTATIONS = (TimeWarp, Permute, ZeroMask, Dropout, Noise, Clocs)


@ecgcl.hookimpl
def register_augmentations(registry):
    """Register time_warp, permute, zero_mask, dropout, noise and clocs."""
    for factory in BUILTIN_AUGMENTATIONS:
        registry.add(factory.name, factory, kind="augmentation")


__all__ = ["Clocs", "Dropout", "Noise", "Permute", "TimeWarp", "ZeroMask", "register_augmentations"]
