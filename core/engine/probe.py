"""The linear probe: an L2-regularised logistic regression on frozen, standardised encoder features, solved to
convergence with Newton's method (scikit-learn), its regularisation strength chosen on the validation records.

This is the linear evaluation protocol of the representation-learning literature (Kolesnikov et al., CVPR 2019;
SimCLR, Chen et al., ICML 2020: logistic regression on frozen features, L2 weight chosen on validation).
A head trained for a few epochs of SGD under-estimates every encoder, random features most, so paired
"pretrained - random" differences from such a head are artefacts; this probe is the same convex problem
solved to its optimum for every encoder.

Binary and multi-label targets get one-vs-rest logistic regressions (one per output), multi-class targets a
multinomial one. Each is fitted along the C grid from strong to weak regularisation, every fit starting from the
previous solution, with scikit-learn's Newton-Cholesky solver (Newton-CG where the Hessian would be too large):
a few Newton steps solve every C, where L-BFGS ran into its 1,000-iteration limit at weak regularisation on
PTB-XL-sized feature sets (about 1,500 records x 64-512 features). The probe is a linear map of the raw features,
so it folds into the classifier's linear head (`folded`), and `evaluate`, `embed` and the robustness report use
it unchanged.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

C_GRID = tuple(10.0 ** k for k in range(-4, 3))  # inverse L2 strength C: 1e-4 .. 1e2
MAX_ITER = 100  # Newton iterations per fit (a handful suffice); a fit that needs more says so (`converged`)
TOLERANCE = 1e-8  # on the largest gradient entry and the Newton decrement: solved, not approximate
CHOLESKY_MAX_DOF = 4096  # Newton-Cholesky holds a dof x dof Hessian (128 MiB here); more dof: Hessian-free Newton-CG
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
    iterations: int  # the most solver iterations any fit of the chosen C took
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


Fit = tuple[np.ndarray, np.ndarray, np.ndarray, int]  # coef, intercept, classes present, iterations


def _fit_path(z: np.ndarray, y: np.ndarray, grid: tuple[float, ...], max_iter: int) -> list[Fit]:
    """One logistic regression per C of the ascending `grid`, each fit warm-started from the previous one's
    solution; a target with one class present gives a constant model at its smoothed training prevalence."""
    from sklearn.linear_model import LogisticRegression

    classes = np.unique(y)
    if len(classes) < 2:
        prevalence = (float(np.sum(y == 1)) + 0.5) / (len(y) + 1.0)
        constant = (np.zeros((1, z.shape[1])), np.array([math.log(prevalence / (1 - prevalence))]), classes, 0)
        return [constant] * len(grid)
    dof = (z.shape[1] + 1) * (len(classes) if len(classes) > 2 else 1)
    solver = "newton-cholesky" if dof <= CHOLESKY_MAX_DOF else "newton-cg"
    model = LogisticRegression(solver=solver, max_iter=max_iter, tol=TOLERANCE, warm_start=True)
    fits = []
    with warnings.catch_warnings():  # the solvers' convergence and line-search warnings: `converged` reports them
        warnings.simplefilter("ignore")
        for c in grid:
            model.set_params(C=c).fit(z, y)
            fits.append((model.coef_.copy(), model.intercept_.copy(), model.classes_, int(np.max(model.n_iter_))))
    return fits


def _fits_along(z: np.ndarray, y: np.ndarray, grid: tuple[float, ...], *, softmax: bool, num_outputs: int,
                max_iter: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Per C of `grid`: coef (outputs, D), intercept (outputs,) and the most iterations of its fits."""
    if not softmax:
        columns = y.reshape(len(y), -1)
        paths = [_fit_path(z, columns[:, k], grid, max_iter) for k in range(columns.shape[1])]
        return [(np.concatenate([f[0] for f in fits]), np.concatenate([f[1] for f in fits]), max(f[3] for f in fits))
                for fits in zip(*paths)]
    return [_multinomial(fit, num_outputs) for fit in _fit_path(z, y.astype(np.int64), grid, max_iter)]


def _multinomial(fit: Fit, num_outputs: int) -> tuple[np.ndarray, np.ndarray, int]:
    """A multinomial fit over the classes present as one row per class of the task (absent: ABSENT_LOGIT)."""
    coef, intercept, classes, iterations = fit
    full_coef = np.zeros((num_outputs, coef.shape[1]))
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
    grid = tuple(sorted(grid))  # strong to weak regularisation: each fit starts from the last one's solution
    fits = _fits_along(z, np.asarray(train_y), grid, softmax=softmax, num_outputs=num_outputs, max_iter=max_iter)
    best: LinearProbe | None = None
    best_score, path = -math.inf, []
    for c, (coef, intercept, iterations) in zip(grid, fits):
        probe = LinearProbe(mean, std, coef, intercept, float(c), softmax, iterations < max_iter, iterations)
        score = classification_metrics(np.asarray(val_y), probe.probabilities(val_x))["auroc"]
        path.append({"C": float(c), "val_auroc": None if math.isnan(score) else score,
                     "converged": probe.converged, "iterations": iterations})
        if best is None or (not math.isnan(score) and score > best_score):
            best, best_score = probe, (score if not math.isnan(score) else -math.inf)
    best.grid = path
    return best
