"""Downstream tasks: how a store's record labels become training targets.

Labels in a store are sets of class names (for PTB-XL, the diagnostic superclasses NORM, MI, STTC, CD, HYP).
A task turns them into a target array and a mask of the records it can use; records it cannot use (no labels)
remain available for self-supervised pretraining.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecgcl.errors import EcgclError, did_you_mean

SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")


@dataclass(frozen=True)
class TaskTargets:
    """Targets for the records a task uses: `y` is (N,) for binary tasks, (N, C) for multi-label ones."""

    name: str
    y: np.ndarray
    labelled: np.ndarray
    class_names: tuple[str, ...]

    @property
    def multilabel(self) -> bool:
        return self.y.ndim == 2

    @property
    def num_outputs(self) -> int:
        return self.y.shape[1] if self.multilabel else 1

    def stratify_key(self) -> np.ndarray:
        """One integer per record for stratified splitting (the label, or the first positive class)."""
        if not self.multilabel:
            return self.y.astype(np.int64)
        return np.where(self.y.any(axis=1), self.y.argmax(axis=1) + 1, 0).astype(np.int64)


def _normal_vs_abnormal(label_sets: Sequence[frozenset[str]]) -> TaskTargets:
    """0 = NORM only, 1 = any other superclass; records with no superclass are unlabelled."""
    labelled = np.array([bool(s) for s in label_sets])
    y = np.array([float(bool(s - {"NORM"})) for s in label_sets], dtype=np.float32)
    return TaskTargets("normal_vs_abnormal", y, labelled, ("normal", "abnormal"))


def _superclasses(label_sets: Sequence[frozenset[str]]) -> TaskTargets:
    """Multi-label: one output per PTB-XL diagnostic superclass."""
    labelled = np.array([bool(s & set(SUPERCLASSES)) for s in label_sets])
    y = np.array([[float(c in s) for c in SUPERCLASSES] for s in label_sets], dtype=np.float32).reshape(-1, len(SUPERCLASSES))
    return TaskTargets("superclasses", y, labelled, SUPERCLASSES)


def _one_vs_normal(positive: str):
    def build(label_sets: Sequence[frozenset[str]]) -> TaskTargets:
        labelled = np.array([s == {"NORM"} or positive in s for s in label_sets])
        y = np.array([float(positive in s) for s in label_sets], dtype=np.float32)
        return TaskTargets(f"{positive.lower()}_vs_normal", y, labelled, ("normal", positive))

    build.__doc__ = f"Binary: records with {positive} against NORM-only records; others are not used."
    return build


TASKS = {
    "normal_vs_abnormal": _normal_vs_abnormal,
    "superclasses": _superclasses,
    "mi_vs_normal": _one_vs_normal("MI"),
}


def task_targets(task: str, label_sets: Sequence[frozenset[str]], *, source: str = "the store") -> TaskTargets:
    """Targets for `task`; a clear error for an unknown task or a store with no labels for it."""
    if task not in TASKS:
        raise EcgclError(f"unknown task {task!r}{did_you_mean(task, TASKS)}; choose from {', '.join(TASKS)}")
    targets = TASKS[task](label_sets)
    if not targets.labelled.any():
        raise EcgclError(f"{source} has no labelled records for task {task!r} (ingest a labelled dataset, e.g. PTB-XL)")
    return targets
