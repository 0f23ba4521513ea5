"""Which pretraining epoch `pretrain.pt` keeps (`--pretrain-select`): the last one, or the one whose monitor
figure on validation records is best (`best:knn`), so a representation that degrades late in training is not the
one fine-tuning starts from. Only validation records ever decide: monitors never see test records."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ecgcl.config import LAST


@dataclass(frozen=True)
class Selection:
    """Keep the epoch with the best `figure` (higher or lower is better); `spec` is how the user wrote it."""

    spec: str
    figure: str
    higher_is_better: bool = True

    def score(self, record: dict[str, Any]) -> float | None:
        """The record's figure when it was computed that epoch and is finite."""
        value = record.get(self.figure)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    def improves(self, record: dict[str, Any], earlier: list[dict[str, Any]]) -> bool:
        """Whether `record` beats every earlier epoch (ties keep the earlier epoch)."""
        value = self.score(record)
        if value is None:
            return False
        scores = [s for s in map(self.score, earlier) if s is not None]
        if not scores:
            return True
        return value > max(scores) if self.higher_is_better else value < min(scores)

    def chosen(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        """The chosen epoch of a finished history: {epoch, by, value}; the last epoch when no epoch has a score."""
        best: dict[str, Any] | None = None
        for index, record in enumerate(history):
            if self.improves(record, history[:index]):
                best = record
        if best is None:
            return {"epoch": history[-1]["epoch"], "by": f"{LAST} (no epoch has a finite {self.figure})", "value": None}
        return {"epoch": best["epoch"], "by": self.spec, "value": self.score(best)}


def last_epoch(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The choice of `--pretrain-select last`."""
    return {"epoch": history[-1]["epoch"] if history else 0, "by": LAST, "value": None}


__all__ = ["Selection", "last_epoch"]
