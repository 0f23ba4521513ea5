"""`rankme`: the effective rank of the embeddings (Garrido, Balestriero, Najman & LeCun, "RankMe: Assessing the
downstream performance of pretrained self-supervised representations by their rank", ICML 2023), and the smallest and
largest per-dimension standard deviations (a collapsed dimension has 0; a constant representation has all below
1e-4).

RankMe(Z) = exp(-sum_k p_k log p_k), p_k = s_k / sum_j s_j + eps (eps 1e-7), over the singular values s_k of
the (N, D) embedding matrix of a fixed sample of the pretraining pool. It lies in [1, min(N, D)]: about 1 where
every record maps to one direction (collapse), min(N, D) for isotropic embeddings. Needs no labels.
"""

from __future__ import annotations

import numpy as np

from ecgcl.errors import require_positive_ints
from ecgcl.interfaces import Monitor

EPS = 1e-7  # the paper's


def rankme(embeddings: np.ndarray, eps: float = EPS) -> float:
    """The RankMe effective rank of an (N, D) matrix (not centred, as in the paper)."""
    matrix = np.asarray(embeddings, dtype=np.float64)
    if not np.isfinite(matrix).all():
        return float("nan")
    try:
        singular = np.linalg.svd(matrix, compute_uv=False)
    except np.linalg.LinAlgError:  # LAPACK gives up on some huge but finite matrices (a diverging encoder)
        return float("nan")
    p = singular / max(float(singular.sum()), np.finfo(np.float64).tiny) + eps
    return float(np.exp(-np.sum(p * np.log(p))))


class RankMe(Monitor):
    """RankMe effective rank and smallest per-dimension std of the embeddings of the first `max_records`
    records of the pool (a fixed random sample), the same records every epoch."""

    name = "rankme"
    primary = "rankme"
    needs_labels = False
    higher_is_better = True

    def __init__(self, max_records: int = 1024) -> None:
        require_positive_ints("rankme", max_records=max_records)
        self.max_records = max_records

    def __call__(self, inputs) -> dict[str, float]:
        rows = np.asarray(inputs.pool)[: self.max_records]
        if len(rows) == 0:
            return {"rankme": float("nan"), "min_std": float("nan"), "max_std": float("nan")}
        z = np.asarray(inputs.embed(rows), dtype=np.float64)
        std = z.std(axis=0)
        return {"rankme": rankme(z), "min_std": float(std.min()), "max_std": float(std.max())}


__all__ = ["RankMe", "rankme"]
