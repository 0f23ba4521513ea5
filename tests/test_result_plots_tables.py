"""label_efficiency.png (a forest plot at one label fraction, lines over several) and the CLI tables: interval
bounds of metrics in [0, 1] are shown clipped to [0, 1], summary.json keeps the raw t interval, differences are
never clipped."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from rich.console import Console

from ecgcl.cli.tables import grid_tables, interval_text, robustness_table, summary_tables
from ecgcl.methods import COMPARISONS, METHOD_TABLE, METHODS
from ecgcl.metrics import BOUNDED_METRICS, METRIC_NAMES, shown_interval
from ecgcl.protocol.results import method_rows, paired_rows, plot_label_efficiency, summarise, write_tables

# per repeat test AUROC of each method; pretrained FT's t interval over 3 repeats goes past 1 (about 1.067)
AUROC = {"pretrained_finetune": (0.99, 1.0, 0.93), "pretrained_linear": (0.90, 0.95, 0.87),
         "random_linear": (0.75, 0.80, 0.77), "supervised": (0.88, 0.86, 0.90)}


def _rows(fractions=(1.0,), repeats=3) -> list[dict]:
    """Per-repeat result rows as the runner makes them (every metric; AUROC from AUROC)."""
    rng = np.random.default_rng(0)
    rows = []
    for fraction in fractions:
        for repeat in range(repeats):
            for method in METHODS:
                scores = {m: float(np.clip(0.8 + rng.normal(0, 0.05), 0, 1)) for m in METRIC_NAMES}
                scores["auroc"] = AUROC[method][repeat] - (0.05 if fraction < 1 else 0.0)
                rows.append({"label_fraction": fraction, "method": method, "repeat": repeat, "seed": repeat,
                             **scores})
    return rows


def _captured(monkeypatch) -> list[Figure]:
    """Figures saved from now on (they are still written)."""
    figures, save = [], Figure.savefig

    def savefig(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return figures


def _suptitle(fig: Figure) -> str:
    return fig._suptitle.get_text()  # Figure.get_suptitle needs matplotlib 3.8


def _whiskers(ax) -> list[tuple[float, float, float]]:
    """(y, x0, x1) of every CI whisker (LineCollections with gid `ci`) in `ax`, top row first."""
    found = []
    for collection in ax.collections:
        if isinstance(collection, LineCollection) and collection.get_gid() == "ci":
            for segment in collection.get_segments():
                (x0, y0), (x1, _) = segment
                found.append((float(y0), float(min(x0, x1)), float(max(x0, x1))))
    return sorted(found)


def test_bounded_metrics_have_one_home():
    assert set(METRIC_NAMES) <= BOUNDED_METRICS  # every score of classification_metrics lives in [0, 1]
    assert "loss" not in BOUNDED_METRICS
    assert shown_interval("auroc", -0.2, 1.3) == (0.0, 1.0)
    assert shown_interval("loss", -0.2, 1.3) == (-0.2, 1.3)
    low, high = shown_interval("auroc", float("nan"), float("nan"))
    assert math.isnan(low) and math.isnan(high)


def test_one_label_fraction_draws_a_forest_plot(tmp_path, monkeypatch):
    summary = summarise(_rows())
    raw = next(r for r in method_rows(summary) if r["method"] == "pretrained_finetune")
    assert raw["auroc_ci_high"] > 1  # the raw t interval, as summary.json keeps it
    figures = _captured(monkeypatch)
    path = plot_label_efficiency(tmp_path / "label_efficiency.png", summary)
    assert path == tmp_path / "label_efficiency.png" and path.is_file() and path.stat().st_size > 0
    (fig,) = figures
    methods_ax, pairs_ax = fig.axes
    assert "95% CI" in _suptitle(fig) and "3 repeats" in _suptitle(fig)
    # one row per method: label, mean marker, a whisker clipped to [0, 1] and the value written beside it
    assert [t.get_text() for t in methods_ax.get_yticklabels()] == [m.label for m in METHOD_TABLE]
    whiskers = _whiskers(methods_ax)
    assert len(whiskers) == len(METHODS)
    assert all(0.0 <= x0 <= x1 <= 1.0 for _, x0, x1 in whiskers)
    assert whiskers[0][2] == 1.0  # pretrained FT (top row): upper bound clipped from ~1.067
    assert whiskers[0][1] == pytest.approx(raw["auroc_ci_low"])
    means = [line for line in methods_ax.get_lines() if line.get_gid() == "mean"]
    assert len(means) == len(METHODS)
    assert float(means[0].get_xdata()[0]) == pytest.approx(raw["auroc_mean"])
    assert any("[" in t.get_text() and "1.000]" in t.get_text() for t in methods_ax.texts)
    assert methods_ax.get_xlim()[1] >= 1.0  # the clipped cap is in view
    # one row per paired difference: whiskers not clipped, a line at 0, p-values
    pairs = paired_rows(summary)
    assert len(pairs) == len(COMPARISONS)
    labels = [t.get_text() for t in pairs_ax.get_yticklabels()]
    assert labels[0] == "pretrained FT − supervised" and len(labels) == len(COMPARISONS)
    whiskers = _whiskers(pairs_ax)
    assert len(whiskers) == len(COMPARISONS)
    by_label = dict(zip(labels, whiskers))
    random_lp = next(r for r in pairs if (r["method"], r["baseline"]) == ("random_linear", "supervised"))
    assert random_lp["auroc_ci_low"] < 0  # a difference below 0 stays below 0
    assert by_label["random-init LP − supervised"][1:] == pytest.approx((random_lp["auroc_ci_low"],
                                                                          random_lp["auroc_ci_high"]))
    zero = [line for line in pairs_ax.get_lines() if line.get_gid() == "zero"]
    assert len(zero) == 1 and list(zero[0].get_xdata()) == [0, 0]
    assert sum(", p " in t.get_text() for t in pairs_ax.texts) == len(COMPARISONS)


def test_forest_plot_with_one_repeat_and_without_pairs(tmp_path, monkeypatch):
    rows = [r for r in _rows(repeats=1) if r["method"] == "supervised"]
    figures = _captured(monkeypatch)
    plot_label_efficiency(tmp_path / "one.png", summarise(rows))
    (fig,) = figures
    (ax,) = fig.axes  # no paired comparison: no second panel
    assert _whiskers(ax) == []  # one repeat: no interval, the mean alone
    assert [t.get_text() for t in ax.texts] == ["0.880"]
    assert "1 repeat" in _suptitle(fig)


def test_several_label_fractions_keep_the_line_plot_with_clipped_bands(tmp_path, monkeypatch):
    summary = summarise(_rows(fractions=(0.1, 1.0)))
    figures = _captured(monkeypatch)
    plot_label_efficiency(tmp_path / "label_efficiency.png", summary)
    (fig,) = figures
    lines_ax, pairs_ax = fig.axes
    assert _whiskers(lines_ax) == []
    assert len([line for line in lines_ax.get_lines() if len(line.get_xdata()) == 2]) == len(METHODS)
    bands = [c for c in lines_ax.collections if isinstance(c, PolyCollection)]
    assert bands and all(0.0 <= y <= 1.0 for band in bands for y in band.get_paths()[0].vertices[:, 1])
    assert "95% CI" in lines_ax.get_title() and "3 repeats" in lines_ax.get_title()
    # the difference bands keep the raw t interval
    lowest = min(y for c in pairs_ax.collections if isinstance(c, PolyCollection)
                 for y in c.get_paths()[0].vertices[:, 1])
    assert lowest == pytest.approx(min(r["auroc_ci_low"] for r in paired_rows(summary)))
    assert any(line.get_gid() == "zero" for line in pairs_ax.get_lines())


def _text(*tables) -> str:
    console = Console(width=160, record=True, file=io.StringIO())
    for table in tables:
        console.print(table)
    return console.export_text()


def test_tables_clip_bounded_intervals_while_summary_json_keeps_the_raw_interval(tmp_path):
    rows = _rows()
    summary = summarise(rows)
    write_tables(tmp_path, rows, summary)
    saved = json.loads((tmp_path / "summary.json").read_text())
    finetune = next(r for r in saved if r["method"] == "pretrained_finetune" and r["baseline"] is None)
    assert finetune["auroc_ci_high"] > 1  # raw in the file
    text = _text(*summary_tables(summary))
    mean, low = finetune["auroc_mean"], finetune["auroc_ci_low"]
    assert f"{mean:.3f} [{low:.3f}–1.000]" in text
    assert f"{finetune['auroc_ci_high']:.3f}" not in text
    assert "95% CI" in text and "clipped to [0, 1]" in text
    # differences: mean ± t half-width as computed, never clipped (a bound below 0 is kept)
    random_lp = next(r for r in summary if (r["method"], r["baseline"]) == ("random_linear", "supervised"))
    assert random_lp["auroc_ci_low"] < 0
    half = (random_lp["auroc_ci_high"] - random_lp["auroc_ci_low"]) / 2
    assert f"{random_lp['auroc_mean']:+.3f} ± {half:.3f}" in text
    assert interval_text(random_lp, "auroc") == f"{random_lp['auroc_mean']:+.3f} ± {half:.3f}"


def test_interval_text_clips_only_bounded_metrics_of_methods():
    row = {"baseline": None, "auroc_mean": 0.98, "auroc_ci_low": 0.90, "auroc_ci_high": 1.06,
           "loss_mean": 0.5, "loss_ci_low": -0.1, "loss_ci_high": 1.1}
    assert interval_text(row, "auroc") == "0.980 [0.900–1.000]"
    assert interval_text(row, "loss") == "0.500 [-0.100–1.100]"  # not a bounded metric
    assert interval_text({"auroc_mean": 0.02, "auroc_ci_low": -0.6, "auroc_ci_high": 0.64}, "auroc", "+") == \
        "+0.020 ± 0.620"  # a difference
    assert interval_text({"auroc_mean": 0.9, "auroc_ci_low": None, "auroc_ci_high": None}, "auroc") == "0.900"
    assert interval_text({"auroc_mean": float("nan")}, "auroc") == "-"


def test_grid_and_robustness_tables_clip_too():
    summary = method_rows(summarise(_rows()))
    grid = [{**{k: v for k, v in r.items() if k != "baseline"}, "setting": "simclr | default", "encoder": "resnet1d",
             "cell": "c", "best": True} for r in summary if r["method"] == "pretrained_finetune"]
    assert "[" in _text(*grid_tables(grid)) and "–1.000]" in _text(*grid_tables(grid))
    robust = [{"label_fraction": 1.0, "method": "supervised", "family": "noise", "condition": "0 dB SNR",
               "metric": "auroc", "mean": 0.97, "ci_low": 0.91, "ci_high": 1.03, "n": 3}]
    text = _text(robustness_table(robust))
    assert "0.970 [0.910–1.000]" in text and "1.030" not in text


def test_summary_table_at_80_columns_is_never_cut_short():
    console = Console(width=80, record=True, file=io.StringIO())
    for table in summary_tables(summarise(_rows())):
        console.print(table)
    text = console.export_text()
    assert "…" not in text and "[0." in text and "–1.000]" in text
