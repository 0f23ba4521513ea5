"""One class against the rest (`has:AF`), or against one named class (`has:AF,vs=NSR`): a binary task.

Works on any store with labels. Without `vs`, every labelled record without the class is a negative; with
`vs`, only records of that class are (records with both count as positive), and records with neither are
not used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgcl.tasks import coded_class_counts, label_set_codes, require_class
from ecgcl.interfaces import Task, TaskTargets


class HasClass(Task):
    """Binary: records with class `label` against the other labelled records (or against class `vs`)."""

    def __init__(self, label: str, vs: str | None = None) -> None:
        self.label = str(label).strip()
        self.vs = None if vs is None else str(vs).strip()
        if not self.label or self.vs == "":
            raise ValueError("has: give a class name, e.g. has:AF or has:AF,vs=NSR")
        if self.vs == self.label:
            raise ValueError(f"has: the class and vs= are both {self.label!r}")

    def targets(self, metadata: pd.DataFrame) -> TaskTargets:
        task = self.name or f"has:{self.label}"
        codes, sets = label_set_codes(metadata["labels"])  # each distinct label set once, records by code
        counts = coded_class_counts(codes, sets)
        require_class(self.label, counts, task)
        positive = np.array([self.label in s for s in sets], dtype=bool)[codes]
        if self.vs is None:
            labelled = np.array([bool(s) for s in sets], dtype=bool)[codes]
            negative_name = f"not {self.label}"
        else:
            require_class(self.vs, counts, task)
            labelled = positive | np.array([self.vs in s for s in sets], dtype=bool)[codes]
            negative_name = self.vs
        return TaskTargets(self.name, positive.astype(np.float32), labelled, (negative_name, self.label), "binary")
