"""Sanity checks reported with every explanation, so an attribution map is not read when it explains nothing.

- Model randomisation (Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018): every layer of the
  classifier is re-initialised (fixed seed) and the attributions computed again; the Spearman rank correlation
  of the two maps' |window values| must fall. Above `MAX_RANK_CORRELATION` (0.5) the map is about as much a
  property of the input as of what the model learned, and the check fails.
- Deletion (Petsiuk et al., "RISE", BMVC 2018; Samek et al., IEEE TNNLS 2017): the windows with the largest
  attribution are replaced by the low-passed baseline, a growing fraction at a time, and the class probability
  recorded; the same for windows in random orders (fixed seed, averaged). The area under the top-first curve
  must be below the random one: removing what the map calls important must hurt more than removing anything.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

MAX_RANK_CORRELATION = 0.5
DELETION_STEPS = 20
RANDOM_ORDERS = 5


@dataclass
class Checks:
    """The checks of one method's map: rank correlation with the randomised model's map, deletion areas."""

    rank_correlation: float
    deletion_top: list[float] = field(default_factory=list)
    deletion_random: list[float] = field(default_factory=list)
    top_area: float = float("nan")
    random_area: float = float("nan")

    def failures(self) -> list[str]:
        """Why the map is not to be trusted (empty: both checks passed)."""
        found = []
        if self.rank_correlation > MAX_RANK_CORRELATION:
            found.append(f"randomised model gives a similar map (Spearman {self.rank_correlation:.2f} > "
                         f"{MAX_RANK_CORRELATION})")
        if not self.top_area < self.random_area:
            found.append(f"deleting top windows is no worse than random ones (area {self.top_area:.3f} vs "
                         f"{self.random_area:.3f})")
        return found

    @property
    def passed(self) -> bool:
        return not self.failures()


def randomised_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of `model` with every layer that can re-initialise itself (`reset_parameters`) re-initialised."""
    clone = copy.deepcopy(model)
    torch.manual_seed(seed)
    for module in clone.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return clone.eval()


def rank_correlation(original: np.ndarray, randomised: np.ndarray) -> float:
    """Spearman correlation of the two maps' absolute values (0 when either map is constant)."""
    from scipy.stats import spearmanr

    rho = spearmanr(np.abs(original).ravel(), np.abs(randomised).ravel()).statistic
    return 0.0 if not np.isfinite(rho) else float(rho)


@torch.no_grad()
def deletion_curves(score: Callable[[Tensor], Tensor], signal: Tensor, baseline: Tensor, values: np.ndarray,
                    window: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probability after removing 0, 1/`DELETION_STEPS`, ..., all lead x windows ((L, windows) `values`), top
    values first and in `RANDOM_ORDERS` random orders (mean): two curves of `DELETION_STEPS + 1` points."""
    leads, count = values.shape
    total = leads * count
    removed = np.round(np.linspace(0, total, DELETION_STEPS + 1)).astype(int)
    rng = np.random.default_rng(seed)
    orders = [np.argsort(-values.ravel(), kind="stable")] + [rng.permutation(total) for _ in range(RANDOM_ORDERS)]
    rank = np.empty((len(orders), total), dtype=np.int64)
    for i, order in enumerate(orders):
        rank[i, order] = np.arange(total)
    masks = torch.as_tensor(rank[:, None, :] < removed[None, :, None])  # (orders, steps, L * windows)
    masks = masks.reshape(-1, leads, count).repeat_interleave(window, dim=2)[..., : signal.shape[-1]]
    inputs = torch.where(masks.to(signal.device), baseline, signal)
    probs = torch.cat([score(chunk) for chunk in inputs.split(64)]).float().cpu().numpy()
    curves = probs.reshape(len(orders), len(removed))
    return curves[0], curves[1:].mean(axis=0)


def area(curve: np.ndarray) -> float:
    """Area under a curve drawn over the removed fraction 0..1."""
    return float(np.trapezoid(curve, np.linspace(0.0, 1.0, len(curve))))
