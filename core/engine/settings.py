"""What the training loops compute and how they run, each in one declared place.

`PretrainSettings` and `FinetuneSettings` hold what decides the numbers (epochs, batch, optimizer, seed): the
same settings give the same numbers on CPU. `TrainingContext` holds everything else a loop needs and that never
enters the model: the device, the `Checkpoints` it resumes from and writes, the speed `TrainOptions`, and who hears
about finished epochs. The protocol builds them from a `RunConfig` (`ecgcl.protocol.runner`); a caller of the
loops from Python builds them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ecgcl.engine.checkpoint import load_checkpoint, save_checkpoint
from ecgcl.engine.device import derive_seed
from ecgcl.engine.speed import TrainOptions, current_options
from ecgcl.errors import EcgclError
from ecgcl.reporting import Reporter

EpochCallback = Callable[[str, int, int, dict[str, Any]], None]  # (stage, epoch, epochs, record), as Reporter.epoch


@dataclass(frozen=True)
class TrainingSettings:
    """What every training loop computes with: `epochs` (the maximum), the global `batch_size`, AdamW's `lr` and
    `weight_decay`, and the `seed` every epoch's shuffling, augmentation and dropout streams derive from."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int

    def optimizer(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The loops' optimizer: AdamW with these settings."""
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)

    def seed_for(self, *parts: Any) -> int:
        """The seed of one named random stream (`"finetune", "shuffle", epoch`), derived from `seed`, so a
        resumed run redraws exactly the streams of an uninterrupted one."""
        return derive_seed(self.seed, *parts)


@dataclass(frozen=True)
class PretrainSettings(TrainingSettings):
    """Pretraining: the training settings plus how the encoder sees a record (`window` samples, `representation`)."""

    window: int
    representation: str


@dataclass(frozen=True)
class FinetuneSettings(TrainingSettings):
    """End-to-end fine-tuning: the training settings plus `patience`, the epochs without a better validation AUROC
    after which training stops."""

    patience: int

    def __post_init__(self) -> None:
        patience = self.patience
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise EcgclError(f"--patience must be an integer >= 1, got {patience!r}")


@dataclass(frozen=True)
class Checkpoints:
    """Where a loop keeps its state: `last_path` (rewritten after every epoch, resumed from when it exists),
    `best_path` (the best validation epoch, fine-tuning only), the `meta` both carry, and the `fingerprint` of
    the settings a resume file must have been written with. No paths: nothing is written, nothing resumed."""

    last_path: Path | None = None
    best_path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def resume(self) -> dict[str, Any] | None:
        """The last-epoch state of this stage, if `last_path` exists and was written with the same settings."""
        if self.last_path is None or not Path(self.last_path).is_file():
            return None
        state = load_checkpoint(self.last_path)
        if state.get("fingerprint") != self.fingerprint:
            raise EcgclError(f"{self.last_path} was written by a run with other settings; use a new results folder "
                             "(--out) or pass --overwrite")
        return state

    def save_last(self, kind: str, epoch: int, state: dict[str, Any]) -> bool:
        """Write the resume file after `epoch` (when there is a `last_path`); True when it was written."""
        if self.last_path is None:
            return False
        save_checkpoint(self.last_path, {"kind": kind, "meta": self.meta, "fingerprint": self.fingerprint,
                                         "epoch": epoch, **state})
        return True

    def save_chosen(self, epoch: int, by: str, value: float | None, encoder_state: dict[str, torch.Tensor]) -> None:
        """Write the pretraining epoch `--pretrain-select` chose so far (rank 0 only; when there is a `best_path`)."""
        if self.best_path is not None:  # save_checkpoint writes on rank 0 only
            save_checkpoint(self.best_path, {"kind": "encoder", "meta": {**self.meta, "chosen_epoch": epoch,
                                                                         "chosen_by": by, "chosen_value": value},
                                             "fingerprint": self.fingerprint, "epoch": epoch,
                                             "encoder": {k: v.detach().cpu() for k, v in encoder_state.items()}})

    def save_best(self, epoch: int, val_auroc: float | None, model_state: dict[str, torch.Tensor]) -> None:
        """Write the best epoch's classifier (when there is a `best_path`)."""
        if self.best_path is not None:
            save_checkpoint(self.best_path, {"kind": "classifier", "meta": self.meta, "epoch": epoch,
                                             "val_auroc": val_auroc, "model": model_state})


@dataclass(frozen=True)
class TrainingContext:
    """Where and how a loop runs, and who hears about it: the `device`, its `checkpoints`, the speed `options`
    (None: the active `training_options`), the `listener` (a `Reporter`: display, history file, trackers) that
    hears every finished epoch of `unit` (its name, 'repeat 1 · pretrain') and every `log_every` optimizer steps,
    and `on_epoch_end`, called after each finished epoch's checkpoint with the epoch's history record.
    Pretraining also runs `monitors` (an `ecgcl.engine.monitoring.EpochMonitors`) and keeps the epoch `select`
    chooses (`ecgcl.engine.selection.Selection`) in the checkpoints' `best_path`."""

    device: torch.device
    checkpoints: Checkpoints = field(default_factory=Checkpoints)
    options: TrainOptions | None = None
    on_epoch_end: EpochCallback | None = None
    listener: Reporter | None = None
    unit: str = ""
    log_every: int = 0
    monitors: Any = None
    select: Any = None

    def prepared_options(self) -> TrainOptions:
        """The speed options of this run, with their per-run device settings applied."""
        options = self.options or current_options()
        options.prepare(self.device)
        return options

    def epoch_done(self, stage: str, epoch: int, epochs: int, record: dict[str, Any],
                   extras: dict[str, Any] | None = None) -> None:
        """Tell the listeners that `epoch` (1-based, of `epochs`) of `stage` finished with `record` (its history
        entry); the `listener` also hears `extras` (timing, learning rate) and the unit's name."""
        if self.listener is not None:
            self.listener.epoch(stage, epoch, epochs, {**record, **(extras or {}), "unit": self.unit})
        if self.on_epoch_end is not None:
            self.on_epoch_end(stage, epoch, epochs, record)

    def step_due(self, step: int) -> bool:
        """Whether the step just finished (1-based within the epoch) is one the listener hears (`log_every`)."""
        return self.listener is not None and self.log_every > 0 and step % self.log_every == 0

    def step_done(self, stage: str, step: int, steps: int, record: dict[str, Any]) -> None:
        """Tell the listener about a logged step inside an epoch."""
        if self.listener is not None:
            self.listener.step(stage, step, steps, {**record, "unit": self.unit})


__all__ = ["Checkpoints", "EpochCallback", "FinetuneSettings", "PretrainSettings", "TrainingContext",
           "TrainingSettings"]
