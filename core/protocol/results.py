"""The results folder: per-repeat metrics (JSON, CSV), the summary with 95% CIs and paired differences, the
captions that go with them, and PNG plots (tables are drawn by `ecgcl.cli.tables`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ecgcl.files import write_json
from ecgcl.methods import METHOD_TABLE, short_label
from ecgcl.metrics import METRIC_NAMES, mean_ci

METHOD_LABELS = {m.name: m.label for m in METHOD_TABLE}


def summarise(rows: Sequence[dict[str, Any]], confidence: float = 0.95) -> list[dict[str, Any]]:
    """One row per (label fraction, method): n repeats and mean / CI bounds of every metric (`baseline` None),
    then one row per paired comparison (`baseline` set; see `ecgcl.protocol.paired`)."""
    from ecgcl.protocol.paired import paired_comparisons

    frame = pd.DataFrame(list(rows))
    summary = []
    for (fraction, method), group in frame.groupby(["label_fraction", "method"], sort=False):
        row: dict[str, Any] = {"label_fraction": float(fraction), "method": method, "baseline": None,
                               "repeats": int(group["repeat"].nunique()) if "repeat" in group else int(len(group))}
        for metric in METRIC_NAMES:
            if metric not in group:  # a unit saved by an older version
                continue
            values = group[metric].astype(float)
            mean, low, high = mean_ci(values.tolist(), confidence)
            row.update({f"{metric}_mean": mean, f"{metric}_ci_low": low, f"{metric}_ci_high": high,
                        f"{metric}_n": int(values.notna().sum())})  # repeats behind the CI (NaN ones dropped)
        summary.append(row)
    order = {m: i for i, m in enumerate(METHOD_LABELS)}
    summary = sorted(summary, key=lambda r: (r["label_fraction"], order.get(r["method"], 99), r["method"]))
    return summary + paired_comparisons(rows, confidence)


def method_rows(summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-method rows of a summary (without the paired comparisons)."""
    return [r for r in summary if r.get("baseline") is None]


def paired_rows(summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The paired-comparison rows of a summary."""
    return [r for r in summary if r.get("baseline") is not None]


def write_tables(out: Path, rows: Sequence[dict[str, Any]], summary: Sequence[dict[str, Any]]) -> None:
    """metrics.json / metrics.csv (one row per repeat, fraction and method) and summary.json / summary.csv."""
    flat = [{k: v for k, v in r.items() if k not in ("history", "fingerprint", "per_class")} for r in rows]
    write_json(out / "metrics.json", list(rows))
    pd.DataFrame(flat).to_csv(out / "metrics.csv", index=False)
    write_json(out / "summary.json", list(summary))
    pd.DataFrame(list(summary)).to_csv(out / "summary.csv", index=False)


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


UNDERTRAINED_HINT = "may be under-trained: raise --finetune-epochs"


def undertrained(row: dict[str, Any]) -> bool:
    """An end-to-end unit whose best validation epoch was its last one: its epoch budget cut it off."""
    return row.get("best_epoch") is not None and row.get("best_epoch") == row.get("epochs_run")


def _unit_name(row: dict[str, Any]) -> str:
    return (f"{row['cell']} " if "cell" in row else "") + \
        f"{short_label(row['method'])} repeat {row.get('repeat', 0) + 1}" + \
        (f" labels {row['label_fraction']:g}" if "label_fraction" in row else "")


def endings_caption(rows: Sequence[dict[str, Any]]) -> str:
    """How the units ended: end-to-end units stopped by patience or at --finetune-epochs, with a warning naming
    those whose best epoch was the last (they may be under-trained), and linear probes that hit the iteration
    limit. Empty for rows without that information (saved by older versions)."""
    trained = [r for r in rows if r.get("epochs_run") is not None]
    probes = [r for r in rows if r.get("probe_c") is not None]
    lines = []
    if trained:
        by_patience = sum(r.get("stopped") == "patience" for r in trained)
        lines.append(f"end-to-end units: {by_patience} of {len(trained)} stopped by --patience (best epoch restored), "
                     f"{len(trained) - by_patience} ran to --finetune-epochs")
        cut = [r for r in trained if undertrained(r)]
        if cut:
            named = ", ".join(_unit_name(r) for r in cut[:4]) + (f" and {len(cut) - 4} more" if len(cut) > 4 else "")
            lines.append(f"warning: best epoch = last epoch in {len(cut)} unit(s) ({named}): {UNDERTRAINED_HINT}")
    stuck = [r for r in probes if r.get("stopped") == "max_iter"]
    if stuck:
        lines.append(f"warning: {len(stuck)} linear probe(s) hit the L-BFGS iteration limit "
                     f"({', '.join(_unit_name(r) for r in stuck[:4])}); their scores are not converged")
    return "\n".join(lines)


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
        curves = [r["history"] for r in rows if r["method"] == method and r["label_fraction"] == largest
                  and r["history"] and "epoch" in r["history"][0]]  # linear probes have no epochs
        for i, history in enumerate(curves):
            right.plot([h["epoch"] for h in history], [h["val_auroc"] if h["val_auroc"] is not None else float("nan")
                                                        for h in history],
                       color=f"C{list(METHOD_LABELS).index(method)}", alpha=0.7,
                       label=METHOD_LABELS[method] if i == 0 else None)
    right.set(title=f"End-to-end training (label fraction {largest:g})", xlabel="epoch", ylabel="validation AUROC")
    if right.get_legend_handles_labels()[0]:
        right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_label_efficiency(path: Path, summary: Sequence[dict[str, Any]], metric: str = "auroc") -> Path:
    """Left: test `metric` (mean and 95% CI over repeats) against the label fraction, one line per method.
    Right: the paired differences (method − baseline, mean and 95% t interval) against the label fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = sorted({r["label_fraction"] for r in summary})
    fig, (ax, right) = plt.subplots(1, 2, figsize=(12, 4))
    methods = method_rows(summary)
    for i, method in enumerate(METHOD_LABELS):
        points = sorted((r for r in methods if r["method"] == method), key=lambda r: r["label_fraction"])
        if not points:
            continue
        x = [r["label_fraction"] for r in points]
        mean = [r[f"{metric}_mean"] for r in points]
        low = [r[f"{metric}_ci_low"] if not math.isnan(r[f"{metric}_ci_low"]) else r[f"{metric}_mean"] for r in points]
        high = [r[f"{metric}_ci_high"] if not math.isnan(r[f"{metric}_ci_high"]) else r[f"{metric}_mean"] for r in points]
        ax.plot(x, mean, marker="o", color=f"C{i}", label=METHOD_LABELS[method])
        ax.fill_between(x, [max(v, 0.0) for v in low], [min(v, 1.0) for v in high], color=f"C{i}", alpha=0.15)
    ax.set(title="Label efficiency (test, mean; band: 95% CI clipped to [0, 1])", xlabel="fraction of training labels", ylabel=metric.upper())
    ax.legend(fontsize=8)
    pairs = paired_rows(summary)
    for i, (method, baseline) in enumerate(sorted({(r["method"], r["baseline"]) for r in pairs},
                                                  key=lambda mb: list(METHOD_LABELS).index(mb[0]) if mb[0] in METHOD_LABELS else 99)):
        points = sorted((r for r in pairs if (r["method"], r["baseline"]) == (method, baseline)),
                        key=lambda r: r["label_fraction"])
        x = [r["label_fraction"] for r in points]
        mean = [r[f"{metric}_mean"] for r in points]
        low = [r[f"{metric}_ci_low"] if not math.isnan(r[f"{metric}_ci_low"]) else r[f"{metric}_mean"] for r in points]
        high = [r[f"{metric}_ci_high"] if not math.isnan(r[f"{metric}_ci_high"]) else r[f"{metric}_mean"] for r in points]
        label = f"{short_label(method)} − {short_label(baseline)}"
        right.plot(x, mean, marker="o", color=f"C{i}", label=label, linestyle="-" if baseline == "supervised" else "--")
        right.fill_between(x, low, high, color=f"C{i}", alpha=0.15)
    right.axhline(0.0, color="black", linewidth=0.8)
    right.set(title="Paired differences (test, mean; band: 95% t interval)", xlabel="fraction of training labels",
              ylabel=f"{metric.upper()} difference")
    if pairs:
        right.legend(fontsize=8)
    for axis in (ax, right):
        axis.set_xscale("log")
        axis.set_xticks(fractions, [f"{f:g}" for f in fractions])
        axis.minorticks_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
