"""The figures of `ecgcl explain`: each map as a colour wash behind the traces of the 12-lead sheet
(`ecgcl.data.sheet`), and each lead's share of |attribution| per method as grouped bars. A figure whose map
failed a sanity check says so in its title, in red."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgcl.data.sheet import ROW_MM, SPEED, sheet_figure, sheet_panels

CMAP = "Blues"


def overlay_figure(values: np.ndarray, signal: np.ndarray, fs: float, leads, footer: list[str], title: str,
                   failed: bool):
    """The sheet of `signal` with |`values`| ((L, T), scaled to the record's maximum) washed behind each panel."""
    fig, _ = sheet_figure(signal, fs, leads, footer)
    ax = fig.axes[0]
    strength = np.abs(values)
    top = strength.max()
    strength = strength / top if top > 0 else strength
    for panel in sheet_panels(leads):
        first, last = int(round(panel.start * fs)), int(round((panel.start + panel.seconds) * fs))
        piece = strength[panel.index, first:last]
        if not len(piece):
            continue
        upper = -panel.row * ROW_MM
        ax.imshow(piece[None, :], cmap=CMAP, vmin=0.0, vmax=1.0, alpha=0.55, aspect="auto", interpolation="nearest",
                  extent=(panel.x_mm, panel.x_mm + len(piece) / fs * SPEED, upper - ROW_MM, upper), zorder=8)
    ax.set_xlim(-10.0, SPEED * 10.0)
    ax.set_ylim(-(max(p.row for p in sheet_panels(leads)) + 1) * ROW_MM, 0.0)
    fig.text(0.5, 0.995, title, ha="center", va="top", fontsize=7, color="red" if failed else "black")
    return fig


def bars_figure(importance: dict[str, np.ndarray], leads, title: str, failed: bool):
    """Grouped bars: each lead's share of the summed |attribution|, one bar per method."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 0.55 * len(leads) + 1.5), 3.2))
    ax = fig.add_subplot()
    width = 0.8 / len(importance)
    x = np.arange(len(leads))
    for i, (method, shares) in enumerate(importance.items()):
        ax.bar(x + (i - (len(importance) - 1) / 2) * width, shares, width, label=method)
    ax.set_xticks(x, [str(lead) for lead in leads])
    ax.set_ylabel("share of |attribution|")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=8, color="red" if failed else "black")
    return fig


def save_explanation_figures(result, signal: np.ndarray, store, row: int, folder: Path, stem: str) -> list[Path]:
    """Write one overlay per method and the lead bars of `result` (an `Explanation`) to `folder`."""
    from ecgcl.data.show import footer
    from ecgcl.files import finish_figure, save_figure

    head = f"record {result.record_id}: p({result.class_name}) = {result.probability:.2f}"
    paths = []
    for method, values in result.maps.items():
        failures = result.checks[method].failures()
        verdict = ("CHECKS FAILED: " + "; ".join(failures)) if failures else "sanity checks passed"
        fig = overlay_figure(values, signal, store.fs, store.leads, footer(store, row),
                             f"{method} attribution of {head}  |  {verdict}", bool(failures))
        paths.append(save_figure(folder / f"{stem}_{method}.png", fig, what="attribution overlay", dpi=150))
    failed = [m for m, c in result.checks.items() if not c.passed]
    verdict = f"CHECKS FAILED for {', '.join(failed)}" if failed else "sanity checks passed"
    fig = bars_figure(result.importance, store.leads, f"lead importance, {head}\n{verdict}", bool(failed))
    paths.append(finish_figure(folder / f"{stem}_leads.png", fig, what="lead importance chart"))
    return paths
