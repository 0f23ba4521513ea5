"""Built-in tasks (registered by the plugin manager like any third-party task).

PTB-XL: `normal_vs_abnormal`, `superclasses`, `mi_vs_normal` (from the superclass labels) and `rhythm`, `form`,
`diagnostic`, `subclasses`, `statements` (from `scp_codes`). Any store: `has` (one class against the rest or
against `vs`), `labels` (multi-label over frequent classes) and `column` (binary / multi-class from a column).
"""

from __future__ import annotations

from ecgcl.hookspecs import hookimpl
from ecgcl.plugins.tasks.column import ColumnTask
from ecgcl.plugins.tasks.has import HasClass
from ecgcl.plugins.tasks.labels import MultiLabel
from ecgcl.plugins.tasks.ptbxl_statements import (AllStatementsTask, DiagnosticTask, FormTask, RhythmTask,
                                                   SubclassTask)
from ecgcl.plugins.tasks.ptbxl_superclasses import MiVsNormal, NormalVsAbnormal, Superclasses


@hookimpl
def register_tasks(registry):
    registry.add("normal_vs_abnormal", NormalVsAbnormal, kind="task")
    registry.add("superclasses", Superclasses, kind="task")
    registry.add("mi_vs_normal", MiVsNormal, kind="task")
    registry.add("rhythm", RhythmTask, kind="task")
    registry.add("form", FormTask, kind="task")
    registry.add("diagnostic", DiagnosticTask, kind="task")
    registry.add("subclasses", SubclassTask, kind="task")
    registry.add("statements", AllStatementsTask, kind="task", aliases=("all_statements",))
    registry.add("has", HasClass, kind="task")
    registry.add("labels", MultiLabel, kind="task")
    registry.add("column", ColumnTask, kind="task")


__all__ = ["AllStatementsTask", "ColumnTask", "DiagnosticTask", "FormTask", "HasClass", "MiVsNormal", "MultiLabel",
           "NormalVsAbnormal", "RhythmTask", "Superclasses", "SubclassTask", "register_tasks"]
