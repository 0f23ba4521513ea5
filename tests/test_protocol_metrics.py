"""Metrics against hand-computed values, and the t-distribution confidence interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgcl.protocol.metrics import classification_metrics, mean_ci
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
