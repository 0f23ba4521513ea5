"""Built-in pretraining monitors (registered by the plugin manager): `rankme` (effective rank and the smallest
per-dimension std of the embeddings: collapse), `knn` (k-NN AUROC on validation), `probe` (converged linear
probe AUROC on validation) and `align_uniform` (alignment and uniformity of two views). Each computes its figures
from `ecgcl.engine.monitoring.MonitorInputs`: embeddings of fixed record subsets, never test records."""

from __future__ import annotations

from ecgcl.hookspecs import hookimpl
from ecgcl.plugins.monitors.align_uniform import AlignUniform
from ecgcl.plugins.monitors.knn import KNN
from ecgcl.plugins.monitors.probe import Probe
from ecgcl.plugins.monitors.rankme import RankMe


@hookimpl
def register_monitors(registry):
    registry.add("rankme", RankMe, kind="monitor")
    registry.add("knn", KNN, kind="monitor")
    registry.add("probe", Probe, kind="monitor")
    registry.add("align_uniform", AlignUniform, kind="monitor")


__all__ = ["KNN", "AlignUniform", "Probe", "RankMe", "register_monitors"]
