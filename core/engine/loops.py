"""Training loops: self-supervised pretraining and fine-tuning (end to end or linear probe).

Each loop takes its settings (`ecgcl.engine.settings`: `PretrainSettings` or `FinetuneSettings`, what decides
the numbers) and a `TrainingContext` (device, checkpoints, speed options, the epoch listener). Every loop saves
the context's `last_path` atomically after each finished epoch (model, optimizer, epoch, history, best
validation score) and, when that file exists, resumes after its epoch. Shuffling, augmentation draws and
dropout are reseeded from (seed, stage, epoch) at the start of every epoch, so a resumed run gives exactly
the numbers of an uninterrupted one on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ecgcl.data.store import ECGStore
from ecgcl.distributed import all_reduce_sum, barrier, rank, world_size
from ecgcl.engine.guards import NonFiniteTraining, check_batch_size, check_finite_epoch, check_pretraining_batch_size
from ecgcl.engine.inference import compute_embeddings, predict_probabilities
from ecgcl.engine.loading import batch_loader, preloaded, pretraining_loader
from ecgcl.engine.model import Classifier
from ecgcl.engine.settings import FinetuneSettings, PretrainSettings, TrainingContext
from ecgcl.engine.speed import TrainOptions, now
from ecgcl.errors import EcgclError
from ecgcl.metrics import classification_metrics


def wrap_for_training(module: nn.Module, device: torch.device, options: TrainOptions, *,
                      find_unused: bool = False) -> nn.Module:
    """DDP (with SyncBatchNorm on CUDA unless disabled) when distributed, then `torch.compile` if asked.

    `find_unused` tells DDP that some trainable parameters get no gradient in a step (an objective on steps or
    tokens never uses the encoder's pooling head). The returned module shares its parameters with `module`,
    whose own state dict stays the one to save.
    """
    wrapped = module
    if world_size() > 1:
        from torch.nn.parallel import DistributedDataParallel

        if device.type == "cuda" and options.sync_batchnorm:
            wrapped = nn.SyncBatchNorm.convert_sync_batchnorm(wrapped)
        wrapped = DistributedDataParallel(wrapped, device_ids=[device.index] if device.type == "cuda" else None,
                                          find_unused_parameters=find_unused)
    if options.compile:
        wrapped = torch.compile(wrapped)
    return wrapped


# ---- pretraining ------------------------------------------------------------------------------------------------

def pretrain(*, encoder: nn.Module, objective: nn.Module, store: ECGStore, rows: np.ndarray,
             settings: PretrainSettings, context: TrainingContext) -> list[dict[str, Any]]:
    """Pretrain `encoder` with an `Objective` (`ecgcl.interfaces.Objective`) on the records `rows`.

    Each batch's loss is `objective(encoder view, batch, patient codes, generator)`; after each optimizer
    step `objective.after_step(step, total_steps)` runs (EMA targets, schedules). Returns the per-epoch history
    (`epoch`, `loss`). The objective's state (projection, predictor, momentum target, a learnable temperature)
    is saved in the context's `last_path` with the encoder and optimizer, so a resumed run continues exactly.

    Under torch.distributed (torchrun) `settings.batch_size` is the global batch: each rank reads its share
    through a `DistributedSampler`, encoder and objective are wrapped in DDP as one module, the losses gather
    embeddings over the ranks, the epoch loss is averaged over all ranks, and only rank 0 writes `last_path`. A
    checkpoint written with N ranks resumes with any other number. The context's `options` (default: the active
    `training_options`) select bf16 autocast, torch.compile and data-loading workers; augmentation runs on the
    context's device.
    """
    run = _Pretraining(encoder, objective, settings, context, _pretraining_options(rows, settings, context))
    history, start = run.resume()
    if start >= settings.epochs:
        return history
    run.start(store, rows)
    for epoch in range(start, settings.epochs):
        began = now(context.device)
        record = {"epoch": epoch + 1, "loss": run.train_epoch(epoch)}
        check_finite_epoch("pretrain", epoch + 1, record["loss"], run.params, lr=settings.lr)  # before it is saved
        trained = now(context.device)
        monitors = context.monitors
        if monitors is not None and monitors.due(epoch + 1, settings.epochs):
            record.update(monitors(encoder))
        history.append(record)
        run.save(epoch + 1, history)
        finished = now(context.device)
        context.epoch_done("pretrain", epoch + 1, settings.epochs, record, {
            "lr": run.optimizer.param_groups[0]["lr"], "seconds": finished - began,
            "ecgs_per_s": run.records_seen / max(trained - began, 1e-9), "monitor_seconds": finished - trained})
    return history


def _pretraining_options(rows: np.ndarray, settings: PretrainSettings, context: TrainingContext) -> TrainOptions:
    """The run's speed options, after refusing what cannot pretrain (one record, a bad batch, bf16 + compile on
    CPU)."""
    if len(rows) < 2:
        raise EcgclError("pretraining needs at least 2 records in the pool")
    options = context.prepared_options()
    if options.bf16 and options.compile and context.device.type == "cpu":
        # measured with torch 2.13 CPU: inductor's bf16 kernels give NaN losses from the first epoch
        raise EcgclError("--bf16 together with --compile gives NaN losses on CPU with this PyTorch; "
                         "use one of them on CPU (both are meant for GPUs)")
    check_pretraining_batch_size(settings.batch_size)
    return options


class _Pretraining:
    """One pretraining run: encoder + objective as one module (`PretrainStep`), its optimizer, and the steps of
    an epoch. `start` wraps the module (DDP, compile) and builds the loader, once it is known there is work."""

    def __init__(self, encoder: nn.Module, objective: nn.Module, settings: PretrainSettings,
                 context: TrainingContext, options: TrainOptions) -> None:
        from ecgcl.engine.pretraining import PretrainStep

        self.encoder, self.objective, self.settings, self.context, self.options = \
            encoder, objective, settings, context, options
        self.device, self.world, self.rank = context.device, world_size(), rank()
        self.step_module = PretrainStep(encoder, objective, window=settings.window,
                                        representation=settings.representation).to(self.device)
        self.params = [p for p in self.step_module.parameters() if p.requires_grad]
        self.optimizer = settings.optimizer(self.params)

    def resume(self) -> tuple[list[dict[str, Any]], int]:
        """The history so far and the epoch to start from, after loading the resume file when there is one."""
        state = self.context.checkpoints.resume()
        if state is None:
            return [], 0
        self.encoder.load_state_dict(state["encoder"])
        self.objective.load_state_dict(state["objective"])  # projection, predictor, EMA target, a learnable loss
        self.optimizer.load_state_dict(state["optimizer"])
        return state["history"], state["epoch"]

    def start(self, store: ECGStore, rows: np.ndarray) -> None:
        """Wrap the step module for training and build this rank's loader over `rows`."""
        needs = getattr(self.objective, "needs", None)
        self.model = wrap_for_training(self.step_module, self.device, self.options, find_unused=needs is not None)
        self.loader = pretraining_loader(store, rows, self.settings.batch_size,
                                         seed=self.settings.seed_for("pretrain", "shuffle"), options=self.options,
                                         device=self.device)
        self.total_steps = self.settings.epochs * len(self.loader)

    def train_epoch(self, epoch: int) -> float:
        """Train epoch `epoch` (0-based); its mean loss over all ranks' records. Every `log_every` steps the
        listener hears the running mean loss of this rank."""
        generator = self._seed_epoch(epoch)
        timer = self.options.timer
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        count, step, steps = 0, epoch * len(self.loader), len(self.loader)
        for signals, patients, began, loaded in self._batches():
            loss = self._step(signals, patients, generator, step)
            step += 1
            total += loss.double() * len(signals)
            count += len(signals)
            if timer is not None:
                timer.record(loaded - began, now(self.device) - began, len(signals) * self.world)
            if self.context.step_due(step - epoch * steps):
                self.context.step_done("pretrain", step - epoch * steps, steps,
                                       {"epoch": epoch + 1, "loss": float(total) / max(count, 1)})
        total_all, count_all = all_reduce_sum([float(total), float(count)], device=self.device)
        self.records_seen = count_all
        return total_all / max(count_all, 1)

    def _seed_epoch(self, epoch: int) -> torch.Generator:
        """Reseed dropout and the loader's shuffle for `epoch`; the generator of its augmentation draws."""
        stream = () if self.world == 1 else ("rank", self.rank)  # one process keeps a single-process run's seeds
        torch.manual_seed(self.settings.seed_for("pretrain", "torch", epoch, *stream))
        generator = torch.Generator(device=self.device).manual_seed(
            self.settings.seed_for("pretrain", "aug", epoch, *stream))
        self.loader.sampler.set_epoch(epoch)
        self.step_module.train()
        return generator

    def _batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, float, float]]:
        """This epoch's batches (signals, patient codes) on the device, with the clock before each was asked for
        and after it arrived (0.0 without a timer). A batch of one record over all ranks has no pair: skipped."""
        timed, non_blocking = self.options.timer is not None, self.options.pin(self.device)
        batches = iter(self.loader)
        while True:
            began = now(self.device) if timed else 0.0
            try:
                signals, _, patients = next(batches)
            except StopIteration:
                return
            if len(signals) * self.world < 2:
                continue
            signals = signals.to(self.device, non_blocking=non_blocking)
            patients = patients.to(self.device, non_blocking=non_blocking)
            yield signals, patients, began, now(self.device) if timed else 0.0

    def _step(self, signals: torch.Tensor, patients: torch.Tensor, generator: torch.Generator,
              step: int) -> torch.Tensor:
        """One optimizer step on a batch, then the objective's after-step hook; the batch's detached loss."""
        with self.options.autocast(self.device):
            loss = self.model(signals, patients, generator)
        loss = loss.float()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.objective.after_step(step, self.total_steps)
        return loss.detach()

    def save(self, epoch: int, history: list[dict[str, Any]]) -> None:
        """Keep `epoch` as the chosen one when the context's selection says it beats the earlier epochs (writing
        `best_path`), then write the resume file; every rank leaves the epoch with both on disk."""
        select, checkpoints = self.context.select, self.context.checkpoints
        if select is not None and checkpoints.best_path is not None and select.improves(history[-1], history[:-1]):
            checkpoints.save_chosen(epoch, select.spec, select.score(history[-1]), self.encoder.state_dict())
        if self.context.checkpoints.save_last("pretrain", epoch, {
                "history": history, "encoder": self.encoder.state_dict(), "objective": self.objective.state_dict(),
                "optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state()}):
            barrier()


# ---- fine-tuning ------------------------------------------------------------------------------------------------

def _features(model: Classifier, store: ECGStore, rows: np.ndarray, batch_size: int, device: torch.device):
    """The frozen encoder's features of `rows` (eval mode, no augmentation, batched on `device`), as `embed` gives."""
    model.to(device).eval()
    return compute_embeddings(model.encoder, store, rows, window=model.window, representation=model.representation,
                              batch_size=batch_size, device=device, lead_adapter=model.lead_adapter)


def _validation_auroc(y_val: np.ndarray, probs: np.ndarray) -> float:
    auroc = classification_metrics(y_val, probs)["auroc"]
    return -math.inf if math.isnan(auroc) else auroc


def fit_probe(*, model: Classifier, store: ECGStore, train_rows: np.ndarray, val_rows: np.ndarray, y: np.ndarray,
              batch_size: int, context: TrainingContext) -> dict[str, Any]:
    """The linear probe of a frozen encoder (see `ecgcl.engine.probe`): features computed once (in batches of
    `batch_size` on the context's device), standardised with the training records' statistics, logistic
    regression to convergence with C chosen on validation.

    The probe is folded into `model.head`, so the model scores raw records like any classifier. Returns `probe`
    (its dict: standardisation, weights, C, the validation path over the grid, for the caller's checkpoint),
    `stopped` (`converged` | `max_iter`), `best_val_auroc` and `history` (the C grid). The context's listener
    hears one `linear` epoch with the best validation AUROC.
    """
    from ecgcl.engine.probe import fit_linear_probe

    check_batch_size(batch_size, minimum=1, why="features are computed in batches of at least one record")
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    train_x, val_x = (_features(model, store, r, batch_size, context.device) for r in (train_rows, val_rows))
    for name, x in (("training", train_x), ("validation", val_x)):
        if not np.isfinite(x).all():
            raise NonFiniteTraining("linear", 1, f"the frozen encoder gives non-finite features for {name} records",
                                    0.0)
    probe = fit_linear_probe(train_x, np.asarray(y[train_rows]), val_x, np.asarray(y[val_rows]),
                             softmax=model.softmax, num_outputs=model.head.num_outputs)
    weight, bias = probe.folded()
    linear = model.head.linear
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(weight, dtype=linear.weight.dtype))
        linear.bias.copy_(torch.as_tensor(bias, dtype=linear.bias.dtype))
    model.eval()
    best_val = max((g["val_auroc"] for g in probe.grid if g["val_auroc"] is not None), default=None)
    fit = {"probe": probe.to_dict(), "stopped": "converged" if probe.converged else "max_iter",
           "best_epoch": None, "best_val_auroc": best_val, "history": probe.grid}
    context.epoch_done("linear", 1, 1, {"epoch": 1, "val_auroc": best_val})
    return fit


def train_classifier(*, model: Classifier, store: ECGStore, train_rows: np.ndarray, val_rows: np.ndarray,
                     y: np.ndarray, settings: FinetuneSettings, context: TrainingContext) -> dict[str, Any]:
    """Train `model` (encoder and head, end to end) on `train_rows` until the validation AUROC has not improved
    for `settings.patience` epochs or `settings.epochs` (the maximum) are done, and restore the best epoch.

    `y` is the task's target array for the whole store. On return the model holds the best epoch's weights;
    the result gives `best_epoch`, `best_val_auroc`, `epochs_run`, `stopped` (`patience` | `max_epochs`) and the
    per-epoch `history` (train loss, validation AUROC). The stopping rule depends only on the history, so a run
    resumed inside a patience window stops where the uninterrupted one does. The context's `options` (default:
    the active `training_options`) give bf16 autocast and loader workers / pinned memory. Runs in one process
    (it is small next to pretraining).
    """
    options = context.prepared_options()
    run = _Finetuning(model, store, y, settings, context, options, batch_norm=_check_batches(model, train_rows,
                                                                                             settings.batch_size))
    history, best, start = run.resume()
    held = preloaded(store, train_rows, y, options, context.device) \
        if start < settings.epochs and not best.exhausted(start) else None
    for epoch in range(start, settings.epochs):
        if best.exhausted(epoch):  # also when resuming a unit that had already stopped
            break
        began = now(context.device)
        loss = run.train_epoch(epoch, train_rows, held)
        trained = now(context.device)
        score = run.validate(epoch, loss, val_rows)
        record = {"epoch": epoch + 1, "loss": loss, "val_auroc": score if score > -math.inf else None}
        history.append(record)
        run.save(epoch + 1, score, record, history, best)
        context.epoch_done("finetune", epoch + 1, settings.epochs, record, {
            "lr": run.optimizer.param_groups[0]["lr"], "seconds": now(context.device) - began,
            "ecgs_per_s": len(train_rows) / max(trained - began, 1e-9)})
    return best.result(model, history)


def _check_batches(model: Classifier, train_rows: np.ndarray, batch_size: int) -> bool:
    """Whether `model` has batch norm, after refusing batches it cannot train on (one record with batch norm)."""
    batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if batch_norm:
        check_batch_size(batch_size, minimum=2, why="the encoder uses batch norm, which cannot train on one record, "
                         "so every batch would be skipped")
        if len(train_rows) < 2:
            raise EcgclError(f"{len(train_rows)} training record(s): an encoder with batch norm needs at least 2")
    else:
        check_batch_size(batch_size, minimum=1, why="batches hold at least one record")
    return batch_norm


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


@dataclass
class _BestEpoch:
    """The best validation epoch so far (its number, score and weights) and the patience rule on it, which
    depends only on the history, so a resumed run stops where the uninterrupted one does."""

    patience: int
    epoch: int = 0
    score: float = -math.inf
    state: dict[str, torch.Tensor] | None = None

    def exhausted(self, epochs_done: int) -> bool:
        """True when `epochs_done` epochs leave `patience` of them without a better score."""
        return epochs_done - self.epoch >= self.patience

    def offer(self, epoch: int, score: float, model: nn.Module) -> bool:
        """Keep `epoch` (1-based) when it beats the best so far (the first epoch always counts); True if it did."""
        if score > self.score or self.state is None:
            self.epoch, self.score, self.state = epoch, score, _cpu_state(model)
            return True
        return False

    def result(self, model: nn.Module, history: list[dict[str, Any]]) -> dict[str, Any]:
        """Restore the best epoch's weights into `model`; the fine-tuning result (see `train_classifier`)."""
        if self.state is not None:
            model.load_state_dict(self.state)
        epochs_run = len(history)
        return {"best_epoch": self.epoch, "best_val_auroc": self.score if self.score > -math.inf else None,
                "epochs_run": epochs_run, "stopped": "patience" if self.exhausted(epochs_run) else "max_epochs",
                "history": history}


class _Finetuning:
    """One end-to-end fine-tuning run: the model on the device, its optimizer and loss, and an epoch's steps."""

    def __init__(self, model: Classifier, store: ECGStore, y: np.ndarray, settings: FinetuneSettings,
                 context: TrainingContext, options: TrainOptions, *, batch_norm: bool) -> None:
        self.model, self.store, self.y, self.settings, self.context, self.options = \
            model, store, y, settings, context, options
        self.device, self.batch_norm = context.device, batch_norm
        model.to(self.device)
        self.optimizer = settings.optimizer(model.parameters())
        self.criterion = nn.CrossEntropyLoss() if model.softmax else nn.BCEWithLogitsLoss()

    def resume(self) -> tuple[list[dict[str, Any]], _BestEpoch, int]:
        """The history so far, the best epoch and the epoch to start from (after loading a resume file)."""
        best = _BestEpoch(self.settings.patience)
        state = self.context.checkpoints.resume()
        if state is None:
            return [], best, 0
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        best.epoch, best.score, best.state = state["best_epoch"], state["best_score"], state["best_state"]
        return state["history"], best, state["epoch"]

    def _target(self, t: torch.Tensor) -> torch.Tensor:
        """Class indices for cross-entropy; a (B, outputs) float matrix for binary cross-entropy."""
        if self.model.softmax:
            return t.long()
        return t.unsqueeze(1) if t.dim() == 1 else t

    def train_epoch(self, epoch: int, rows: np.ndarray, held: Dataset | None) -> float:
        """Train epoch `epoch` (0-based) on `rows` (from the preloaded `held` when given); its mean loss."""
        torch.manual_seed(self.settings.seed_for("finetune", "torch", epoch))
        shuffle = self.settings.seed_for("finetune", "shuffle", epoch)
        non_blocking = self.options.pin(self.device)
        total, count = 0.0, 0
        self.model.train()
        for signals, target, _ in batch_loader(self.store, rows, self.y, self.settings.batch_size,
                                               shuffle_seed=shuffle, merge_single=self.batch_norm,
                                               options=self.options, device=self.device, dataset=held):
            signals = signals.to(self.device, non_blocking=non_blocking)
            target = self._target(target.to(self.device, non_blocking=non_blocking))
            with self.options.autocast(self.device):
                logits = self.model(signals)
            loss = self.criterion(logits.float(), target)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total, count = total + float(loss.detach()) * len(signals), count + len(signals)
        return total / max(count, 1)

    def validate(self, epoch: int, loss: float, val_rows: np.ndarray) -> float:
        """The validation AUROC after epoch `epoch` (-inf when undefined); a diverged epoch is an error."""
        val_probs = predict_probabilities(self.model, self.store, val_rows, self.settings.batch_size, self.device)
        check_finite_epoch("finetune", epoch + 1, loss, list(self.model.parameters()), lr=self.settings.lr)
        if not np.isfinite(val_probs).all():
            raise NonFiniteTraining("finetune", epoch + 1, "the validation predictions became non-finite",
                                    self.settings.lr)
        return _validation_auroc(np.asarray(self.y[val_rows]), val_probs)

    def save(self, epoch: int, score: float, record: dict[str, Any], history: list[dict[str, Any]],
             best: _BestEpoch) -> None:
        """Keep `epoch` (1-based) as the best when it is (writing `best_path`), then write the resume file."""
        checkpoints = self.context.checkpoints
        if best.offer(epoch, score, self.model):
            checkpoints.save_best(epoch, record["val_auroc"], best.state)
        checkpoints.save_last("classifier-last", epoch, {
            "history": history, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "best_epoch": best.epoch, "best_score": best.score, "best_state": best.state})
