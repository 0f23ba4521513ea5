"""Grids: several --objective, --aug and --encoder values in one `ecgcl run`, one protocol run (a cell) per
combination; or several --pretrained encoders, one cell per encoder (each with its own baselines of the same
architecture), to compare encoders pretrained elsewhere side by side on the same splits.

Each cell is a normal results folder under `OUT/cells/<objective>__<aug>__<encoder>/` and resumes on its own; cells run
one after another. Every cell uses the same seeds, so repeat k of every cell has the same split (random
strategy) or the same folds: cells are compared pairwise per repeat. `OUT/grid.csv` holds one row per cell,
label fraction and method with the test metrics (mean and 95% CI) and the paired difference in AUROC against
the best cell of that fraction and method; `OUT/grid.png` is a heatmap of test AUROC per (objective | augmentation) x encoder.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecgcl.config import GRID_AXES, RunConfig, grid_values
from ecgcl.errors import EcgclError
from ecgcl.locks import locks_results_folder
from ecgcl.metrics import shown_interval

GRID_METRIC = "auroc"  # cells are ranked and drawn by test AUROC


DEFAULT_AUG = "default"  # how a cell without --aug (the objective's own augmentation) is named


def cell_name(objective: str, aug: str | None, encoder: str) -> str:
    """`<objective>__<aug>__<encoder>` as a portable folder name (characters other than letters, digits, `+`,
    `-`, `.`, `=` and `,` become `_`; `:` becomes `-`)."""
    return _portable(f"{objective}__{aug or DEFAULT_AUG}__{encoder}")


def pretrained_cell_names(paths: list[str]) -> list[str]:
    """`pretrained__<tail>` folder names, each tail the fewest trailing path parts that tell the encoders apart
    (`runs/big/pretrain.pt`, `runs/small/pretrain.pt` -> `pretrained__big_pretrain.pt`, `..small_pretrain.pt`)."""
    parts = [[p for p in path.replace("://", "/").replace("\\", "/").split("/") if p] for path in paths]
    for depth in range(1, max(map(len, parts), default=1) + 1):
        names = ["pretrained__" + _portable("_".join(p[-depth:])).strip("_.") for p in parts]
        if len(set(names)) == len(names):
            return names
    return names


def _portable(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9+\-.=,_]", "_", text.replace(":", "-"))


@dataclass(frozen=True)
class Cell:
    """One combination of the grid and its own config (with `out` = its folder)."""

    objective: str
    aug: str | None
    encoder: str
    config: RunConfig
    pretrained: str | None = None  # the encoder a --pretrained cell evaluates (its model comes from it)

    @property
    def name(self) -> str:
        return Path(self.config.out).name

    @property
    def setting(self) -> str:
        """The pretraining recipe of the cell without its encoder: `objective | aug`, or the pretrained encoder
        (a grid table's row)."""
        if self.pretrained is not None:
            return f"pretrained {self.pretrained}"
        return f"{self.objective} | {self.aug or DEFAULT_AUG}"


def grid_cells(config: RunConfig) -> list[Cell]:
    """Every (objective, augmentation, encoder) combination, objectives outermost, as single-valued configs; with
    several --pretrained, one cell per encoder (its objective and encoder are read from it by `run_grid`)."""
    cells, seen = [], {}
    if config.pretrained:
        for path, name in zip(config.pretrained, pretrained_cell_names(config.pretrained)):
            if name in seen:
                raise EcgclError(f"--pretrained {seen[name]!r} and {path!r} give the same cell folder {name!r}; "
                                 "make the paths differ in letters or digits")
            seen[name] = path
            cell_config = dataclasses.replace(config, pretrained=[path], out=str(Path(config.out) / "cells" / name))
            cells.append(Cell(config.objective, None, config.encoder, cell_config, pretrained=path))
        return cells
    for objective in grid_values(config.objective):
        for aug in grid_values(config.aug):
            for encoder in grid_values(config.encoder):
                name = cell_name(objective, aug, encoder)
                if name in seen:
                    raise EcgclError(f"--objective/--aug/--encoder values {seen[name]} and {(objective, aug, encoder)} "
                                     f"give the same cell folder {name!r}; make them differ in letters or digits")
                seen[name] = (objective, aug, encoder)
                out = str(Path(config.out) / "cells" / name)
                cells.append(Cell(objective, aug, encoder, dataclasses.replace(config, objective=objective, aug=aug,
                                                                               encoder=encoder, out=out)))
    return cells


@dataclass
class GridResult:
    """Every cell's protocol result, the grid rows (grid.csv) and the results folder."""

    cells: list[tuple[Cell, Any]]
    rows: list[dict[str, Any]]
    out: Path

    @property
    def split_note(self) -> str:
        """How the repeats were split (the same in every cell)."""
        return self.cells[0][1].split_note if self.cells else ""

    @property
    def unit_rows(self) -> list[dict[str, Any]]:
        """Every cell's per-unit result rows, each with its cell's name."""
        return [{**row, "cell": cell.name} for cell, result in self.cells for row in result.rows]


def check_grid_folder(out: Path, config: RunConfig) -> None:
    """Refuse a results folder saved with other settings; the axes may grow (each cell checks its own)."""
    from ecgcl.protocol.runner import check_results_folder

    first = {axis: grid_values(getattr(config, axis))[0] for axis in GRID_AXES}
    check_results_folder(out, dataclasses.replace(config, **first), ignore=(*GRID_AXES, "pretrained"))


@locks_results_folder
def run_grid(config: RunConfig, *, registry=None, reporter=None, overwrite: bool = False,
             on_epoch_end: Callable[[str, int, int, dict], None] | None = None,
             given: dict[str, Any] | None = None) -> GridResult:
    """Check every cell, then run them one after another and write grid.json / grid.csv / grid.png (holding the
    grid folder's lock; each cell's run holds its own folder's). `given`: the options the user set, checked
    against each --pretrained encoder."""
    from ecgcl.files import make_folders, write_json, writing
    from ecgcl.manager import get_registry
    from ecgcl.protocol.report import report_or_warn
    from ecgcl.protocol.runner import Reporter, run_protocol
    from ecgcl.protocol.watching import build_trackers

    reporter, registry = reporter or Reporter(), registry or get_registry()
    out = Path(config.out)
    cells = [_checked_cell(cell, registry, reporter, given or {}) for cell in grid_cells(config)]
    build_trackers(config, registry)  # a tracker that cannot start is refused before any cell runs
    if not overwrite:
        check_grid_folder(out, config)
    make_folders(out, "results folder")
    with writing(out / "config.json", "run configuration"):  # RunConfig.save writes the file itself
        config.save(out)
    results = []
    for number, cell in enumerate(cells, start=1):
        recipe = (f"--pretrained {cell.pretrained}" if cell.pretrained else
                  f"--objective {cell.objective} --aug {cell.aug or DEFAULT_AUG} --encoder {cell.encoder}")
        reporter.message(f"cell {number}/{len(cells)}: {recipe} -> {cell.config.out}")
        results.append((cell, run_protocol(cell.config, registry=registry, reporter=reporter, overwrite=overwrite,
                                           on_epoch_end=on_epoch_end, given=given)))
    rows = grid_rows(results)
    write_json(out / "grid.json", rows, what="grid table")
    _write_csv(out / "grid.csv", rows)
    plot_grid(out / "grid.png", rows, list(dict.fromkeys(c.setting for c in cells)),
              list(dict.fromkeys(c.encoder for c in cells)))
    report_or_warn(out, reporter)  # the grid's page: grid table, grid.png and a link to each cell's report
    return GridResult(results, rows, out)


def _checked_cell(cell: Cell, registry, reporter, given: dict[str, Any]) -> Cell:
    """Check a cell's names and options before hours of training (a --pretrained cell: its checkpoint, the
    options the user set against it, and the leakage of every repeat); returns it with a pretrained encoder's
    objective and encoder filled in."""
    from ecgcl.protocol.runner import Reporter, adopt_transfer, load_transfer, prepare

    if cell.pretrained is not None:  # checked silently: its notes come again when the cell runs
        config, transfer = load_transfer(cell.config, given, registry)
        adopt_transfer(prepare(config, registry=registry, reporter=Reporter(), pretraining=False), transfer)
        cell = dataclasses.replace(cell, objective=transfer.meta.get("objective") or "unknown",
                                   aug=transfer.meta.get("aug"), encoder=config.encoder)
    else:
        checked = prepare(cell.config, registry=registry, reporter=reporter, pretraining=cell.config.needs_pretraining)
        if cell.config.needs_pretraining:
            checked.watch(labelled=True)  # monitors that suit the cell's objective, --pretrain-select
    return cell


def grid_rows(results: list[tuple[Cell, Any]]) -> list[dict[str, Any]]:
    """One row per cell, label fraction and method: its summary (mean / CI of every metric) and the paired AUROC
    difference against the best cell (highest mean AUROC) of the same fraction and method."""
    from ecgcl.protocol.paired import paired_difference
    from ecgcl.protocol.results import method_rows

    rows = []
    for cell, result in results:
        for summary in method_rows(result.summary):
            rows.append({"objective": cell.objective, "aug": cell.aug or DEFAULT_AUG, "encoder": cell.encoder,
                         "setting": cell.setting, "cell": cell.name,
                         **{k: v for k, v in summary.items() if k != "baseline"}})
    per_repeat = {(cell.name, r["label_fraction"], r["method"], r["repeat"]): r[GRID_METRIC]
                  for cell, result in results for r in result.rows}
    for row in rows:
        peers = [r for r in rows if (r["label_fraction"], r["method"]) == (row["label_fraction"], row["method"])
                 and not math.isnan(r[f"{GRID_METRIC}_mean"])]
        best = max(peers, key=lambda r: r[f"{GRID_METRIC}_mean"], default=None)
        row["best"] = best is not None and best["cell"] == row["cell"]
        row["best_cell"] = best["cell"] if best else None
        if best is None:
            continue
        repeats = sorted(k[3] for k in per_repeat if k[:3] == (row["cell"], row["label_fraction"], row["method"])
                         and (best["cell"], *k[1:]) in per_repeat)
        diff = paired_difference([per_repeat[row["cell"], row["label_fraction"], row["method"], k] for k in repeats],
                                 [per_repeat[best["cell"], row["label_fraction"], row["method"], k] for k in repeats])
        row.update({f"{GRID_METRIC}_vs_best_{k}": v for k, v in diff.items()})
    return rows


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    from ecgcl.files import write_csv

    write_csv(path, pd.DataFrame(rows), what="grid table")


def plot_grid(path: Path, rows: list[dict[str, Any]], settings: list[str], encoders: list[str]) -> Path:
    """Heatmaps of test AUROC (mean and 95% CI clipped to [0, 1] in each cell, the best framed), one per method, at the
    largest label fraction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.patches import Rectangle

    from ecgcl.files import finish_figure
    from ecgcl.methods import short_label

    largest = max(r["label_fraction"] for r in rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    labels = [s if len(s) <= 40 else "…" + s[-39:] for s in settings]  # row labels, drawn on the first panel only
    width = 1.0 + 0.07 * max(map(len, labels)) + 2.2 * len(encoders) * len(methods)
    fig, axes = plt.subplots(1, len(methods), figsize=(width, 1.4 + 0.8 * len(settings)), squeeze=False)
    for ax, method in zip(axes[0], methods):
        grid = np.full((len(settings), len(encoders)), np.nan)
        for r in rows:
            if r["method"] == method and r["label_fraction"] == largest:
                i, j = settings.index(r["setting"]), encoders.index(r["encoder"])
                grid[i, j] = r[f"{GRID_METRIC}_mean"]
                low, high = r[f"{GRID_METRIC}_ci_low"], r[f"{GRID_METRIC}_ci_high"]
                low, high = (math.nan, math.nan) if low is None else shown_interval(GRID_METRIC, low, high)
                ci = "" if math.isnan(low) else f"\n[{low:.3f}–{high:.3f}]"
                ax.text(j, i, f"{grid[i, j]:.3f}{ci}", ha="center", va="center", fontsize=8)
                if r["best"]:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, linewidth=2.5, edgecolor="black"))
        image = ax.imshow(grid, cmap="viridis", vmin=np.nanmin(grid) if np.isfinite(grid).any() else 0,
                          vmax=np.nanmax(grid) if np.isfinite(grid).any() else 1, alpha=0.75, aspect="auto")
        ax.set_xticks(range(len(encoders)), encoders, rotation=20, fontsize=8)
        ax.set_yticks(range(len(settings)), labels if ax is axes[0][0] else [""] * len(labels), fontsize=8)
        ax.set_title(f"{short_label(method)}: test {GRID_METRIC.upper()}", fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(f"Grid, label fraction {largest:g}: mean [95% CI] over repeats (framed: best cell)", fontsize=10)
    return finish_figure(path, fig)
