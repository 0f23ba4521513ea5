"""PTB-XL's diagnostic-superclass tasks (Wagner et al., Scientific Data 2020; Strodthoff et al., IEEE JBHI 2021).

They read the superclasses NORM, MI, STTC, CD, HYP that ingest writes into the `labels` column of a PTB-XL
store; a store without any of them gets a one-line error pointing to the generic tasks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgcl.plugins.readers.ptbxl import SUPERCLASSES
from ecgcl.tasks import label_set_codes, one_hot
from ecgcl.errors import EcgclError
from ecgcl.interfaces import Task, TaskTargets


def _superclass_sets(metadata: pd.DataFrame, task: str) -> tuple[np.ndarray, list[frozenset[str]]]:
    """(codes, sets): each distinct label set of the store cut to the superclasses, and each record's code."""
    codes, all_sets = label_set_codes(metadata["labels"])
    weights = np.bincount(codes, minlength=len(all_sets)) > 0  # sets some record has
    sets = [s & set(SUPERCLASSES) for s in all_sets]
    if not any(s for s, w in zip(sets, weights) if w) and any(s for s, w in zip(all_sets, weights) if w):
        # labelled, but not with PTB-XL superclasses
        raise EcgclError(f"task {task!r} needs PTB-XL diagnostic superclass labels ({', '.join(SUPERCLASSES)}) "
                         "and the store has none; use a generic task such as has:CLASS or labels:min=20")
    return codes, sets


class NormalVsAbnormal(Task):
    """Binary: 0 = NORM only, 1 = any other PTB-XL superclass; records without a superclass are not used."""

    def targets(self, metadata: pd.DataFrame) -> TaskTargets:
        codes, sets = _superclass_sets(metadata, self.name or "normal_vs_abnormal")
        labelled = np.array([bool(s) for s in sets], dtype=bool)[codes]
        y = np.array([float(bool(s - {"NORM"})) for s in sets], dtype=np.float32)[codes]
        return TaskTargets(self.name, y, labelled, ("normal", "abnormal"), "binary")


class Superclasses(Task):
    """Multi-label: one output per PTB-XL diagnostic superclass (NORM, MI, STTC, CD, HYP)."""

    def targets(self, metadata: pd.DataFrame) -> TaskTargets:
        codes, sets = _superclass_sets(metadata, self.name or "superclasses")
        labelled = np.array([bool(s) for s in sets], dtype=bool)[codes]
        return TaskTargets(self.name, one_hot(sets, SUPERCLASSES)[codes], labelled, SUPERCLASSES, "multilabel")


class MiVsNormal(Task):
    """Binary: records with MI against NORM-only records; other records are not used."""

    positive = "MI"

    def targets(self, metadata: pd.DataFrame) -> TaskTargets:
        codes, sets = _superclass_sets(metadata, self.name or "mi_vs_normal")
        labelled = np.array([s == {"NORM"} or self.positive in s for s in sets], dtype=bool)[codes]
        y = np.array([float(self.positive in s) for s in sets], dtype=np.float32)[codes]
        return TaskTargets(self.name, y, labelled, ("normal", self.positive), "binary")
