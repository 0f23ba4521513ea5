"""The results folder: per-repeat metrics (JSON, CSV), the summary with 95% CIs and paired differences, the
captions that go with them, and PNG plots (tables are drawn by `ecgcl.cli.tables`).

The summary files keep the raw t intervals; plots and tables show the bounds of metrics that live in [0, 1]
clipped to [0, 1] (`ecgcl.metrics.BOUNDED_METRICS`), and the intervals of paired differences as they are."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ecgcl.config import LAST
from ecgcl.files import finish_figure, write_csv, write_json
from ecgcl.methods import COMPARISONS, METHOD_TABLE, short_label
from ecgcl.metrics import BOUNDED_METRICS, METRIC_NAMES, mean_ci, shown_interval

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
    """metrics.json / metrics.csv (one row per repeat, fraction and method) and summary.json / summary.csv, each
    through a temporary file (a failed write is one `EcgclError` line, see `ecgcl.files.atomic_write`)."""
    flat = [{k: v for k, v in r.items() if k not in ("history", "fingerprint", "per_class")} for r in rows]
    write_json(out / "metrics.json", list(rows), what="results table")
    write_csv(out / "metrics.csv", pd.DataFrame(flat), what="results table")
    write_json(out / "summary.json", list(summary), what="results table")
    write_csv(out / "summary.csv", pd.DataFrame(list(summary)), what="results table")


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
        lines.append(f"warning: {len(stuck)} linear probe(s) hit the solver's iteration limit "
                     f"({', '.join(_unit_name(r) for r in stuck[:4])}); their scores are not converged")
    return "\n".join(lines)


def pretraining_caption(chosen: dict[str, dict[str, Any]], collapses: Sequence[str]) -> str:
    """Which pretraining epoch each unit kept (with --pretrain-select best:MONITOR) and where the monitors saw the
    representation collapse, for the table caption; empty when there is nothing to say."""
    lines = []
    kept = {unit: c for unit, c in chosen.items() if c.get("by") and c["by"] != LAST}
    if kept:
        shown = "; ".join(f"{unit}: epoch {c['epoch']}" + (f" ({c['value']:.3f})" if c.get("value") is not None else "")
                          for unit, c in kept.items())
        lines.append(f"pretrain.pt keeps the epoch chosen by {', '.join(sorted({c['by'] for c in kept.values()}))}: "
                     f"{shown}")
    lines += [f"warning: representation collapsing in {note}" for note in collapses]
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
    left.set(title="Pretraining", xlabel="epoch", ylabel="objective loss")
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
    return finish_figure(path, fig)


def _number(value: Any) -> float:
    """A summary value as a float: None (NaN saved as JSON null) and missing values become NaN."""
    return float("nan") if value is None else float(value)


def row_interval(row: dict[str, Any], metric: str, difference: bool | None = None) -> tuple[float, float, float]:
    """(mean, low, high) of `metric` in a summary row, as shown: a method's interval of a metric in [0, 1] is
    clipped to [0, 1]; a difference (`difference`, by default a paired row: one with a `baseline`) is never
    clipped. NaN where undefined."""
    mean, low, high = (_number(row.get(f"{metric}_{k}")) for k in ("mean", "ci_low", "ci_high"))
    if difference is None:
        difference = row.get("baseline") is not None
    if not difference:
        low, high = shown_interval(metric, low, high)
    return mean, low, high


def interval_label(mean: float, low: float, high: float, *, difference: bool = False, sep: str = " ") -> str:
    """The text of a shown interval: `0.912 [0.880–1.000]` (bounds as given, so clipped ones show clipped; no
    space inside the brackets, so a narrow table wraps the cell only before them; `sep` goes between mean and
    interval), a difference `+0.034 ± 0.020` (its t interval is symmetric and never clipped), the mean alone
    without an interval (one repeat), `-` without a mean."""
    mean, low, high = _number(mean), _number(low), _number(high)
    sign = "+" if difference else ""
    if math.isnan(mean):
        return "-"
    if math.isnan(low) or math.isnan(high):
        return f"{mean:{sign}.3f}"
    if difference:
        return f"{mean:+.3f} ± {(high - low) / 2:.3f}"
    return f"{mean:.3f}{sep}[{low:.3f}–{high:.3f}]"


def _repeats_text(rows: Sequence[dict[str, Any]], metric: str) -> str:
    """`5 repeats` (or `3-5 repeats`) behind the intervals of `rows`."""
    counts = sorted({int(r.get(f"{metric}_n", r.get("repeats", 0)) or 0) for r in rows})
    if not counts:
        return "0 repeats"
    n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"{n} repeat{'' if counts == [1] else 's'}"


def _pair_label(row: dict[str, Any]) -> str:
    return f"{short_label(row['method'])} − {short_label(row['baseline'])}"


def _pair_order(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Paired rows in COMPARISONS order (the table order), unknown pairs last."""
    order = {pair: i for i, pair in enumerate(COMPARISONS)}
    return sorted(rows, key=lambda r: order.get((r["method"], r["baseline"]), len(order)))


def _method_order(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {m: i for i, m in enumerate(METHOD_LABELS)}
    return sorted(rows, key=lambda r: (order.get(r["method"], len(order)), r["method"]))


def _forest_panel(ax, rows: Sequence[dict[str, Any]], metric: str, *, difference: bool) -> None:
    """One row per summary row, top to bottom: a mean marker, a horizontal 95% CI whisker with caps (clipped to
    [0, 1] for a method's bounded metric, raw for a difference; gid `ci`) and the value at the right edge."""
    from matplotlib.transforms import blended_transform_factory

    beside = blended_transform_factory(ax.transAxes, ax.transData)
    for y, row in enumerate(rows):
        mean, low, high = row_interval(row, metric, difference)
        color = "C0" if not difference else "0.25"
        if difference and not math.isnan(low) and (low > 0 or high < 0):  # the interval excludes 0
            color = "tab:green" if mean > 0 else "tab:red"
        if not (math.isnan(low) or math.isnan(high)):
            ax.hlines(y, low, high, color=color, linewidth=2, gid="ci")
            ax.plot([low, high], [y, y], linestyle="none", marker="|", markersize=10, color=color)
        if not math.isnan(mean):
            ax.plot([mean], [y], marker="D" if difference else "o", markersize=7, color=color, linestyle="none",
                    gid="mean")
        text = interval_label(mean, low, high, difference=difference)
        p = _number(row.get(f"{metric}_p"))
        if difference and not math.isnan(p):
            text += f", p {p:.3g}"
        ax.text(1.02, y, text, transform=beside, va="center", ha="left", fontsize=8, color=color)
    labels = [_pair_label(r) if difference else METHOD_LABELS.get(r["method"], r["method"]) for r in rows]
    ax.set_yticks(range(len(rows)), labels)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top
    ax.grid(axis="x", alpha=0.3)


def _forest_limits(rows: Sequence[dict[str, Any]], metric: str) -> tuple[float, float]:
    """x limits that show every mean and shown (so maybe clipped) interval with a small margin."""
    values = [v for r in rows for v in row_interval(r, metric) if not math.isnan(v)]
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    margin = max(0.05 * (high - low), 0.01)
    return low - margin, high + margin  # a whisker clipped at 0 or 1 shows its cap inside the panel


def label_efficiency_figure(summary: Sequence[dict[str, Any]], metric: str = "auroc"):
    """The matplotlib Figure of `label_efficiency.png` (see `plot_label_efficiency`); the caller closes it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = sorted({r["label_fraction"] for r in summary})
    if len(fractions) == 1:
        return _forest_figure(plt, summary, metric, fractions[0])
    return _lines_figure(plt, summary, metric, fractions)


def _forest_figure(plt, summary: Sequence[dict[str, Any]], metric: str, fraction: float):
    """One label fraction: a forest plot. Left: one row per method (mean, 95% CI whisker clipped to [0, 1]);
    right: one row per paired difference (method − baseline, mean, 95% t interval, a line at 0, p-value)."""
    methods, pairs = _method_order(method_rows(summary)), _pair_order(paired_rows(summary))
    height = 1.6 + 0.45 * max(len(methods), len(pairs), 1)
    if pairs:
        fig, (left, right) = plt.subplots(1, 2, figsize=(13, height))
    else:
        fig, left = plt.subplots(1, 1, figsize=(7, height))
        right = None
    _forest_panel(left, methods, metric, difference=False)
    left.set_xlim(*_forest_limits(methods, metric))
    if metric in BOUNDED_METRICS:  # where a whisker was clipped, the bound it was clipped to
        raw = [_number(r.get(f"{metric}_ci_{k}")) for r in methods for k in ("low", "high")]
        for bound in (0.0, 1.0):
            if any(v < bound if bound == 0.0 else v > bound for v in raw if not math.isnan(v)):
                left.axvline(bound, color="0.5", linestyle=":", linewidth=1, gid="bound")
    left.set(title="Methods: mean, 95% CI" + (" clipped to [0, 1]" if metric in BOUNDED_METRICS else ""),
             xlabel=f"test {metric.upper()}")
    if right is not None:
        _forest_panel(right, pairs, metric, difference=True)
        low, high = _forest_limits(pairs, metric)
        right.set_xlim(min(low, -0.01), max(high, 0.01))  # 0 is always in view
        right.axvline(0.0, color="black", linewidth=0.8, gid="zero")
        right.set(title="Paired differences (same test patients): mean, 95% t CI, paired t-test p",
                  xlabel=f"{metric.upper()} difference (method − baseline)")
    everything = list(methods) + list(pairs)
    fig.suptitle(f"Test {metric.upper()} at label fraction {fraction:g}: mean and 95% CI over "
                 f"{_repeats_text(everything, metric)}", fontsize=11)
    fig.tight_layout()
    return fig


def _lines_figure(plt, summary: Sequence[dict[str, Any]], metric: str, fractions: Sequence[float]):
    """Several label fractions. Left: test `metric` (mean and 95% CI band, clipped to [0, 1]) against the label
    fraction, one line per method. Right: the paired differences (mean and 95% t interval band)."""
    fig, (ax, right) = plt.subplots(1, 2, figsize=(12, 4))
    methods = method_rows(summary)
    for i, method in enumerate(METHOD_LABELS):
        points = sorted((r for r in methods if r["method"] == method), key=lambda r: r["label_fraction"])
        if not points:
            continue
        shown = [row_interval(r, metric) for r in points]
        x = [r["label_fraction"] for r in points]
        mean = [m for m, _, _ in shown]
        ax.plot(x, mean, marker="o", color=f"C{i}", label=METHOD_LABELS[method])
        ax.fill_between(x, [m if math.isnan(lo) else lo for m, lo, _ in shown],
                        [m if math.isnan(hi) else hi for m, _, hi in shown], color=f"C{i}", alpha=0.15)
    clipped = " clipped to [0, 1]" if metric in BOUNDED_METRICS else ""
    ax.set(title=f"Label efficiency (test, mean; band: 95% CI{clipped}; {_repeats_text(methods, metric)})",
           xlabel="fraction of training labels", ylabel=metric.upper())
    ax.legend(fontsize=8)
    pairs = paired_rows(summary)
    for i, (method, baseline) in enumerate(sorted({(r["method"], r["baseline"]) for r in pairs},
                                                  key=lambda mb: list(METHOD_LABELS).index(mb[0]) if mb[0] in METHOD_LABELS else 99)):
        points = sorted((r for r in pairs if (r["method"], r["baseline"]) == (method, baseline)),
                        key=lambda r: r["label_fraction"])
        shown = [row_interval(r, metric) for r in points]
        x = [r["label_fraction"] for r in points]
        label = f"{short_label(method)} − {short_label(baseline)}"
        right.plot(x, [m for m, _, _ in shown], marker="o", color=f"C{i}", label=label,
                   linestyle="-" if baseline == "supervised" else "--")
        right.fill_between(x, [m if math.isnan(lo) else lo for m, lo, _ in shown],
                           [m if math.isnan(hi) else hi for m, _, hi in shown], color=f"C{i}", alpha=0.15)
    right.axhline(0.0, color="black", linewidth=0.8, gid="zero")
    right.set(title="Paired differences (test, mean; band: 95% t interval)", xlabel="fraction of training labels",
              ylabel=f"{metric.upper()} difference")
    if pairs:
        right.legend(fontsize=8)
    for axis in (ax, right):
        axis.set_xscale("log")
        axis.set_xticks(fractions, [f"{f:g}" for f in fractions])
        axis.minorticks_off()
    fig.tight_layout()
    return fig


def plot_label_efficiency(path: Path, summary: Sequence[dict[str, Any]], metric: str = "auroc") -> Path:
    """Write `label_efficiency.png` and return its path.

    Several label fractions: test `metric` (mean and 95% CI band over repeats, clipped to [0, 1]) against the
    label fraction, one line per method, and beside it the paired differences (method − baseline, mean and
    95% t interval band) against the label fraction.
    One label fraction (a line would be a single dot): a forest plot. Left, one row per method: the mean, a
    horizontal 95% CI whisker clipped to [0, 1] and the value; right, one row per paired difference: the mean,
    its 95% t interval (not clipped), a vertical line at 0 and the paired t-test p-value. The summary itself
    (summary.json / summary.csv) keeps the raw intervals.
    """
    fig = label_efficiency_figure(summary, metric)  # selects the Agg backend before pyplot is imported
    return finish_figure(path, fig, layout=False)
