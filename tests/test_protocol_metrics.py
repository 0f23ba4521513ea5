"""Metrics against hand-computed values, and the t-distribution confidence interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgcl.metrics import classification_metrics, mean_ci
from ecgcl.protocol.results import summarise


def test_ci_matches_a_hand_computed_case():
    # mean 0.8, sample sd 0.1, n = 3, t(0.975, df=2) = 4.302652729911275
    mean, low, high = mean_ci([0.7, 0.8, 0.9])
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # = 0.248414...
    assert mean == pytest.approx(0.8)
    assert low == pytest.approx(0.8 - half) and high == pytest.approx(0.8 + half)
    assert half == pytest.approx(0.2484138, abs=1e-6)


def test_ci_edge_cases():
    assert mean_ci([0.5])[0] == 0.5 and math.isnan(mean_ci([0.5])[1])
    assert mean_ci([0.6, 0.6, 0.6]) == pytest.approx((0.6, 0.6, 0.6))
    assert mean_ci([0.7, float("nan"), 0.9])[0] == pytest.approx(0.8)  # undefined repeats are left out
    # two values: t(0.975, 1) = 12.706204736174707, sd = 0.1 / sqrt(2) * sqrt(2)... = 0.0707107
    mean, low, high = mean_ci([0.75, 0.85])
    assert high - mean == pytest.approx(12.706204736174707 * np.std([0.75, 0.85], ddof=1) / math.sqrt(2))


def test_binary_metrics_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    m = classification_metrics(y, p)
    assert m["accuracy"] == 0.5 and m["precision"] == 0.5 and m["recall"] == 0.5 and m["f1"] == 0.5
    assert m["auroc"] == pytest.approx(0.75)  # 3 of 4 positive-negative pairs ranked right
    assert m["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)  # AP: precision 1 at recall .5, 2/3 at recall 1


def test_multilabel_metrics_are_macro_averages():
    y = np.array([[0, 1], [1, 1], [0, 0], [1, 0]])
    p = np.array([[0.2, 0.9], [0.7, 0.4], [0.1, 0.3], [0.8, 0.6]])
    m = classification_metrics(y, p)
    first = classification_metrics(y[:, 0], p[:, 0])
    second = classification_metrics(y[:, 1], p[:, 1])
    assert m["auroc"] == pytest.approx((first["auroc"] + second["auroc"]) / 2)
    assert m["f1"] == pytest.approx((first["f1"] + second["f1"]) / 2)


def test_summary_groups_by_fraction_and_method():
    rows = [{"label_fraction": 1.0, "method": "supervised", "repeat": r, **{k: v for k in
             ("accuracy", "precision", "recall", "f1", "auroc", "pr_auc")}} for r, v in enumerate([0.7, 0.8, 0.9])]
    (row,) = summarise(rows)
    assert row["repeats"] == 3 and row["auroc_mean"] == pytest.approx(0.8)
    assert row["auroc_ci_high"] == pytest.approx(0.8 + 0.2484138, abs=1e-6)


def test_validation_threshold_maximises_f1_as_computed_by_hand():
    # scores >= t for t = 0.1 / 0.35 / 0.4 / 0.6 / 0.7 / 0.8 give F1 = 2/3, 3/4, 4/7, 2/3, 4/5, 1/2: t = 0.7 wins
    from ecgcl.metrics import best_f1_thresholds, f_max

    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.6, 0.7])
    assert best_f1_thresholds(y, p) == pytest.approx(0.7)
    at = classification_metrics(y, p, threshold=0.7)
    assert (at["precision"], at["recall"], at["f1"], at["accuracy"]) == pytest.approx((1.0, 2 / 3, 0.8, 5 / 6))
    assert f_max(y, p) == pytest.approx(0.8) and at["f_max"] == pytest.approx(0.8)
    # multi-label: one threshold per class. Class 1 (labels flipped, scores 1 - p): t = 0.4 predicts records
    # 0, 1, 2, 4 -> 3 TP, 1 FP, F1 6/7, the best; class 2 is class 0 with halved scores, so 0.7 becomes 0.35
    y2 = np.stack([y, 1 - y, y], axis=1)
    p2 = np.stack([p, 1 - p, p * 0.5], axis=1)
    assert best_f1_thresholds(y2, p2) == pytest.approx([0.7, 0.4, 0.35])
    # a class with no positive validation record keeps 0.5
    assert best_f1_thresholds(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.9])) == 0.5


def test_sample_centred_f_max_for_multi_label_by_hand():
    from ecgcl.metrics import f_max

    y = np.array([[1, 0], [0, 1], [1, 1]])
    p = np.array([[0.9, 0.2], [0.3, 0.6], [0.8, 0.1]])
    # t in (0.3, 0.6]: predictions {0}, {1}, {0}: precision 1, recall (1 + 1 + 0.5) / 3 -> F = 2 * 5/6 / (1 + 5/6)
    assert f_max(y, p) == pytest.approx(2 * (5 / 6) / (1 + 5 / 6))


def test_paired_difference_matches_scipy_on_fixed_numbers():
    from scipy import stats

    from ecgcl.protocol.paired import excludes_zero, paired_comparisons, paired_difference

    pretrained = [0.81, 0.78, 0.84, 0.80, 0.83]
    supervised = [0.76, 0.77, 0.79, 0.74, 0.80]
    diff = paired_difference(pretrained, supervised)
    reference = stats.ttest_rel(pretrained, supervised)
    low, high = reference.confidence_interval(0.95)
    assert diff["mean"] == pytest.approx(np.mean(np.subtract(pretrained, supervised)))
    assert (diff["ci_low"], diff["ci_high"], diff["p"]) == pytest.approx((low, high, reference.pvalue))
    d = np.subtract(pretrained, supervised)  # by hand: mean ± t(0.975, 4) sd / sqrt(5)
    half = stats.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
    assert (diff["ci_low"], diff["ci_high"]) == pytest.approx((d.mean() - half, d.mean() + half))
    assert diff["n"] == 5 and diff["p"] < 0.05
    rows = [{"repeat": r, "label_fraction": 1.0, "method": m, "auroc": v, "f1": v / 2}
            for m, values in (("pretrained_linear", pretrained), ("supervised", supervised),
                              ("random_linear", supervised[::-1])) for r, v in enumerate(values)]
    paired = {(r["method"], r["baseline"]): r for r in paired_comparisons(rows)}
    assert set(paired) == {("pretrained_linear", "supervised"), ("random_linear", "supervised"),
                           ("pretrained_linear", "random_linear")}
    assert paired["pretrained_linear", "supervised"]["auroc_p"] == pytest.approx(reference.pvalue)
    assert excludes_zero(paired["pretrained_linear", "supervised"], "auroc")
    assert not excludes_zero(paired["random_linear", "supervised"], "auroc")
    one = paired_difference([0.8], [0.7])
    assert one["mean"] == pytest.approx(0.1) and math.isnan(one["ci_low"]) and math.isnan(one["p"])
