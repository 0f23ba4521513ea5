"""Targets of the labelled monitors (`knn`, `probe`): the training and validation labels, and the number of
classes of a multi-class task, read from those rows only (never from test records)."""

from __future__ import annotations

import numpy as np


def labelled_rows(inputs) -> tuple[np.ndarray, np.ndarray] | None:
    """(train, val) rows, or None where the task is unlabelled or either set is empty."""
    if inputs.train is None or inputs.val is None or inputs.y is None:
        return None
    train, val = np.asarray(inputs.train), np.asarray(inputs.val)
    return (train, val) if len(train) and len(val) else None


def class_count(inputs, train: np.ndarray, val: np.ndarray) -> int:
    """Outputs of the task: 1 (binary), the number of classes (multi-class: the largest index seen + 1, at
    least 2) or the number of label columns (multi-label)."""
    y = np.asarray(inputs.y)
    if inputs.target_kind == "multilabel":
        return int(y.shape[1])
    if inputs.target_kind == "multiclass":
        return max(2, int(max(y[train].max(), y[val].max())) + 1)
    return 1
