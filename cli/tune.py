"""`ecgcl tune`: search the `[space]` of a TOML config with Optuna, scoring each trial on validation records.

Takes every option of `ecgcl run` (from the command line or the same --config file) as the base configuration;
the study is `ecgcl.tuning.tune`. torch and optuna are imported only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ecgcl.cli.config_options import ConfigCommand, config_options
from ecgcl.errors import EcgclError


def read_space(config_file: str | None) -> dict[str, Any]:
    """The `[space]` table of the --config file (read_config_file skips it for every other command)."""
    if not config_file:
        raise EcgclError("ecgcl tune needs --config FILE with a [space] table, e.g. lr = {low = 1e-4, high = 1e-2, "
                         "log = true}")
    import json
    import tomllib

    path = Path(config_file)
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as error:  # the config reader already named syntax errors; this is the net
        raise EcgclError(f"config file {path}: cannot read its [space] table: {error}") from None
    space = raw.get("space") if isinstance(raw, dict) else None
    if not isinstance(space, dict) or not space:
        raise EcgclError(f"config file {path} has no [space] table: ecgcl tune needs one, e.g. "
                         "lr = {low = 1e-4, high = 1e-2, log = true}")
    return space


@click.command("tune", cls=ConfigCommand)
@config_options("run")
@click.option("--trials", type=int, required=True, help="Trials this worker runs (a rerun adds to the study).")
@click.option("--storage", help="Optuna storage URL (sqlite:///..., postgresql://...) or a .log/.journal file "
                                "shared by workers.  [default: sqlite in OUT/study.db]")
@click.option("--study", "study_name", default="ecgcl", show_default=True, help="Study name in the storage.")
@click.option("--score", type=click.Choice(["knn", "probe"]), default="knn", show_default=True,
              help="Validation monitor a trial is scored by (its kept pretraining epoch).")
@click.option("--pruner", type=click.Choice(["median", "hyperband", "none"]), default="median", show_default=True,
              help="How unpromising trials stop early, on the per-epoch score.")
@click.option("--timeout", type=float, help="Seconds after which this worker starts no new trial (a time budget).")
def tune_command(config_file: str | None, trials: int, storage: str | None, study_name: str, score: str,
                 pruner: str, timeout: float | None, **params) -> None:
    """Search hyperparameters on validation records only (an Optuna study); writes OUT/best.toml, which
    `ecgcl run --config` takes as it is.

    Example: ecgcl tune --config space.toml --trials 20 --data STORE --out tuning
    """
    from ecgcl.cli.progress import training_progress
    from ecgcl.cli.render import console
    from ecgcl.config import config_from_options
    from ecgcl.manager import get_registry
    from ecgcl.tuning import parse_space, tune

    if trials < 1:
        raise EcgclError(f"--trials must be an integer >= 1, got {trials}")
    config = config_from_options(params)
    registry = get_registry()
    space = parse_space(read_space(config_file), config, registry)  # every mistake before anything is written
    with training_progress(console) as reporter:
        result = tune(config, space, trials=trials, storage=storage, study_name=study_name, score=score,
                      pruner=pruner, out=config.out, reporter=reporter, registry=registry, timeout=timeout)
    console.print(_best_table(result.trials))
    console.print(f"Best trial {result.best_number}: {score} = {result.best_value:.4f}; files in {result.out}/ "
                  f"({', '.join(result.files)}); train it with `ecgcl run --config {result.files['best.toml']}`",
                  markup=False, highlight=False)


def _best_table(rows: list[dict[str, Any]], top: int = 5):
    """The `top` best finished trials: number, value, params, state."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"Best {top} trials")
    for column in ("trial", "value", "params", "state"):
        table.add_column(column, justify="right" if column in ("trial", "value") else "left")
    scored = sorted((r for r in rows if r["value"] is not None), key=lambda r: r["value"], reverse=True)
    for row in scored[:top]:
        params = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in row["params"].items())
        table.add_row(str(row["number"]), f"{row['value']:.4f}", Text(params), row["state"])
    return table


COMMANDS = (tune_command,)
