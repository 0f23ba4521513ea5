"""Paired comparisons between methods over repeats.

Every method of a repeat is tested on the same test patients, so the question "does pretraining help?" is
answered by the per-repeat differences, not by two independent intervals: the mean paired difference, its
95% t interval and the paired t-test p-value (scipy.stats.ttest_rel). Two comparisons matter most: each method
against supervised training from scratch, and the pretrained linear probe against a linear probe on a randomly
initialised encoder, which matches many published self-supervised results (arXiv 2602.17531).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ecgcl.methods import COMPARISONS
from ecgcl.metrics import METRIC_NAMES


def paired_difference(values: Sequence[float], baseline: Sequence[float],
                      confidence: float = 0.95) -> dict[str, float]:
    """Mean of `values - baseline` (pairs where both are defined), its t interval and the paired t-test p-value.

    With fewer than two pairs, or differences that are all equal, scipy's interval and p-value are NaN.
    """
    a, b = np.asarray(values, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    nan = float("nan")
    if len(a) == 0:
        return {"mean": nan, "ci_low": nan, "ci_high": nan, "p": nan, "n": 0}
    mean = float((a - b).mean())
    if len(a) < 2 or np.all(a - b == (a - b)[0]):
        return {"mean": mean, "ci_low": nan, "ci_high": nan, "p": nan, "n": int(len(a))}
    with warnings.catch_warnings():  # nearly equal differences: scipy warns about precision, the numbers stand
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_rel(a, b)
    interval = result.confidence_interval(confidence_level=confidence)
    return {"mean": mean, "ci_low": float(interval.low), "ci_high": float(interval.high),
            "p": float(result.pvalue), "n": int(len(a))}


def excludes_zero(row: dict[str, Any], metric: str) -> bool:
    """Whether the paired interval of `metric` lies entirely above or below 0."""
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return False
    return low > 0 or high < 0


def paired_comparisons(rows: Sequence[dict[str, Any]], confidence: float = 0.95,
                       comparisons: Sequence[tuple[str, str]] = COMPARISONS) -> list[dict[str, Any]]:
    """One row per (label fraction, method, baseline) present in `rows`: for every metric the mean paired
    difference (method - baseline, paired by repeat), its interval, p-value and number of pairs."""
    frame = pd.DataFrame(list(rows))
    result = []
    for fraction in sorted(frame["label_fraction"].unique()):
        at = frame[frame["label_fraction"] == fraction]
        for method, baseline in comparisons:
            a = at[at["method"] == method].set_index("repeat")
            b = at[at["method"] == baseline].set_index("repeat")
            common = a.index.intersection(b.index)
            if len(common) == 0:
                continue
            row: dict[str, Any] = {"label_fraction": float(fraction), "method": method, "baseline": baseline,
                                   "repeats": int(len(common))}
            for metric in METRIC_NAMES:
                if metric not in a or metric not in b:
                    continue
                diff = paired_difference(a.loc[common, metric].astype(float), b.loc[common, metric].astype(float),
                                         confidence)
                row.update({f"{metric}_{k}": v for k, v in diff.items()})
            result.append(row)
    return result
