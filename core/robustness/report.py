"""Scoring a model under the robustness grid, the summary over repeats, and the report files.

Each condition perturbs the same test records (after they are read, on the model's device) and is scored
with the metrics of `ecgcl evaluate`; the clean condition is exactly what `evaluate` reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgcl.errors import EcgclError
from ecgcl.metrics import METRIC_NAMES, mean_ci, shown_interval
from ecgcl.robustness.conditions import FAMILIES, Condition

UNIT_KEYS = ("label_fraction", "method")


def score_conditions(model, store, rows: np.ndarray, y: np.ndarray, conditions: Sequence[Condition], *, registry,
                     seed: int, device, batch_size: int, threshold=0.5) -> list[dict[str, Any]]:
    """Metrics of `model` on the records `rows` under every condition (one dict per condition); `threshold`
    (the one chosen on validation) turns probabilities into decisions, as `ecgcl evaluate` does."""
    import torch

    from ecgcl.engine.device import derive_seed
    from ecgcl.engine.inference import predict
    from ecgcl.metrics import classification_metrics
    from ecgcl.robustness.perturb import build_perturbation

    perturbations = [build_perturbation(c, registry=registry, store_leads=store.leads, fs=store.fs)
                     for c in conditions]  # a bad --robustness-extra fails before any scoring
    scored = []
    for condition, perturb in zip(conditions, perturbations):
        generator = torch.Generator(device=device).manual_seed(
            derive_seed(seed, "robustness", condition.family, condition.name))

        def transform(batch, perturb=perturb, generator=generator, condition=condition):
            out = perturb(batch, generator)
            if out.shape != batch.shape or not torch.isfinite(out).all():
                raise EcgclError(f"robustness condition {condition.name!r} must keep the batch shape "
                                 f"{tuple(batch.shape)} and finite values, got {tuple(out.shape)}")
            return out

        probs = predict(model, store, rows, batch_size=batch_size, device=device,
                        transform=None if condition.clean else transform)
        scored.append({"family": condition.family, "condition": condition.name,
                       **classification_metrics(y[rows], probs, threshold)})
    return scored


def summarise_robustness(rows: Sequence[dict[str, Any]], confidence: float = 0.95) -> list[dict[str, Any]]:
    """One row per (label fraction, method, condition, metric): mean and CI over the repeats, n repeats."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = (row.get("label_fraction"), row.get("method"), row["family"], row["condition"])
        groups.setdefault(key, []).append(row)
    summary = []
    for (fraction, method, family, condition), members in groups.items():
        for metric in METRIC_NAMES:
            values = [float("nan") if m[metric] is None else float(m[metric]) for m in members]
            mean, low, high = mean_ci(values, confidence)
            summary.append({"label_fraction": fraction, "method": method, "family": family, "condition": condition,
                            "metric": metric, "mean": mean, "ci_low": low, "ci_high": high,
                            "n": int(sum(not math.isnan(v) for v in values))})
    return summary


def write_robustness(out: Path, rows: Sequence[dict[str, Any]], summary: Sequence[dict[str, Any]], *,
                     skipped: Sequence[str], seed: int) -> list[Path]:
    """robustness.csv (the summary), robustness.json (summary, per-repeat scores, skipped conditions) and .png."""
    import pandas as pd

    from ecgcl.files import make_folders, write_csv, write_json

    make_folders(out, "results folder")
    write_json(out / "robustness.json", {"seed": seed, "skipped": list(skipped), "summary": list(summary),
                                         "per_repeat": list(rows)}, what="robustness report")
    write_csv(out / "robustness.csv", pd.DataFrame(list(summary)), what="robustness report")
    plot_robustness(out / "robustness.png", summary)
    return [out / "robustness.csv", out / "robustness.json", out / "robustness.png"]


def robustness_series(summary: Sequence[dict[str, Any]], metric: str) -> dict[tuple, list[dict[str, Any]]]:
    """Summary rows of `metric` per (label fraction, method), in grid order."""
    series: dict[tuple, list[dict[str, Any]]] = {}
    for row in summary:
        if row["metric"] == metric:
            series.setdefault((row["label_fraction"], row["method"]), []).append(row)
    return series


def series_label(fraction, method) -> str:
    return str(method) + (f" ({fraction:g} of labels)" if fraction is not None and fraction != 1.0 else "")


def plot_robustness(path: Path, summary: Sequence[dict[str, Any]], metric: str = "auroc") -> Path:
    """One panel per family: `metric` (mean, 95% CI bars clipped to [0, 1]) per condition, one series per
    method; the dashed lines are each method's clean score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ecgcl.files import finish_figure

    series = robustness_series(summary, metric)
    families = [f for f in FAMILIES if any(r["family"] == f for r in summary)]
    sizes = [len({r["condition"] for r in summary if r["family"] == f}) for f in families]
    fig, axes = plt.subplots(1, len(families), figsize=(1.2 * sum(sizes) + 1.5 * len(families), 4), squeeze=False,
                             sharey=True, gridspec_kw={"width_ratios": [max(s, 1.5) for s in sizes]})
    for ax, family in zip(axes[0], families):
        for i, ((fraction, method), rows) in enumerate(series.items()):
            points = [r for r in rows if r["family"] == family]
            x = np.arange(len(points)) + (i - (len(series) - 1) / 2) * 0.12
            mean = np.array([r["mean"] for r in points], dtype=float)
            bounds = np.array([shown_interval(metric, float(r["ci_low"]), float(r["ci_high"])) for r in points],
                              dtype=float).reshape(-1, 2)
            below, above = np.nan_to_num(mean - bounds[:, 0]), np.nan_to_num(bounds[:, 1] - mean)
            ax.errorbar(x, mean, yerr=np.stack([np.maximum(below, 0), np.maximum(above, 0)]), fmt="o",
                        color=f"C{i}", capsize=3, label=series_label(fraction, method))
            clean = [r["mean"] for r in rows if r["family"] == "leads" and r["condition"] == "all"]
            if clean:
                ax.axhline(clean[0], color=f"C{i}", linestyle="--", linewidth=0.8)
            ax.set_xticks(np.arange(len(points)), [r["condition"] for r in points], rotation=30, ha="right",
                          fontsize=8)
        ax.set(title=family, ylabel=metric.upper(), ylim=(0, 1.02), xlim=(-0.6, len(points) - 0.4))
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Robustness: test {metric.upper()} per condition (mean, 95% CI over repeats; dashed: clean)",
                 fontsize=10)
    return finish_figure(path, fig)


def evaluation_robustness(evaluation, *, extra: Sequence[str] = (), seed: int = 0,
                          unit: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Score an `ecgcl.engine.evaluate.Evaluation` under the grid; rows carry `unit` (method, repeat ...)."""
    from ecgcl.robustness.conditions import robustness_grid

    conditions, skipped = robustness_grid(evaluation.store.leads, evaluation.store.fs, extra)
    scored = score_conditions(evaluation.model, evaluation.store, evaluation.rows, evaluation.y, conditions,
                              registry=evaluation.registry, seed=seed, device=evaluation.device,
                              batch_size=evaluation.batch_size, threshold=evaluation.threshold)
    unit = unit if unit is not None else {"method": evaluation.meta.get("method", "checkpoint"),
                                          "label_fraction": evaluation.meta.get("label_fraction"), "repeat": 0}
    return [{**unit, **row} for row in scored], skipped
