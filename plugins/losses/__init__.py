"""Built-in contrastive losses (registered by the plugin manager): `ntxent` and `clocs_patient`.

Both compute similarities in float32 (stable under fp16/bf16 autocast) and gather embeddings across
ranks under torch.distributed, so the effective batch is global.
"""

from __future__ import annotations

from ecgcl.hookspecs import hookimpl
from ecgcl.plugins.losses.clocs import ClocsPatientLoss
from ecgcl.plugins.losses.ntxent import NTXentLoss


@hookimpl
def register_losses(registry):
    registry.add("ntxent", NTXentLoss, kind="loss", aliases=("nt_xent", "simclr"))
    registry.add("clocs_patient", ClocsPatientLoss, kind="loss", aliases=("clocs",))


__all__ = ["ClocsPatientLoss", "NTXentLoss", "register_losses"]
