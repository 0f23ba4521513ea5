"""`mlflow`: MLflow tracking (the open-source experiment tracker of Databricks, `mlflow ui` / `mlflow server`).

A run is a parent MLflow run named after the results folder, holding the configuration as parameters
(lists and dicts as JSON, each value cut to MLflow's 6000 characters) and the result files as artefacts;
each unit ('repeat 1 · pretrain') is a nested child run (tag mlflow.parentRunId) with every figure as a metric
per epoch. Where: the `uri` option, else $MLFLOW_TRACKING_URI, else OUT/mlflow.db (SQLite) with artefacts
under OUT/mlruns. An explicit `MlflowClient` (never mlflow's global active run), so runs in one process
do not interfere. Needs `pip install 'ecgcl[mlflow]'`.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from ecgcl.interfaces import Tracker
from ecgcl.plugins.trackers._extra import require

MAX_PARAM_VALUE = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH
BATCH = 100  # params per log_batch call (MLflow's limit)


def _param_value(value: Any) -> str:
    text = json.dumps(value, default=str) if isinstance(value, (list, tuple, dict)) else str(value)
    return text[:MAX_PARAM_VALUE]


def metric_name(name: str) -> str:
    """A figure's name with what MLflow refuses in metric names (not alphanumeric, _-./ or space) as '_'."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)


class MLflow(Tracker):
    """MLflow tracking: a parent run per run (config, artefacts), a child run per unit (metrics per epoch)."""

    name = "mlflow"

    def __init__(self, uri: str | None = None, experiment: str = "ecgcl") -> None:
        self.uri = uri
        self.experiment = experiment
        self._children: dict[str, str] = {}
        self._mlflow = require("mlflow", "mlflow")

    def start(self, out: Path, config: dict[str, Any]) -> None:
        out = Path(out).resolve()
        default = not (self.uri or os.environ.get("MLFLOW_TRACKING_URI"))
        self.tracking_uri = (f"sqlite:///{out / 'mlflow.db'}" if default
                             else self.uri or os.environ["MLFLOW_TRACKING_URI"])
        self.client = self._mlflow.MlflowClient(tracking_uri=self.tracking_uri)
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            self._experiment_id = found.experiment_id
        else:
            location = (out / "mlruns").as_uri() if default else None  # else the server's artefact root
            self._experiment_id = self.client.create_experiment(self.experiment, artifact_location=location)
        self.parent_id = self.client.create_run(self._experiment_id, run_name=out.name).info.run_id
        params = [self._mlflow.entities.Param(str(k), _param_value(v)) for k, v in config.items()]
        for first in range(0, len(params), BATCH):
            self.client.log_batch(self.parent_id, params=params[first:first + BATCH])

    def _child(self, unit: str) -> str:
        if unit not in self._children:
            run = self.client.create_run(self._experiment_id, run_name=unit,
                                         tags={"mlflow.parentRunId": self.parent_id})
            self._children[unit] = run.info.run_id
        return self._children[unit]

    def log(self, unit: str, step: int, figures: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        metrics = [self._mlflow.entities.Metric(metric_name(k), float(v), now, step) for k, v in figures.items()]
        self.client.log_batch(self._child(unit), metrics=metrics)

    def unit_finished(self, unit: str) -> None:
        run_id = self._children.pop(unit, None)
        if run_id is not None:
            self.client.set_terminated(run_id, "FINISHED")

    def finish(self, artifacts: list[Path]) -> None:
        for unit in list(self._children):
            self.unit_finished(unit)
        for path in map(Path, artifacts):
            if path.is_file():
                self.client.log_artifact(self.parent_id, str(path))
            elif path.is_dir():
                self.client.log_artifacts(self.parent_id, str(path), artifact_path=path.name)
        self.client.set_terminated(self.parent_id, "FINISHED")
