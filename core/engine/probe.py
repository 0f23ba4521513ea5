"""The linear probe: an L2-regularised logistic regression on frozen, standardised encoder features, solved to
convergence with L-BFGS (scikit-learn), its regularisation strength chosen on the validation records.

This is the linear evaluation protocol of the representation-learning literature (Kolesnikov et al., CVPR 2019;
SimCLR, Chen et al., ICML 2020: logistic regression on frozen features, L2 weight chosen on validation).
A head trained for a few epochs of SGD under-estimates every encoder, random features most, so paired
"pretrained - random" differences from such a head are artefacts; this probe is the same convex problem
solved to its optimum for every encoder.

Binary and multi-label targets get one-vs-rest logistic regressions (one per output), multi-class targets a
multinomial one. The probe is a linear map of the raw features, so it folds into the classifier's linear head
(`folded`), and `evaluate`, `embed` and the robustness report use it unchanged.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

C_GRID = tuple(10.0 ** k for k in range(-4, 3))  # inverse L2 strength C: 1e-4 .. 1e2
MAX_ITER = 1000  # L-BFGS iterations per fit; a fit that needs more says so (`converged`)
TOLERANCE = 1e-6  # L-BFGS gradient tolerance, tighter than scikit-learn's default 1e-4: solved, not approximate
ABSENT_LOGIT = -30.0  # a multi-class class no training record has: probability ~1e-13


@dataclass
class LinearProbe:
    """A fitted probe: standardisation of the features, then `coef @ z + intercept` (one row per output)."""

    mean: np.ndarray  # (D,) training features' mean
    std: np.ndarray  # (D,) training features' std (1 where a feature is constant)
    coef: np.ndarray  # (outputs, D), on standardised features
    intercept: np.ndarray  # (outputs,)
    c: float  # the chosen inverse regularisation strength
    softmax: bool  # multinomial (multi-class) instead of one sigmoid per output
    converged: bool  # every fit of the chosen C stopped before MAX_ITER
    iterations: int  # the most L-BFGS iterations any fit of the chosen C took
    grid: list[dict[str, Any]] = field(default_factory=list)  # per C: validation AUROC, converged

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(N, D) raw features -> (N, outputs) logits."""
        return ((np.asarray(features, dtype=np.float64) - self.mean) / self.std) @ self.coef.T + self.intercept

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """As `ecgcl.engine.model.probabilities`: (N,) for one output, else (N, outputs)."""
        from scipy.special import expit, softmax

        logits = self.logits(features)
        if self.softmax:
            return softmax(logits, axis=1)
        probs = expit(logits)
        return probs[:, 0] if probs.shape[1] == 1 else probs

    def folded(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) of the same map on raw features, for a `nn.Linear` head."""
        weight = self.coef / self.std
        return weight, self.intercept - weight @ self.mean

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> "LinearProbe":
        arrays = {k: np.asarray(saved[k], dtype=np.float64) for k in ("mean", "std", "coef", "intercept")}
        return cls(**{**saved, **arrays})


def standardisation(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of the training features; constant features keep std 1 (they carry nothing)."""
    mean, std = features.mean(axis=0), features.std(axis=0)
    return mean, np.where(std > 1e-12, std, 1.0)


def _fit_one(z: np.ndarray, y: np.ndarray, c: float, max_iter: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One L-BFGS logistic regression: (coef, intercept, classes present, iterations); a target with one class
    present gives a constant model at its smoothed training prevalence."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    classes = np.unique(y)
    if len(classes) < 2:
        prevalence = (float(np.sum(y == 1)) + 0.5) / (len(y) + 1.0)
        return np.zeros((1, z.shape[1])), np.array([math.log(prevalence / (1 - prevalence))]), classes, 0
    model = LogisticRegression(C=c, solver="lbfgs", max_iter=max_iter, tol=TOLERANCE)
    with warnings.catch_warnings():  # reported through `converged`, never printed
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(z, y)
    return model.coef_, model.intercept_, model.classes_, int(np.max(model.n_iter_))


def _fit_at(z: np.ndarray, y: np.ndarray, c: float, *, softmax: bool, num_outputs: int,
            max_iter: int) -> tuple[np.ndarray, np.ndarray, int]:
    """coef (outputs, D), intercept (outputs,) and the most iterations of the fits at one C."""
    if not softmax:
        columns = y.reshape(len(y), -1)
        fits = [_fit_one(z, columns[:, k], c, max_iter) for k in range(columns.shape[1])]
        return (np.concatenate([f[0] for f in fits]), np.concatenate([f[1] for f in fits]),
                max(f[3] for f in fits))
    coef, intercept, classes, iterations = _fit_one(z, y.astype(np.int64), c, max_iter)
    full_coef = np.zeros((num_outputs, z.shape[1]))
    full_intercept = np.full(num_outputs, ABSENT_LOGIT)
    present = classes.astype(np.int64)
    if len(present) == 2:  # scikit-learn gives one row: the logit of the second class against the first
        full_intercept[present] = [0.0, intercept[0]]
        full_coef[present[1]] = coef[0]
    else:
        full_coef[present], full_intercept[present] = coef, intercept
    return full_coef, full_intercept, iterations


def fit_linear_probe(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, *,
                     softmax: bool, num_outputs: int, grid: tuple[float, ...] = C_GRID,
                     max_iter: int = MAX_ITER) -> LinearProbe:
    """Fit a probe for every C of `grid` on the training features and keep the one with the best validation
    AUROC (macro over outputs; ties: the smaller C, i.e. the stronger regularisation)."""
    from ecgcl.metrics import classification_metrics

    train_x, val_x = np.asarray(train_x, dtype=np.float64), np.asarray(val_x, dtype=np.float64)
    mean, std = standardisation(train_x)
    z = (train_x - mean) / std
    best: LinearProbe | None = None
    best_score, path = -math.inf, []
    for c in grid:
        coef, intercept, iterations = _fit_at(z, np.asarray(train_y), c, softmax=softmax, num_outputs=num_outputs,
                                              max_iter=max_iter)
        probe = LinearProbe(mean, std, coef, intercept, float(c), softmax, iterations < max_iter, iterations)
        score = classification_metrics(np.asarray(val_y), probe.probabilities(val_x))["auroc"]
        path.append({"C": float(c), "val_auroc": None if math.isnan(score) else score,
                     "converged": probe.converged, "iterations": iterations})
        if best is None or (not math.isnan(score) and score > best_score):
            best, best_score = probe, (score if not math.isnan(score) else -math.inf)
    best.grid = path
    return best
