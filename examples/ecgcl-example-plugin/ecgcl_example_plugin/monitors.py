"""`embedding_norm`: the mean L2 norm of the encoder's embeddings of a fixed sample of the pretraining pool.

A cheap, label-free health figure for pretraining: norms that shrink towards 0 or keep growing signal a
degenerate or drifting representation before a downstream metric can (a plain diagnostic, not a figure from a
paper; RankMe, Garrido et al. ICML 2023, is the built-in label-free one). It shows how a third-party plugin adds a
`Monitor`: compute from `ecgcl.engine.monitoring.MonitorInputs`, return named figures, declare what it needs as
attributes.
"""

from __future__ import annotations

import numpy as np

from ecgcl.errors import require_positive_ints
from ecgcl.interfaces import Monitor


class EmbeddingNorm(Monitor):
    """Mean L2 norm of the embeddings of the first `max_records` records of `inputs.pool` (a fixed random sample,
    the same records every epoch); NaN when the pool is empty."""

    name = "embedding_norm"
    primary = "embedding_norm"
    needs_labels = False
    higher_is_better = True

    def __init__(self, max_records: int = 256) -> None:
        require_positive_ints("embedding_norm", max_records=max_records)
        self.max_records = max_records

    def __call__(self, inputs) -> dict[str, float]:
        rows = np.asarray(inputs.pool)[: self.max_records]
        if len(rows) == 0:
            return {"embedding_norm": float("nan")}
        z = np.asarray(inputs.embed(rows), dtype=np.float64)
        return {"embedding_norm": float(np.linalg.norm(z, axis=1).mean())}


__all__ = ["EmbeddingNorm"]
