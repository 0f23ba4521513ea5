"""PTB-XL statement tasks from `scp_codes`: rhythm, form, diagnostic, diagnostic subclasses, all statements.

The categories come from PTB-XL's `scp_statements.csv` (shipped here as `scp_statements.csv`; Wagner et al.,
Scientific Data 2020, CC BY 4.0). As in the PTB-XL benchmark of Strodthoff et al. (IEEE JBHI 2021), every
task is multi-label over the statements of its category that occur in the store, and a record is used when it
carries at least one of them. `min` drops statements with fewer positive records; `min_likelihood` keeps only
statements coded with at least that likelihood (0 = every statement, as the benchmark does).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ecgcl.tasks import coded_class_counts, label_set_codes, one_hot, require_column
from ecgcl.errors import EcgclError
from ecgcl.interfaces import Task, TaskTargets

STATEMENTS_FILE = Path(__file__).with_name("scp_statements.csv")
CATEGORIES = ("rhythm", "form", "diagnostic", "subclasses", "statements")


@lru_cache(maxsize=1)
def statement_table() -> pd.DataFrame:
    return pd.read_csv(STATEMENTS_FILE, index_col="code", keep_default_na=False)


def category_map(category: str) -> dict[str, str]:
    """SCP code -> class name for one category (for `subclasses`, the diagnostic subclass)."""
    table = statement_table()
    if category == "statements":
        return {code: code for code in table.index}
    if category == "subclasses":
        diagnostic = table[table["diagnostic"] == 1]
        return dict(zip(diagnostic.index, diagnostic["diagnostic_subclass"]))
    chosen = table[table[category] == 1]
    return {code: code for code in chosen.index}


class StatementTask(Task):
    """Multi-label over the PTB-XL statements of one category found in the store's `scp_codes`."""

    category = "statements"

    def __init__(self, min: int = 1, min_likelihood: float = 0.0) -> None:
        if not isinstance(min, int) or min < 1:
            raise ValueError(f"min must be a positive integer, got {min!r}")
        self.min, self.min_likelihood = min, float(min_likelihood)

    def targets(self, metadata: pd.DataFrame) -> TaskTargets:
        task = self.name or self.category
        require_column(metadata, "scp_codes", task)
        mapping = category_map(self.category)

        def statements(cell: object) -> frozenset[str]:
            codes = json.loads(cell) if isinstance(cell, str) and cell.strip() else {}
            return frozenset(mapping[c] for c, likelihood in codes.items()
                             if c in mapping and float(likelihood) >= self.min_likelihood)

        rows, sets = label_set_codes(metadata["scp_codes"], statements)  # each distinct cell parsed once
        counts = coded_class_counts(rows, sets)
        classes = sorted(c for c, n in counts.items() if n >= self.min)
        if len(classes) < 2:
            raise EcgclError(f"task {task!r}: the store has {len(classes)} PTB-XL {self.category} statement(s) with "
                             f"at least {self.min} records; a task needs 2 (lower min=)")
        y = one_hot(sets, classes)[rows]
        return TaskTargets(self.name, y, y.any(axis=1), tuple(classes), "multilabel")


def _category_task(category: str, doc: str) -> type[StatementTask]:
    return type(f"{category.title()}Task", (StatementTask,), {"category": category, "__doc__": doc})


RhythmTask = _category_task("rhythm", "PTB-XL rhythm statements (SR, AFIB, STACH, ...), multi-label.")
FormTask = _category_task("form", "PTB-XL form statements (ABQRS, PVC, LVOLT, ...), multi-label.")
DiagnosticTask = _category_task("diagnostic", "PTB-XL diagnostic statements (44: NORM, IMI, LVH, ...), multi-label.")
SubclassTask = _category_task("subclasses", "PTB-XL diagnostic subclasses (23: NORM, IMI, LVH, ...), multi-label.")
AllStatementsTask = _category_task("statements", "All 71 PTB-XL statements, multi-label.")
