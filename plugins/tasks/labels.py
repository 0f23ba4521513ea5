"""Multi-label over every class of the store's `labels` with at least `min` positive records (`labels:min=20`).

Works on any store with labels: a record with labels is used (all-negative when none of its classes is
frequent enough); a record without labels is not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgcl.tasks import coded_class_counts, describe_classes, label_set_codes, one_hot
from ecgcl.errors import EcgclError
from ecgcl.interfaces import Task, TaskTargets


class MultiLabel(Task):
    """Multi-label: one output per class with at least `min` positive records."""

    def __init__(self, min: int = 1) -> None:
        if not isinstance(min, int) or isinstance(min, bool) or min < 1:
            raise ValueError(f"min must be a positive integer, got {min!r}")
        self.min = min

    def targets(self, metadata: pd.DataFrame) -> TaskTargets:
        task = self.name or f"labels:min={self.min}"
        codes, sets = label_set_codes(metadata["labels"])  # each distinct label set once, records by code
        counts = coded_class_counts(codes, sets)
        classes = sorted(c for c, n in counts.items() if n >= self.min)
        if len(classes) < 2:
            raise EcgclError(f"task {task!r}: {len(classes)} class(es) have at least {self.min} records, a "
                             f"multi-label task needs 2 (lower min=); {describe_classes(counts)}")
        labelled = np.array([bool(s) for s in sets], dtype=bool)[codes]
        return TaskTargets(self.name, one_hot(sets, classes)[codes], labelled, tuple(classes), "multilabel")
