"""Built-in pretraining objectives (registered by the plugin manager): `contrastive` (SimCLR / CLOCS views and a
`--loss`), `cpc` (contrastive predictive coding), `byol` (momentum target, no negatives), `vicreg`
(variance-invariance-covariance), `masked` (ST-MEM masked signal modelling) and `jepa` (ECG-JEPA latent
prediction); the last two need a token encoder such as `patch_transformer`. `ema` holds the momentum target that
`byol` and `jepa` share."""

from __future__ import annotations

from ecgcl.hookspecs import hookimpl
from ecgcl.plugins.objectives.byol import BYOL
from ecgcl.plugins.objectives.contrastive import Contrastive
from ecgcl.plugins.objectives.cpc import CPC
from ecgcl.plugins.objectives.jepa import JEPA
from ecgcl.plugins.objectives.masked import MaskedModelling
from ecgcl.plugins.objectives.vicreg import VICReg


@hookimpl
def register_objectives(registry):
    registry.add("contrastive", Contrastive, kind="objective")
    registry.add("cpc", CPC, kind="objective")
    registry.add("byol", BYOL, kind="objective")
    registry.add("vicreg", VICReg, kind="objective")
    registry.add("masked", MaskedModelling, kind="objective")
    registry.add("jepa", JEPA, kind="objective")


__all__ = ["BYOL", "CPC", "Contrastive", "JEPA", "MaskedModelling", "VICReg", "register_objectives"]
