"""Tasks at run time: parse a `--task` spec into a registered `Task` and turn a store's metadata into targets.

A spec names a registered task with options in the `--aug` syntax (`has:AF,vs=NSR`, `labels:min=20`,
`column:rhythm`); a leading value without `=` is the task's first option. The helpers below are shared by the
built-in task plugins: each record's label set, the classes a store has, and the error for a class it lacks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING

from ecgcl.errors import EcgclError, did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import pandas as pd

    from ecgcl.interfaces import Task, TaskTargets
    from ecgcl.registry import Registry

LABEL_SEPARATOR = ";"


def split_labels(value: object) -> frozenset[str]:
    """One `labels` cell (`AF;RBBB`) as a set of class names; empty or missing means unlabelled."""
    if not isinstance(value, str):
        return frozenset()
    return frozenset(s.strip() for s in value.split(LABEL_SEPARATOR) if s.strip())


def label_set_codes(values: pd.Series, parse=split_labels) -> tuple[np.ndarray, list]:
    """(codes, distinct): `parse` of each distinct value of `values` (missing ones: `parse(None)`), and for each
    record the index of its value's result in `distinct`.

    A store's label cells take few distinct values (combinations of a few classes), so a task parses each of them
    once and works on codes: time and memory stay a few bytes a record, where a set per record cost ~200 B
    and a Python loop over every record.
    """
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = [parse(v) for v in uniques.tolist()] + [parse(None)]
    codes = np.asarray(codes, dtype=np.int64)
    codes[codes < 0] = len(distinct) - 1
    return codes, distinct


def label_sets(metadata: pd.DataFrame) -> list[frozenset[str]]:
    """Each record's labels as a set (from the `labels` column of a store's metadata); records with the same
    labels share one frozenset."""
    codes, distinct = label_set_codes(metadata["labels"])
    return [distinct[c] for c in codes.tolist()]


def class_counts(sets: Iterable[frozenset[str]], weights: Iterable[int] | None = None) -> Counter:
    """How many records carry each class (`weights`: how many records each set stands for)."""
    counts: Counter = Counter()
    for labels, weight in zip(sets, weights if weights is not None else repeat(1)):
        if weight:
            for c in labels:
                counts[c] += int(weight)
    return counts


def coded_class_counts(codes: np.ndarray, distinct: Sequence[frozenset[str]]) -> Counter:
    """`class_counts` of the records whose sets are `distinct[codes]`."""
    import numpy as np

    return class_counts(distinct, np.bincount(codes, minlength=len(distinct)).tolist())


def describe_classes(counts: Counter, limit: int = 12) -> str:
    """`AF (12), NSR (40), ...`: the commonest classes of a store, for error messages."""
    if not counts:
        return "the store has no labels (add them with `ecgcl relabel` or ingest --labels)"
    shown = ", ".join(f"{c} ({n})" for c, n in counts.most_common(limit))
    more = f" and {len(counts) - limit} more" if len(counts) > limit else ""
    return f"classes in the store: {shown}{more}"


def require_class(name: str, counts: Counter, task: str) -> None:
    """Raise a one-line error when no record has class `name`, with the closest class and the store's classes."""
    if counts.get(name, 0) == 0:
        raise EcgclError(f"task {task!r}: no record has class {name!r}{did_you_mean(name, counts)}; "
                         f"{describe_classes(counts)}")


def require_column(metadata: pd.DataFrame, column: str, task: str) -> None:
    """Raise a one-line error when the store's metadata has no column `column`."""
    if column not in metadata.columns:
        columns = [c for c in metadata.columns if c not in ("record_id", "source_path")]
        raise EcgclError(f"task {task!r}: the store has no column {column!r}{did_you_mean(column, columns)}; "
                         f"columns: {', '.join(columns)}")


def parse_task(spec: str, registry: Registry) -> Task:
    """The registered task a spec names, built with its options (did-you-mean on names and options)."""
    from ecgcl.compose import build_component
    from ecgcl.interfaces import Task

    text = (spec or "").strip()
    if not text or "+" in text:
        raise EcgclError(f"--task expects one task such as has:AF or labels:min=20, got {spec!r}")
    task = build_component(registry, "task", text, positional=True)
    component = registry.get("task", text.partition(":")[0].strip())
    if not isinstance(task, Task):
        raise EcgclError(f"task {component.name!r} from {component.source.name} built a {type(task).__name__}, "
                         "not an ecgcl.interfaces.Task")
    task.name = text
    return task


def task_targets(spec: str, metadata: pd.DataFrame, *, registry: Registry | None = None,
                 source: str = "the store", require_labels: bool = True) -> TaskTargets | None:
    """The targets of task `spec` on a store's metadata; a clear error when the store cannot serve it.

    With `require_labels=False` a store without a single usable record gives None instead of an error
    (pretraining on an unlabelled archive); a task naming a class a labelled store lacks is still an error.
    """
    if registry is None:
        from ecgcl.manager import get_registry

        registry = get_registry()
    task = parse_task(spec, registry)
    component = registry.get("task", spec.strip().partition(":")[0].strip())
    try:
        targets = task.targets(metadata)
    except EcgclError:
        # pretraining an unlabelled archive; a typo still stops (label sets only read here: a pass over every record)
        if not require_labels and not any(label_sets(metadata)):
            return None
        raise
    except (ValueError, KeyError, TypeError) as error:
        raise EcgclError(f"task {spec!r} ({component.source.name}) failed on {source}: "
                         f"{type(error).__name__}: {error}") from error
    if len(targets.labelled) != len(metadata):
        raise EcgclError(f"task {spec!r} ({component.source.name}) gave {len(targets.labelled)} targets for "
                         f"{len(metadata)} records")
    if not targets.labelled.any():
        if not require_labels:
            return None
        raise EcgclError(f"{source} has no labelled records for task {spec!r}; "
                         f"{describe_classes(class_counts(label_sets(metadata)))}")
    return targets


def one_hot(sets: Sequence[frozenset[str]], classes: Sequence[str]):
    """(N, C) float32 indicator matrix of `classes` in each record's label set."""
    import numpy as np

    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(sets), len(classes)), dtype=np.float32)
    for row, labels in enumerate(sets):
        for label in labels:
            if label in index:
                y[row, index[label]] = 1.0
    return y
