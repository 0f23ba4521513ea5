"""Classification metrics (scikit-learn), thresholds chosen on validation, F-max, and the 95% confidence
interval over repeats (Student's t)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats
from sklearn.metrics import (accuracy_score, average_precision_score, f1_score, precision_recall_curve,
                             precision_score, recall_score, roc_auc_score)

METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "auroc", "pr_auc", "f_max")
# The metrics whose values lie in [0, 1] (the one list; tables and plots import it). The t interval of their mean
# may cross 0 or 1 with few repeats: tables and plots show its bounds clipped to [0, 1] (`shown_interval`), the
# summary files keep the raw interval. Differences between two such metrics, and loss-like metrics, are not
# bounded and are never clipped.
BOUNDED_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "auroc", "pr_auc", "f_max", "sensitivity",
                             "specificity", "val_auroc"})

Threshold = float | Sequence[float] | np.ndarray | None  # one, one per class (multi-label), None (multi-class)


def classification_metrics(y_true: np.ndarray, probabilities: np.ndarray, threshold: Threshold = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall, F1, AUROC, PR-AUC (average precision) and F-max of one task's predictions.

    - binary: `y_true` (N,) 0/1 and `probabilities` (N,); the threshold gives the predicted class;
    - multi-class: `y_true` (N,) class indices and `probabilities` (N, C) (softmax); the prediction is the
      most probable class; precision/recall/F1 are macro averages and AUROC/PR-AUC macro one-vs-rest;
    - multi-label: `y_true` and `probabilities` (N, C); macro averages over classes, accuracy is the mean
      per-class accuracy at the threshold (one number, or one per class: see `best_f1_thresholds`).
    AUROC and PR-AUC average the classes where they are defined (a class with positives and negatives).
    F-max does not depend on the threshold (see `f_max`).
    """
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_int = y_true.astype(np.int64)
    if y_true.ndim == 1 and probabilities.ndim == 2:  # multi-class
        predicted = probabilities.argmax(axis=1)
        labels = list(range(probabilities.shape[1]))
        scores = {name: float(metric(y_int, predicted, labels=labels, average="macro", zero_division=0))
                  for name, metric in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score))}
        accuracy = float(accuracy_score(y_int, predicted))
    else:
        cut = np.asarray(0.5 if threshold is None else threshold, dtype=np.float64)
        predicted = (probabilities >= cut).astype(np.int64)
        average = "binary" if y_true.ndim == 1 else "macro"
        accuracy = float(accuracy_score(y_int, predicted)) if y_true.ndim == 1 else float((y_int == predicted).mean())
        scores = {name: float(metric(y_int, predicted, average=average, zero_division=0))
                  for name, metric in (("precision", precision_score), ("recall", recall_score), ("f1", f1_score))}
    indicator, score_matrix = one_vs_rest(y_int, probabilities)
    return {"accuracy": accuracy, **scores,
            "auroc": _macro(roc_auc_score, indicator, score_matrix),
            "pr_auc": _macro(average_precision_score, indicator, score_matrix),
            "f_max": f_max(y_int, probabilities)}


def _best_f1(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) where `scores >= threshold` gives the highest F1; (0.5, NaN) with no positive record."""
    if not y_true.any():
        return 0.5, float("nan")
    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point (recall 0) has no threshold
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(denominator), where=denominator > 0)
    best = int(np.argmax(f1))  # ties: the lowest threshold (thresholds ascend)
    return float(thresholds[best]), float(f1[best])


def best_f1_thresholds(y_true: np.ndarray, probabilities: np.ndarray) -> float | list[float] | None:
    """The threshold maximising F1 on (validation) data: one number for binary targets, one per class for
    multi-label ones, None for multi-class ones (predicted as the most probable class). It is a score seen in
    the data, applied as `probability >= threshold`."""
    y_true, probabilities = np.asarray(y_true).astype(np.int64), np.asarray(probabilities, dtype=np.float64)
    if y_true.ndim == 1 and probabilities.ndim == 2:
        return None
    if y_true.ndim == 1:
        return _best_f1(y_true, probabilities)[0]
    return [_best_f1(y_true[:, c], probabilities[:, c])[0] for c in range(y_true.shape[1])]


def f_max(y_true: np.ndarray, probabilities: np.ndarray) -> float:
    """The best F1 over all thresholds on the data itself (no validation involved).

    Binary: the maximum of F1 over the precision-recall curve. Multi-label (and multi-class, one-vs-rest): the
    sample-centred F-max of CAFA (Radivojac et al., Nature Methods 2013), as in the PTB-XL benchmark
    (Strodthoff et al., IEEE JBHI 2021): for each threshold on a 0.01 grid, precision is averaged over records
    with at least one predicted class and recall over records with at least one true class, and F-max is the
    best harmonic mean of the two.
    """
    y_true, probabilities = np.asarray(y_true).astype(np.int64), np.asarray(probabilities, dtype=np.float64)
    if y_true.ndim == 1 and probabilities.ndim == 1:
        return _best_f1(y_true, probabilities)[1]
    y_true, probabilities = one_vs_rest(y_true, probabilities)
    positives = y_true.sum(axis=1)
    annotated = positives > 0
    best = float("nan")
    if not annotated.any():
        return best
    for threshold in np.linspace(0, 1, 101):
        predicted = probabilities >= threshold
        hits, called = (predicted & (y_true == 1)).sum(axis=1), predicted.sum(axis=1)
        if not called.any():
            continue
        precision = float((hits[called > 0] / called[called > 0]).mean())
        recall = float((hits[annotated] / positives[annotated]).mean())
        if precision + recall > 0:
            f1 = 2 * precision * recall / (precision + recall)
            best = f1 if math.isnan(best) else max(best, f1)
    return best


def one_vs_rest(y_true: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) indicator and score matrices: multi-label as given, multi-class one-hot, binary the positive class."""
    y_true = np.asarray(y_true).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if y_true.ndim == 2:
        return y_true, probabilities
    if probabilities.ndim == 2:
        return np.eye(probabilities.shape[1], dtype=np.int64)[y_true], probabilities
    return y_true[:, None], probabilities[:, None]


def per_class_metrics(y_true: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str],
                      threshold: Threshold = 0.5) -> dict[str, dict[str, float]]:
    """For each class: test records with it (`positives`), precision, recall, F1 (one vs rest), AUROC, PR-AUC.

    Binary tasks report both classes (the negative class scored by 1 - p); multi-class predictions are the
    most probable class; multi-label ones use the threshold (one, or one per class).
    """
    y_int = np.asarray(y_true).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    threshold = np.asarray(0.5 if threshold is None else threshold, dtype=np.float64)
    if y_int.ndim == 1 and probabilities.ndim == 1:  # binary: negative and positive class
        indicator = np.stack([1 - y_int, y_int], axis=1)
        scores = np.stack([1 - probabilities, probabilities], axis=1)
        predicted = np.stack([probabilities < threshold, probabilities >= threshold], axis=1).astype(np.int64)
    else:
        indicator, scores = one_vs_rest(y_int, probabilities)
        predicted = (np.eye(scores.shape[1], dtype=np.int64)[scores.argmax(axis=1)] if y_int.ndim == 1
                     else (scores >= threshold).astype(np.int64))
    result = {}
    for c, name in enumerate(class_names):
        truth, guess = indicator[:, c], predicted[:, c]
        result[str(name)] = {
            "positives": int(truth.sum()),
            "precision": float(precision_score(truth, guess, zero_division=0)),
            "recall": float(recall_score(truth, guess, zero_division=0)),
            "f1": float(f1_score(truth, guess, zero_division=0)),
            "auroc": _defined(roc_auc_score, truth, scores[:, c]),
            "pr_auc": _defined(average_precision_score, truth, scores[:, c]),
        }
    return result


def _defined(metric, truth: np.ndarray, scores: np.ndarray) -> float:
    """A ranking metric of one class; NaN where it is undefined (all positive or all negative)."""
    if truth.min(initial=1) == truth.max(initial=0):
        return float("nan")
    return float(metric(truth, scores))


def _macro(metric, indicator: np.ndarray, scores: np.ndarray) -> float:
    """The unweighted mean of a ranking metric over the classes where it is defined (NaN if none is)."""
    values = [_defined(metric, indicator[:, c], scores[:, c]) for c in range(indicator.shape[1])]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


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


def shown_interval(metric: str, low: float, high: float) -> tuple[float, float]:
    """The interval bounds to display for a summary of `metric`: clipped to [0, 1] for a metric of
    BOUNDED_METRICS, as given otherwise (pass a difference's interval under a name outside that list, or do not
    call this for it). NaN bounds stay NaN."""
    if metric not in BOUNDED_METRICS:
        return low, high
    return (low if math.isnan(low) else min(max(low, 0.0), 1.0),
            high if math.isnan(high) else min(max(high, 0.0), 1.0))
