"""What `ecgcl tune` leaves in OUT: best.toml, trials.csv, optimisation_history.png and param_importances.png.

best.toml is the best trial's whole resolved `RunConfig` (None values dropped, `out` = OUT/best), so
`ecgcl run --config OUT/best.toml` trains and tests exactly the chosen configuration. Every file is written
through a temporary file and a rename.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecgcl.config import RunConfig, resolve_config
from ecgcl.errors import EcgclError
from ecgcl.reporting import Reporter

BEST, TRIALS, HISTORY_PLOT, IMPORTANCE_PLOT = "best.toml", "trials.csv", "optimisation_history.png", "param_importances.png"


@dataclass
class TuneResult:
    """The best trial (number, value, params), every trial's row and the files written."""

    best_number: int
    best_value: float
    best_params: dict[str, Any]
    trials: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)
    out: Path = Path(".")


def best_config(config: RunConfig, overrides: dict[str, Any], out: Path) -> dict[str, Any]:
    """The best trial's resolved config as TOML-ready values: `out` = OUT/best, None values dropped."""
    resolved = resolve_config({**config.to_dict(), **overrides, "out": str(out / "best")})
    return {k: v for k, v in resolved.to_dict().items() if v is not None}


def write_outputs(study, config: RunConfig, out: Path, reporter: Reporter):
    """Write OUT's files from `study` and return the `TuneResult`."""
    import optuna
    import tomli_w

    from ecgcl.files import atomic_write, write_csv

    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE
                and t.value is not None and math.isfinite(t.value)]
    if not complete:
        raise EcgclError(f"no trial of study {study.study_name!r} finished with a finite score (pruned, failed or "
                         "diverged); widen the [space] or lower --lr")
    best = max(complete, key=lambda t: t.value)
    text = tomli_w.dumps(best_config(config, best.user_attrs.get("overrides", {}), out))
    files = {BEST: atomic_write(out / BEST, lambda handle: handle.write(text.encode("utf-8")), what="best config")}
    frame = study.trials_dataframe()
    files[TRIALS] = write_csv(out / TRIALS, frame, what="trials table")
    files.update(_plots(study, out, complete, reporter))
    rows = [{"number": t.number, "value": t.value, "params": dict(t.params), "state": t.state.name}
            for t in study.trials]
    return TuneResult(best.number, float(best.value), dict(best.params), rows, files, out)


def _plots(study, out: Path, complete: list, reporter: Reporter) -> dict[str, Path]:
    """The optimisation history, and the parameter importances once 2 trials finished and a parameter varies."""
    import matplotlib

    matplotlib.use("Agg")
    import optuna
    from optuna.visualization import matplotlib as plots

    from ecgcl.files import finish_figure

    files: dict[str, Path] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = plots.plot_optimization_history(study)
        files[HISTORY_PLOT] = finish_figure(out / HISTORY_PLOT, ax.figure, what="optimisation history plot")
        if len(complete) >= 2 and complete[0].params:
            try:
                ax = plots.plot_param_importances(study)
            except (ValueError, RuntimeError) as error:  # e.g. every finished trial drew the same values
                reporter.warning(f"no {IMPORTANCE_PLOT}: {error}")
            else:
                files[IMPORTANCE_PLOT] = finish_figure(out / IMPORTANCE_PLOT, ax.figure,
                                                       what="parameter importance plot")
    return files
