"""Checks that keep a run from reporting numbers of a model that did not train.

A loss or weights that turn NaN/inf stop training with one line naming the stage and epoch and what to try,
before that epoch's checkpoint is written (so the last good one stays); predictions that are not finite are
never scored; batch sizes with which a loop would skip every batch are refused before training starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from ecgcl.errors import EcgclError

LEARNING_RATE_OPTION = {"pretrain": "--lr", "finetune": "--finetune-lr", "linear": "--finetune-lr"}


class NonFiniteTraining(EcgclError):
    """Training diverged: a non-finite loss or weights in `stage` at `epoch` (1-based)."""

    def __init__(self, stage: str, epoch: int, what: str, lr: float, where: str = "") -> None:
        self.stage, self.epoch, self.what, self.lr, self.where = stage, epoch, what, lr, where
        option = LEARNING_RATE_OPTION.get(stage, "the learning rate")
        super().__init__(
            f"{where}{stage}: {what} in epoch {epoch}; training stopped and the checkpoint of the last finished "
            f"epoch is kept. Try a smaller learning rate ({option} {lr:g} now) or check the data for extreme "
            "values (ingest flags implausible amplitudes in the store's manifest)")

    def within(self, where: str) -> NonFiniteTraining:
        """The same error, prefixed with where in a run it happened (`repeat 2 · labels 0.1 · supervised · `)."""
        return NonFiniteTraining(self.stage, self.epoch, self.what, self.lr, where)


def check_finite_epoch(stage: str, epoch: int, loss: float, parameters: Iterable[torch.Tensor], *, lr: float) -> None:
    """Raise NonFiniteTraining when the epoch's mean loss or any weight is NaN/inf (one device sync)."""
    if not math.isfinite(loss):
        raise NonFiniteTraining(stage, epoch, f"the loss became {loss}", lr)
    flags = [torch.isfinite(p.detach()).all() for p in parameters]
    if flags and not bool(torch.stack(flags).all()):
        raise NonFiniteTraining(stage, epoch, "the weights became non-finite", lr)


def check_finite_probabilities(probs: np.ndarray, *, what: str) -> np.ndarray:
    """`probs` unchanged, or EcgclError when some are NaN/inf (NaN scored as a negative would fake accuracy)."""
    bad = ~np.isfinite(probs).reshape(len(probs), -1).all(axis=1)
    if bad.any():
        raise EcgclError(f"{what} gives non-finite probabilities for {int(bad.sum())} of {len(probs)} records (its "
                         "weights or the data hold NaN/inf); no metrics are computed from them")
    return probs


def check_batch_size(batch_size: int, *, minimum: int, why: str) -> None:
    """Refuse a batch size below `minimum` up front (a loop would otherwise skip every batch and train nothing)."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < minimum:
        raise EcgclError(f"--batch-size {batch_size!r} is too small: {why} (use at least {minimum})")


def check_global_batch(batch_size: int, processes: int, how: str = "") -> None:
    """--batch-size is the global batch: it must split evenly over the processes (`how`: how they were counted)."""
    if batch_size % processes:
        raise EcgclError(f"--batch-size {batch_size} must be divisible by the {processes} processes{how}; it is the "
                         "global batch, split evenly over the ranks")


def check_pretraining_batch_size(batch_size: int) -> None:
    """Pretraining (any objective) needs two records per batch; checked before a run writes anything."""
    check_batch_size(batch_size, minimum=2, why="pretraining skips batches of one record (the objectives and batch "
                     "norm compare the records of a batch), so nothing would train")
