"""`training_curves.png`: every figure a run recorded per epoch (objective loss, monitors, validation AUROC), a
panel per figure and a line per unit, with the pretraining epoch `--pretrain-select` kept marked; and the list of
a run's result files that trackers receive."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from ecgcl.config import LAST

CURVES_FILE = "training_curves.png"
# not figures of what a unit learns: bookkeeping, timing, and max_std (only the collapse check reads it)
NOT_PLOTTED = {"epoch", "epochs", "unit", "stage", "seconds", "lr", "monitor_seconds", "ecgs_per_s", "max_std"}
RESULT_FILES = ("config.json", "summary.json", "summary.csv", "metrics.json", "metrics.csv", "history.jsonl",
                "loss_curves.png", "label_efficiency.png", CURVES_FILE, "robustness.csv", "robustness.json",
                "robustness.png", "report.html")


def _figures(records: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(stage kind, figure) panels in first-seen order: pretraining figures first, then fine-tuning's."""
    seen: dict[tuple[str, str], None] = {}
    for record in sorted(records, key=lambda r: r.get("stage") != "pretrain"):
        for key, value in record.items():
            if key not in NOT_PLOTTED and isinstance(value, (int, float)) and not isinstance(value, bool):
                seen[("pretrain" if record.get("stage") == "pretrain" else "training", key)] = None
    return list(seen)


def plot_training_curves(path: Path, records: Sequence[dict[str, Any]], chosen: dict[str, dict[str, Any]]) -> Path | None:
    """Draw every per-epoch figure of `records` (from `history.jsonl`); `chosen` maps a pretraining unit to the
    epoch pretrain.pt keeps ({epoch, by}), marked on its lines. Nothing is drawn when no epoch was recorded."""
    records = [r for r in records if r.get("stage") != "linear"]  # a probe has no epochs to draw
    panels = _figures(records)
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ecgcl.files import finish_figure

    lines: dict[tuple[str, str], dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        stage = "pretrain" if record.get("stage") == "pretrain" else "training"
        for key, value in record.items():
            if (stage, key) in panels and isinstance(value, (int, float)) and value is not None:
                lines[(stage, key)][str(record.get("unit"))].append((int(record["epoch"]), float(value)))
    columns = min(3, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.1 * rows), squeeze=False)
    for ax, (stage, key) in zip(axes.flat, panels):
        for index, (unit, points) in enumerate(sorted(lines[(stage, key)].items())):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", color=f"C{index % 10}",
                    label=unit, alpha=0.8)
            mark = chosen.get(unit)
            if stage == "pretrain" and mark and mark.get("epoch") in dict(points) and mark.get("by") != LAST:
                ax.plot([mark["epoch"]], [dict(points)[mark["epoch"]]], marker="*", markersize=13,
                        color=f"C{index % 10}", markeredgecolor="black")
        ax.set(title=f"{stage}: {key}", xlabel="epoch")
        if len(lines[(stage, key)]) <= 8:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    marked = sorted({m["by"] for m in chosen.values() if m.get("by") and m["by"] != LAST})
    if marked:
        fig.suptitle(f"* the pretraining epoch kept ({', '.join(marked)})", fontsize=9)
    return finish_figure(path, fig, dpi=100)


def run_artifacts(out: Path) -> list[Path]:
    """The result files of a run that exist (what trackers keep as artifacts)."""
    return [Path(out) / name for name in RESULT_FILES if (Path(out) / name).is_file()]


__all__ = ["CURVES_FILE", "plot_training_curves", "run_artifacts"]
