"""Classification metrics (scikit-learn) and the 95% confidence interval over repeats (Student's t)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, precision_score, recall_score,
                             roc_auc_score)

METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "auroc", "pr_auc")


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (at `threshold`), AUROC and PR-AUC (average precision).

    Binary targets are (N,); multi-label targets are (N, C), for which precision/recall/F1/AUROC/PR-AUC are
    macro averages over classes and accuracy is the mean per-class accuracy.
    """
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = (probabilities >= threshold).astype(np.int64)
    y_int = y_true.astype(np.int64)
    if y_true.ndim == 1:
        accuracy = accuracy_score(y_int, predicted)
        average = "binary"
    else:
        accuracy = float((y_int == predicted).mean())
        average = "macro"
    return {
        "accuracy": float(accuracy),
        "precision": float(precision_score(y_int, predicted, average=average, zero_division=0)),
        "recall": float(recall_score(y_int, predicted, average=average, zero_division=0)),
        "f1": float(f1_score(y_int, predicted, average=average, zero_division=0)),
        "auroc": _safe(roc_auc_score, y_int, probabilities, average),
        "pr_auc": _safe(average_precision_score, y_int, probabilities, average),
    }


def _safe(metric, y_true: np.ndarray, scores: np.ndarray, average: str) -> float:
    """NaN instead of an exception where a ranking metric is undefined (one class only)."""
    try:
        if average == "binary":
            return float(metric(y_true, scores))
        return float(metric(y_true, scores, average="macro"))
    except ValueError:
        return float("nan")


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and the two-sided `confidence` interval of the mean over repeats: mean ± t(n-1) · s / sqrt(n).

    `s` is the sample standard deviation (ddof=1). With one value the interval is undefined (NaN, NaN).
    NaN values (an undefined metric in a repeat) are left out.
    """
    data = np.asarray([v for v in values if not math.isnan(v)], dtype=np.float64)
    if len(data) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(data.mean())
    if len(data) < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + confidence / 2, df=len(data) - 1) * data.std(ddof=1) / math.sqrt(len(data)))
    return mean, mean - half, mean + half
