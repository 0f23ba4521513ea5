"""`probe`: the validation AUROC of the converged linear probe (`ecgcl.engine.probe.fit_linear_probe`: L2
logistic regression on standardised frozen features, the linear evaluation protocol of Kolesnikov et al., CVPR
2019, and SimCLR, Chen et al., ICML 2020) fitted on the embeddings of the labelled training records.

The figure is the best validation AUROC over the probe's C grid, because the probe method itself picks C on the
validation records: it is what the probe arm would score on validation with this encoder, and slightly
optimistic as a held-out estimate. Test records are never used.
"""

from __future__ import annotations

import math

import numpy as np

from ecgcl.errors import require_positive_ints
from ecgcl.interfaces import Monitor
from ecgcl.plugins.monitors._targets import class_count, labelled_rows


class Probe(Monitor):
    """Linear-probe AUROC on validation (best over the C grid, as the probe picks C on validation), fitted on
    the first `max_records` training records; NaN where no C gives a defined AUROC."""

    name = "probe"
    primary = "probe"
    needs_labels = True
    higher_is_better = True

    def __init__(self, max_records: int = 2048) -> None:
        require_positive_ints("probe", max_records=max_records)
        self.max_records = max_records

    def __call__(self, inputs) -> dict[str, float]:
        from ecgcl.engine.probe import fit_linear_probe

        rows = labelled_rows(inputs)
        if rows is None:
            return {"probe": float("nan")}
        train, val = rows
        train = train[: self.max_records]
        y = np.asarray(inputs.y)
        softmax = inputs.target_kind == "multiclass"
        train_y, val_y = (y[train].astype(np.int64), y[val].astype(np.int64)) if softmax else (y[train], y[val])
        probe = fit_linear_probe(inputs.embed(train), train_y, inputs.embed(val), val_y, softmax=softmax,
                                 num_outputs=class_count(inputs, train, val))
        scores = [step["val_auroc"] for step in probe.grid if step["val_auroc"] is not None]
        best = max(scores) if scores else float("nan")
        return {"probe": float("nan") if math.isnan(best) else float(best)}


__all__ = ["Probe"]
