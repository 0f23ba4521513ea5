"""Built-in experiment trackers (registered by the plugin manager), each an optional extra whose package is
imported only when a run starts: `tensorboard` (event files under OUT/tensorboard), `mlflow` (a parent run per
run and a child run per unit, in OUT/mlflow.db or any tracking server) and `wandb` (a W&B run per unit,
grouped by the results folder; offline files under OUT/wandb unless logged in). Choose with `--track NAME:k=v`."""

from __future__ import annotations

from ecgcl.hookspecs import hookimpl
from ecgcl.plugins.trackers.mlflow import MLflow
from ecgcl.plugins.trackers.tensorboard import TensorBoard
from ecgcl.plugins.trackers.wandb import WandB


@hookimpl
def register_trackers(registry):
    registry.add("tensorboard", TensorBoard, kind="tracker")
    registry.add("mlflow", MLflow, kind="tracker")
    registry.add("wandb", WandB, kind="tracker")


__all__ = ["MLflow", "TensorBoard", "WandB", "register_trackers"]
