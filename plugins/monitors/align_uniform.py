"""`align_uniform`: alignment and uniformity of L2-normalised embeddings (Wang & Isola, "Understanding
contrastive representation learning through alignment and uniformity on the hypersphere", ICML 2020).

alignment  = mean_i ||f(x_i) - f(x_i')||^alpha          (two augmented views of one record; lower: closer)
uniformity = log mean_{i<j} exp(-t ||f(x_i) - f(x_j)||^2) (first view's embeddings; lower: more uniform)
with the paper's alpha = 2 and t = 2, as its `align_loss` and `uniform_loss` (`torch.pdist`). Computed on the
first `max_records` records of the pool, with views drawn by a fixed generator, so epochs compare; needs the two
views of a two-view objective. Lower is better for both; `alignment` is the primary figure, since uniformity
alone rewards spreading records at random.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.distance import pdist
from scipy.special import logsumexp

from ecgcl.errors import EcgclError, require_positive_ints
from ecgcl.interfaces import Monitor


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def alignment(z1: np.ndarray, z2: np.ndarray, alpha: float = 2.0) -> float:
    """Mean ||z1 - z2||^alpha over rows of two L2-normalised (N, D) arrays."""
    return float(np.mean(np.linalg.norm(z1 - z2, axis=1) ** alpha))


def uniformity(z: np.ndarray, t: float = 2.0) -> float:
    """log of the mean of exp(-t ||z_i - z_j||^2) over pairs i < j (log-sum-exp for stability); NaN below 2 rows."""
    if len(z) < 2:
        return float("nan")
    distances = pdist(z, "sqeuclidean")
    return float(logsumexp(-t * distances) - math.log(len(distances)))


class AlignUniform(Monitor):
    """Alignment (primary; lower is better) and uniformity of two views of the first `max_records` pool
    records, on L2-normalised embeddings."""

    name = "align_uniform"
    primary = "alignment"
    needs_labels = False
    needs_views = True
    higher_is_better = False

    def __init__(self, max_records: int = 512, alpha: float = 2.0, t: float = 2.0) -> None:
        require_positive_ints("align_uniform", max_records=max_records)
        for option, value in (("alpha", alpha), ("t", t)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise EcgclError(f"align_uniform: {option} must be a number > 0, got {value!r}")
        self.max_records, self.alpha, self.t = max_records, float(alpha), float(t)

    def __call__(self, inputs) -> dict[str, float]:
        rows = np.asarray(inputs.pool)[: self.max_records]
        if inputs.views is None or len(rows) == 0:
            return {"alignment": float("nan"), "uniformity": float("nan")}
        z1, z2 = (_unit(z) for z in inputs.views(rows))
        return {"alignment": alignment(z1, z2, self.alpha), "uniformity": uniformity(z1, self.t)}


__all__ = ["AlignUniform", "alignment", "uniformity"]
