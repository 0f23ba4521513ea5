"""The results folder: per-repeat metrics (JSON, CSV), the summary with 95% CIs, a rich table and PNG plots."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ecgcl.protocol.metrics import METRIC_NAMES, mean_ci

METHOD_LABELS = {
    "pretrained_finetune": "pretrained, fine-tuned",
    "pretrained_linear": "pretrained, linear probe",
    "random_linear": "random init, linear probe",
    "supervised": "supervised from scratch",
}


def summarise(rows: Sequence[dict[str, Any]], confidence: float = 0.95) -> list[dict[str, Any]]:
    """One row per (label fraction, method): n repeats and mean / CI bounds of every metric."""
    frame = pd.DataFrame(list(rows))
    summary = []
    for (fraction, method), group in frame.groupby(["label_fraction", "method"], sort=False):
        row: dict[str, Any] = {"label_fraction": float(fraction), "method": method,
                               "repeats": int(group["repeat"].nunique()) if "repeat" in group else int(len(group))}
        for metric in METRIC_NAMES:
            values = group[metric].astype(float)
            mean, low, high = mean_ci(values.tolist(), confidence)
            row.update({f"{metric}_mean": mean, f"{metric}_ci_low": low, f"{metric}_ci_high": high,
                        f"{metric}_n": int(values.notna().sum())})  # repeats behind the CI (NaN ones dropped)
        summary.append(row)
    order = {m: i for i, m in enumerate(METHOD_LABELS)}
    return sorted(summary, key=lambda r: (r["label_fraction"], order.get(r["method"], 99), r["method"]))


def _clean(value: Any) -> Any:
    """NaN -> None so the JSON files are valid JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, payload: Any) -> None:
    """Write JSON through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_clean(payload), indent=2) + "\n")
    tmp.replace(path)


def write_tables(out: Path, rows: Sequence[dict[str, Any]], summary: Sequence[dict[str, Any]]) -> None:
    """metrics.json / metrics.csv (one row per repeat, fraction and method) and summary.json / summary.csv."""
    flat = [{k: v for k, v in r.items() if k not in ("history", "fingerprint", "per_class")} for r in rows]
    write_json(out / "metrics.json", list(rows))
    pd.DataFrame(flat).to_csv(out / "metrics.csv", index=False)
    write_json(out / "summary.json", list(summary))
    pd.DataFrame(list(summary)).to_csv(out / "summary.csv", index=False)


def _interval(row: dict[str, Any], metric: str) -> str:
    mean, low, high = row[f"{metric}_mean"], row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    if mean is None or math.isnan(mean):
        return "-"
    if low is None or math.isnan(low):
        return f"{mean:.3f}"
    return f"{mean:.3f} ± {(high - low) / 2:.3f}"


SHORT_LABELS = {"pretrained_finetune": "pretrained FT", "pretrained_linear": "pretrained LP",
                "random_linear": "random-init LP", "supervised": "supervised"}


MIN_TEST_POSITIVES = 10  # below this many test records of a class, its interval means little


def test_counts(rows: Sequence[dict[str, Any]]) -> dict[int, tuple[int, dict[str, int]]]:
    """Per repeat: the number of test records and of test records of each class (from the result rows)."""
    counts: dict[int, tuple[int, dict[str, int]]] = {}
    for row in rows:
        if "per_class" in row and row.get("repeat") not in counts:
            counts[row["repeat"]] = (int(row["test_records"]),
                                     {c: int(v["positives"]) for c, v in row["per_class"].items()})
    return dict(sorted(counts.items()))


def counts_caption(rows: Sequence[dict[str, Any]]) -> str:
    """Test records and positives per class of each repeat, and a warning line for classes under 10 positives."""
    counts = test_counts(rows)
    if not counts:
        return ""
    per_repeat = list(counts.values())
    classes = list(per_repeat[0][1])
    lines = ["test records per repeat: " + ", ".join(str(n) for n, _ in per_repeat) + "; test positives per class: "
             + ", ".join(f"{c} " + "/".join(str(p[c]) for _, p in per_repeat) for c in classes)]
    rare = [c for c in classes if min(p.get(c, 0) for _, p in per_repeat) < MIN_TEST_POSITIVES]
    if rare:
        lines.append(f"warning: {', '.join(rare)} had fewer than {MIN_TEST_POSITIVES} test positives in a repeat; "
                     "intervals for such classes are meaningless")
    return "\n".join(lines)


def per_class_table(per_class: dict[str, dict[str, float]], title: str = "Per class (test)"):
    """A rich Table with one row per class: test positives, precision, recall, F1, AUROC, PR-AUC."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(title), title_justify="left")
    table.add_column("class")
    metrics = ("positives", "precision", "recall", "f1", "auroc", "pr_auc")
    for metric in metrics:
        table.add_column(metric, justify="right")
    for name, values in per_class.items():
        cells = [str(values[m]) if m == "positives" else _number(values[m]) for m in metrics]
        table.add_row(escape(str(name)), *cells)
    return table


def _number(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def summary_tables(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]] = ()) -> list:
    """One rich Table per label fraction: a row per metric, a column per method, cells `mean ± CI half-width`.

    The caption gives each repeat's test records and positives per class (from `rows`) and warns about classes
    with fewer than 10 test positives. (FT = fine-tuned end to end, LP = linear probe on the frozen encoder;
    rich is imported lazily.)
    """
    from rich.table import Table
    from rich.text import Text

    caption = counts_caption(rows)
    tables = []
    for fraction in sorted({r["label_fraction"] for r in summary}):
        rows = [r for r in summary if r["label_fraction"] == fraction]
        n = max(r["repeats"] for r in rows)
        table = Table(title=f"Test metrics, label fraction {fraction:g}, {n} repeats: mean ± 95% CI half-width",
                      title_justify="left", caption=Text(caption) if caption else None, caption_justify="left")
        table.add_column("metric")
        for r in rows:
            table.add_column(SHORT_LABELS.get(r["method"], r["method"]), justify="right", no_wrap=True)
        for metric in METRIC_NAMES:
            table.add_row(metric, *(_interval(r, metric) for r in rows))
        tables.append(table)
    return tables


def plot_loss_curves(path: Path, pretrain_histories: dict[int, list[dict[str, Any]]],
                     rows: Sequence[dict[str, Any]]) -> Path:
    """Pretraining loss per repeat, and validation AUROC per fine-tuning epoch (largest label fraction)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for repeat, history in sorted(pretrain_histories.items()):
        if history:
            left.plot([h["epoch"] for h in history], [h["loss"] for h in history], marker="o", label=f"repeat {repeat + 1}")
    left.set(title="Contrastive pretraining", xlabel="epoch", ylabel="loss")
    if pretrain_histories:
        left.legend(fontsize=8)
    largest = max((r["label_fraction"] for r in rows), default=1.0)
    for method in METHOD_LABELS:
        curves = [r["history"] for r in rows if r["method"] == method and r["label_fraction"] == largest]
        for i, history in enumerate(curves):
            right.plot([h["epoch"] for h in history], [h["val_auroc"] if h["val_auroc"] is not None else float("nan")
                                                        for h in history],
                       color=f"C{list(METHOD_LABELS).index(method)}", alpha=0.7,
                       label=METHOD_LABELS[method] if i == 0 else None)
    right.set(title=f"Fine-tuning (label fraction {largest:g})", xlabel="epoch", ylabel="validation AUROC")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_label_efficiency(path: Path, summary: Sequence[dict[str, Any]], metric: str = "auroc") -> Path:
    """Test `metric` (mean and 95% CI over repeats) against the label fraction, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, method in enumerate(METHOD_LABELS):
        points = sorted((r for r in summary if r["method"] == method), key=lambda r: r["label_fraction"])
        if not points:
            continue
        x = [r["label_fraction"] for r in points]
        mean = [r[f"{metric}_mean"] for r in points]
        low = [r[f"{metric}_ci_low"] if not math.isnan(r[f"{metric}_ci_low"]) else r[f"{metric}_mean"] for r in points]
        high = [r[f"{metric}_ci_high"] if not math.isnan(r[f"{metric}_ci_high"]) else r[f"{metric}_mean"] for r in points]
        ax.plot(x, mean, marker="o", color=f"C{i}", label=METHOD_LABELS[method])
        ax.fill_between(x, [max(v, 0.0) for v in low], [min(v, 1.0) for v in high], color=f"C{i}", alpha=0.15)
    ax.set_xscale("log")
    fractions = sorted({r["label_fraction"] for r in summary})
    ax.set_xticks(fractions, [f"{f:g}" for f in fractions])
    ax.minorticks_off()
    ax.set(title="Label efficiency (test, mean; band: 95% CI clipped to [0, 1])", xlabel="fraction of training labels", ylabel=metric.upper())
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
