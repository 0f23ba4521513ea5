"""Which records of a store to look at: named ids, records of one class of a task, or a seeded random draw.

Each way is one option set of `ecgcl show` (`--records`, `--task/--class/--n`, `--random/--seed`); exactly one
is given, and every mistake (an unknown id, a class the task lacks) is one line naming the option.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgcl.data.store import ECGStore
from ecgcl.errors import EcgclError, did_you_mean, require_positive_ints

CHOOSE = "choose records with --records ID,..., --task T --class C [--n 4], or --random N [--seed S]"


def pick_rows(store: ECGStore, *, records: str | list[str] | None = None, task: str | None = None,
              class_name: str | None = None, n: int | None = None, random: int | None = None,
              seed: int | None = None) -> list[int]:
    """Store rows in the order chosen: the first row of each id in `records` (`'12,40'` or a list); the first
    `n` (default 4) records, in store order, whose target in `task` is `class_name`; or `random` records drawn
    without replacement by numpy's generator seeded with `seed` (default 0)."""
    modes = [name for name, given in (("--records", records is not None), ("--task/--class", task or class_name),
                                      ("--random", random is not None)) if given]
    if not modes:
        raise EcgclError(f"show: no records chosen; {CHOOSE}")
    if len(modes) > 1:
        raise EcgclError(f"show: {' and '.join(modes)} given; {CHOOSE} (one of them)")
    if n is not None and not task:
        raise EcgclError("--n goes with --task and --class (the number of records of that class)")
    if seed is not None and random is None:
        raise EcgclError("--seed goes with --random (the seed of the random draw)")
    if records is not None:
        return _by_id(store, records)
    if random is not None:
        require_positive_ints("--random", count=random)
        generator = np.random.default_rng(0 if seed is None else seed)
        return generator.choice(len(store), min(random, len(store)), replace=False).tolist()
    return _by_class(store, task, class_name, 4 if n is None else n)


def _by_id(store: ECGStore, records: str | list[str]) -> list[int]:
    wanted = [r.strip() for r in (records.split(",") if isinstance(records, str) else records) if str(r).strip()]
    if not wanted:
        raise EcgclError(f"--records expects record ids separated by commas, got {records!r}")
    ids = store.metadata["record_id"].astype(str)
    first = ids[~ids.duplicated()]
    rows = pd.Index(first.to_numpy()).get_indexer(wanted)
    for name, row in zip(wanted, rows.tolist()):
        if row < 0:
            near = first[first.str[:1] == name[:1]].head(20000)  # did-you-mean stays quick on a large store
            raise EcgclError(f"--records: no record {name!r} in {store.path}{did_you_mean(name, near)} "
                             f"({len(first)} records, e.g. {', '.join(first.head(3))})")
    return first.index[rows].tolist()


def _by_class(store: ECGStore, task: str | None, class_name: str | None, n: int) -> list[int]:
    from ecgcl.tasks import task_targets

    if not task or not class_name:
        raise EcgclError("--task and --class go together: the records of class C in task T")
    require_positive_ints("--n", count=n)
    targets = task_targets(task, store.metadata, source=str(store.path))
    classes = list(targets.class_names)
    if class_name not in classes:
        raise EcgclError(f"--class: task {task!r} has no class {class_name!r}{did_you_mean(class_name, classes)}; "
                         f"its classes: {', '.join(classes)}")
    index = classes.index(class_name)
    y = targets.y[:, index] if targets.kind == "multilabel" else targets.y == index
    rows = np.flatnonzero(targets.labelled & (np.asarray(y) == 1))
    if not len(rows):
        raise EcgclError(f"--class: no record of {store.path} has class {class_name!r} in task {task!r}")
    return rows[:n].tolist()
