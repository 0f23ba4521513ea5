"""The rich tables of the CLI: run summaries with paired differences, per-class metrics, grids and the robustness
report. Core returns rows and summaries (`ecgcl.protocol.results`, `ecgcl.protocol.sweep`,
`ecgcl.robustness.report`); only this module turns them into tables. User text is printed as text, never markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ecgcl.methods import short_label
from ecgcl.metrics import BOUNDED_METRICS, METRIC_NAMES
from ecgcl.protocol.sweep import GRID_METRIC
from ecgcl.protocol.paired import excludes_zero
from ecgcl.protocol.results import (counts_caption, endings_caption, interval_label, method_rows, paired_rows,
                                    row_interval)
from ecgcl.robustness.report import robustness_series, series_label


def interval_text(row: dict[str, Any], metric: str, sign: str = "", sep: str = " ") -> str:
    """`metric` in a summary row as shown in tables: a method's score `mean [CI low–CI high]` (`sep` between the
    two), its bounds clipped to [0, 1] for a metric of `ecgcl.metrics.BOUNDED_METRICS` (summary.json keeps the
    raw t interval); a difference (`sign="+"`, or a paired row with a `baseline`) `+mean ± t half-width`, never
    clipped."""
    difference = sign == "+" or row.get("baseline") is not None
    return interval_label(*row_interval(row, metric, difference), difference=difference, sep=sep)


def _paired_cell(row: dict[str, Any], metric: str):
    """`+0.034 ± 0.020 *` over `p 0.012`, green/red where the interval excludes 0 (a rich Text, never markup)."""
    text = interval_text(row, metric, "+")
    p = row.get(f"{metric}_p")
    if text == "-":
        return Text(text)
    significant = excludes_zero(row, metric)
    style = ("green" if row[f"{metric}_mean"] > 0 else "red") if significant else ""
    cell = Text(text + (" *" if significant else ""), style=style)
    if p is not None and not math.isnan(p):
        cell.append(f"\np {p:.3g}", style="dim")
    return cell


def per_class_table(per_class: dict[str, dict[str, float]], title: str = "Per class (test)"):
    """A rich Table with one row per class: test positives, precision, recall, F1, AUROC, PR-AUC."""
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


METRIC_WIDTH = max(len(name) for name in METRIC_NAMES)  # metric names are never cut short


def summary_tables(summary: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]] = (),
                   split_note: str | None = None) -> list:
    """Per label fraction, two rich Tables: test metrics (a column per method, cells `mean [CI low–CI high]`, the
    bounds clipped to [0, 1]: the raw t interval stays in summary.json) and paired differences (a column per
    comparison, cells `difference ± CI half-width *` and the p-value, never clipped, `*` where the 95% interval
    excludes 0).

    The first caption says how the repeats were split (`split_note`), gives each repeat's test records and
    positives per class (from `rows`) and warns about classes with fewer than 10 test positives.
    (FT = fine-tuned end to end, LP = linear probe on the frozen encoder; rich is imported lazily.)
    """
    caption = "\n".join(part for part in (split_note, counts_caption(rows), endings_caption(rows)) if part)
    tables = []
    methods, paired = method_rows(summary), paired_rows(summary)
    for fraction in sorted({r["label_fraction"] for r in methods}):
        rows = [r for r in methods if r["label_fraction"] == fraction]
        n = max(r["repeats"] for r in rows)
        table = Table(title=Text(f"Test metrics, label fraction {fraction:g}, {n} repeats: mean [95% CI], "
                                 "bounds clipped to [0, 1]"),
                      title_justify="left", caption=Text(caption) if caption else None, caption_justify="left")
        table.add_column("metric", no_wrap=True, min_width=METRIC_WIDTH)
        for r in rows:  # score cells may wrap at a narrow terminal, but are never cut short
            table.add_column(short_label(r["method"]), justify="right")
        for metric in METRIC_NAMES:
            table.add_row(metric, *(Text(interval_text(r, metric)) for r in rows))
        tables.append(table)
        pairs = [r for r in paired if r["label_fraction"] == fraction]
        if not pairs:
            continue
        table = Table(title=f"Paired differences, label fraction {fraction:g} (same test patients per repeat): "
                            "mean ± 95% t half-width, paired t-test p",
                      caption="* the 95% interval excludes 0", caption_justify="left", title_justify="left")
        table.add_column("metric", no_wrap=True, min_width=METRIC_WIDTH)
        for r in pairs:
            table.add_column(f"{short_label(r['method'])}\n− {short_label(r['baseline'])}",
                             justify="right")
        for metric in METRIC_NAMES:
            table.add_row(metric, *(_paired_cell(r, metric) for r in pairs))
        tables.append(table)
    return tables


def grid_tables(rows: list[dict[str, Any]]) -> list:
    """Per method, at the largest label fraction: a rich Table with a row per objective | augmentation and a column per
    encoder; cells `AUROC mean [CI]` (bounds clipped to [0, 1]) and the paired difference against the best cell
    (`*` where its 95% interval excludes 0)."""
    largest = max(r["label_fraction"] for r in rows)
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    encoders = list(dict.fromkeys(r["encoder"] for r in rows))
    tables = []
    for method in dict.fromkeys(r["method"] for r in rows):
        at = {(r["setting"], r["encoder"]): r for r in rows if r["method"] == method and r["label_fraction"] == largest}
        table = Table(title=Text(f"Grid, {short_label(method)}, label fraction {largest:g}: test AUROC mean [95% CI] "
                                 "(bounds clipped to [0, 1]); below, paired difference vs the best cell (best)"),
                      caption="* the paired 95% interval excludes 0", caption_justify="left", title_justify="left")
        table.add_column("objective | aug \\ encoder", overflow="fold")
        for encoder in encoders:
            table.add_column(Text(encoder), justify="right", no_wrap=True)
        for setting in settings:
            cells = []
            for encoder in encoders:
                r = at.get((setting, encoder))
                if r is None:
                    cells.append(Text("-"))
                    continue
                cell = Text(interval_text(r, GRID_METRIC, sep="\n"), style="bold" if r["best"] else "")
                if r["best"]:
                    cell.append("\nbest")
                elif r.get(f"{GRID_METRIC}_vs_best_n"):
                    significant = excludes_zero(r, f"{GRID_METRIC}_vs_best")
                    cell.append("\n" + interval_text(r, f"{GRID_METRIC}_vs_best", "+") + (" *" if significant else ""),
                                style="red" if significant else "dim")
                cells.append(cell)
            table.add_row(Text(setting), *cells)
        tables.append(table)
    return tables


def robustness_table(summary: Sequence[dict[str, Any]], metric: str = "auroc"):
    """A rich Table: a row per condition, a column per method, cells `mean [CI low–CI high]` of `metric` (bounds
    clipped to [0, 1] for a metric of BOUNDED_METRICS)."""
    series = robustness_series(summary, metric)
    repeats = max((r["n"] for r in summary), default=0)
    clipped = ", bounds clipped to [0, 1]" if metric in BOUNDED_METRICS else ""
    table = Table(title=Text(f"Robustness: test {metric.upper()}, {repeats} repeat(s): mean [95% CI]{clipped}"),
                  title_justify="left")
    table.add_column("family", no_wrap=True)
    table.add_column("condition", no_wrap=True)  # the row's name must stay readable; score cells wrap instead
    for fraction, method in series:
        table.add_column(Text(series_label(fraction, method)), justify="right")
    first = next(iter(series.values()), [])
    for index, row in enumerate(first):
        cells = []
        for rows in series.values():
            r = rows[index]
            cells.append(Text(interval_text({f"{metric}_{k}": r[k] for k in ("mean", "ci_low", "ci_high")}, metric)))
        table.add_row(Text(row["family"]), Text(row["condition"]), *cells)  # conditions may be user text
    return table
