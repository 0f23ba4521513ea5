"""A task from any metadata column (`column:rhythm`, `column:sex`): binary with two values, multi-class above.

Each non-empty cell is the record's class (text as written); values with fewer than `min` records are left
out, as are empty cells. With two values the task is binary: `positive` names the positive value (default:
the second in sorted order); with more it is multi-class (softmax over the values, sorted).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgcl.tasks import require_column
from ecgcl.errors import EcgclError, did_you_mean
from ecgcl.interfaces import Task, TaskTargets

MAX_CLASSES = 50


class ColumnTask(Task):
    """Binary or multi-class targets from the values of one metadata column."""

    def __init__(self, column: str, positive: str | None = None, min: int = 1) -> None:
        if not isinstance(min, int) or isinstance(min, bool) or min < 1:
            raise ValueError(f"min must be a positive integer, got {min!r}")
        self.column, self.positive, self.min = str(column).strip(), positive, min

    def targets(self, metadata: pd.DataFrame) -> TaskTargets:
        task = self.name or f"column:{self.column}"
        require_column(metadata, self.column, task)
        values = metadata[self.column].map(_text)
        counts = values[values != ""].value_counts()
        classes = sorted(str(v) for v, n in counts.items() if n >= self.min)
        if len(classes) < 2:
            raise EcgclError(f"task {task!r}: column {self.column!r} has {len(classes)} value(s) with at least "
                             f"{self.min} records; a task needs 2")
        if len(classes) > MAX_CLASSES:
            raise EcgclError(f"task {task!r}: column {self.column!r} has {len(classes)} values; a class column needs "
                             f"at most {MAX_CLASSES} (raise min= to keep the common ones)")
        if self.positive is not None:
            if len(classes) != 2:
                raise EcgclError(f"task {task!r}: positive= needs a column with 2 values, {self.column!r} has "
                                 f"{len(classes)}")
            if self.positive not in classes:
                raise EcgclError(f"task {task!r}: column {self.column!r} has no value {self.positive!r}"
                                 f"{did_you_mean(self.positive, classes)}; values: {', '.join(classes)}")
            classes = [c for c in classes if c != self.positive] + [self.positive]
        index = {c: i for i, c in enumerate(classes)}
        codes = values.map(lambda v: index.get(v, -1)).to_numpy()
        labelled = codes >= 0
        if len(classes) == 2:
            return TaskTargets(self.name, np.where(labelled, codes, 0).astype(np.float32), labelled,
                               tuple(classes), "binary")
        return TaskTargets(self.name, np.where(labelled, codes, 0).astype(np.int64), labelled, tuple(classes),
                           "multiclass")


def _text(value: object) -> str:
    """A cell as class text: empty for missing values, `1` rather than `1.0` for whole numbers."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
