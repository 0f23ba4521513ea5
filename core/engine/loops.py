"""Training loops: contrastive pretraining, fine-tuning (end to end or linear probe) and prediction.

Every loop saves `last_path` atomically after each finished epoch (model, optimizer, epoch, history, best
validation score) and, when that file exists, resumes after its epoch. Shuffling, augmentation draws and
dropout are reseeded from (seed, stage, epoch) at the start of every epoch, so a resumed run gives exactly
the numbers of an uninterrupted one on CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ecgcl.data.dataset import ECGDataset, collate_batch
from ecgcl.data.store import ECGStore
from ecgcl.distributed import all_reduce_sum, barrier, rank, world_size
from ecgcl.engine.checkpoint import load_checkpoint, save_checkpoint
from ecgcl.engine.device import derive_seed
from ecgcl.engine.guards import (NonFiniteTraining, check_batch_size, check_finite_epoch, check_finite_probabilities,
                                 check_global_batch, check_pretraining_batch_size)
from ecgcl.engine.model import Classifier, probabilities
from ecgcl.engine.preload import PreloadedDataset
from ecgcl.engine.speed import TrainOptions, current_options, now
from ecgcl.errors import EcgclError
from ecgcl.metrics import classification_metrics

EpochCallback = Callable[[str, int, int, dict[str, Any]], None]


def _loader(store: ECGStore, rows: np.ndarray, targets: np.ndarray | None, batch_size: int, *,
            shuffle_seed: int | None = None, merge_single: bool = False,
            options: TrainOptions | None = None, device: torch.device | None = None,
            dataset: ECGDataset | None = None) -> DataLoader:
    """Batches of `rows` in a seeded random order (or in order); reads each batch in one memory-map access, or
    gathers it from `dataset` (a `PreloadedDataset` of the same `rows`, see `ecgcl.engine.preload`).

    `merge_single` folds a final batch of one record into the batch before it, so a model with batch norm
    (which cannot train on one sample) trains on every record instead of silently skipping the last one.
    """
    order = np.arange(len(rows)) if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(len(rows))
    batches = [order[start:start + batch_size].tolist() for start in range(0, len(rows), batch_size)]
    if merge_single and len(batches) > 1 and len(batches[-1]) == 1:
        last = batches.pop()
        batches[-1] += last
    if dataset is not None:
        return DataLoader(dataset, batch_sampler=batches, collate_fn=collate_batch)
    return DataLoader(ECGDataset(store, rows, targets), batch_sampler=batches, collate_fn=collate_batch,
                      **_loading_kwargs(options, device))


def preloaded(store: ECGStore, rows: np.ndarray, targets: np.ndarray | None, options: TrainOptions,
              device: torch.device) -> ECGDataset | None:
    """The `PreloadedDataset` of `rows` that `options.preload` asks for on `device`, or None (the loader)."""
    from ecgcl.engine.preload import choose_preload, pool_bytes

    choice = choose_preload(options.preload, device, pool_bytes(store, rows), options.preload_budget)
    if options.timer is not None:
        options.timer.preloaded = choice
    if choice == "off":
        return None
    return PreloadedDataset(store, rows, targets, device if choice == "device" else torch.device("cpu"))


def _loading_kwargs(options: TrainOptions | None, device: torch.device | None) -> dict[str, Any]:
    """DataLoader worker / pinned-memory settings from the options (none: read in this process)."""
    if options is None:
        return {}
    kwargs: dict[str, Any] = {"pin_memory": device is not None and options.pin(device)}
    if options.workers > 0:
        kwargs.update(num_workers=options.workers, persistent_workers=True, prefetch_factor=options.prefetch)
    return kwargs


def pretraining_loader(store: ECGStore, rows: np.ndarray, global_batch: int, *, seed: int,
                       options: TrainOptions | None = None, device: torch.device | None = None) -> DataLoader:
    """This rank's share of the seeded global batches over `rows`, through a `DistributedSampler`.

    The sampler is used with one process too: with shuffle seed `seed` (and `set_epoch`), rank r of N reads
    positions r, r + N, r + 2N ... of one permutation, so with a per-rank batch of `global_batch / N` the
    union of the ranks' k-th batches is the single process's k-th batch, whatever N is. With `--preload` under
    DDP each rank instead holds one fixed shard of the pool (positions r, r + N ... of a seeded permutation)
    and draws its batches from it (shards of equal size, so every rank runs the same number of steps), so no
    rank copies the whole pool; one process is the same either way.
    """
    world, this_rank = world_size(), rank()
    check_global_batch(global_batch, world)
    per_rank, drop_last = global_batch // world, len(rows) >= global_batch
    dataset = None
    if options is not None and device is not None:
        if world > 1 and options.preload != "off":
            shard = np.sort(np.random.default_rng(seed).permutation(len(rows))[this_rank::world][:len(rows) // world])
            dataset = preloaded(store, rows[shard], None, options, device)
            if dataset is not None:
                rows, world, this_rank = rows[shard], 1, 0
        else:
            dataset = preloaded(store, rows, None, options, device)
    dataset = dataset if dataset is not None else ECGDataset(store, rows, None)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=this_rank, shuffle=True, seed=seed,
                                 drop_last=True)
    kwargs = {} if isinstance(dataset, PreloadedDataset) else _loading_kwargs(options, device)
    return DataLoader(dataset, batch_size=per_rank, sampler=sampler, drop_last=drop_last,
                      collate_fn=collate_batch, **kwargs)


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


def _resume(last_path: Path | None, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The last-epoch checkpoint of this stage, if one exists and was written with the same settings."""
    if last_path is None or not Path(last_path).is_file():
        return None
    state = load_checkpoint(last_path)
    if state.get("fingerprint") != fingerprint:
        raise EcgclError(f"{last_path} was written by a run with other settings; use a new results folder "
                         "(--out) or pass --overwrite")
    return state


def pretrain(*, encoder: nn.Module, objective: nn.Module, store: ECGStore, rows: np.ndarray, epochs: int,
             batch_size: int, lr: float, weight_decay: float, seed: int, device: torch.device, window: int,
             representation: str, last_path: Path | None = None, meta: dict[str, Any] | None = None,
             fingerprint: dict[str, Any] | None = None, on_epoch_end: EpochCallback | None = None,
             options: TrainOptions | None = None) -> list[dict[str, Any]]:
    """Pretrain `encoder` with an `Objective` (`ecgcl.interfaces.Objective`) on the records `rows`.

    Each batch's loss is `objective(encoder view, batch, patient codes, generator)`; after each optimizer
    step `objective.after_step(step, total_steps)` runs (EMA targets, schedules). Returns the per-epoch history
    (`epoch`, `loss`). The objective's state (projection, predictor, momentum target, a learnable temperature)
    is saved in `last_path` with the encoder and optimizer, so a resumed run continues exactly.

    Under torch.distributed (torchrun) `batch_size` is the global batch: each rank reads its share through a
    `DistributedSampler`, encoder and objective are wrapped in DDP as one module, the losses gather embeddings
    over the ranks, the epoch loss is averaged over all ranks, and only rank 0 writes `last_path`. A checkpoint
    written with N ranks resumes with any other number. `options` (default: the active `training_options`)
    selects bf16 autocast, torch.compile and data-loading workers; augmentation runs on `device`.
    """
    from ecgcl.engine.pretraining import PretrainStep

    if len(rows) < 2:
        raise EcgclError("pretraining needs at least 2 records in the pool")
    options = options or current_options()
    options.prepare(device)
    if options.bf16 and options.compile and device.type == "cpu":
        # measured with torch 2.13 CPU: inductor's bf16 kernels give NaN losses from the first epoch
        raise EcgclError("--bf16 together with --compile gives NaN losses on CPU with this PyTorch; "
                         "use one of them on CPU (both are meant for GPUs)")
    check_pretraining_batch_size(batch_size)
    world, this_rank = world_size(), rank()
    step_module = PretrainStep(encoder, objective, window=window, representation=representation).to(device)
    params = [p for p in step_module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    fingerprint = fingerprint or {}
    history: list[dict[str, Any]] = []
    start = 0
    state = _resume(last_path, fingerprint)
    if state is not None:
        encoder.load_state_dict(state["encoder"])
        objective.load_state_dict(state["objective"])  # projection, predictor, EMA target, a learnable loss
        optimizer.load_state_dict(state["optimizer"])
        start, history = state["epoch"], state["history"]
    if start >= epochs:
        return history
    model = wrap_for_training(step_module, device, options, find_unused=getattr(objective, "needs", None) is not None)
    loader = pretraining_loader(store, rows, batch_size, seed=derive_seed(seed, "pretrain", "shuffle"),
                                options=options, device=device)
    steps_per_epoch = len(loader)
    non_blocking = options.pin(device)
    timer = options.timer
    # per-rank streams: one process keeps the seeds of a plain single-process run
    stream = () if world == 1 else ("rank", this_rank)
    for epoch in range(start, epochs):
        torch.manual_seed(derive_seed(seed, "pretrain", "torch", epoch, *stream))
        generator = torch.Generator(device=device).manual_seed(derive_seed(seed, "pretrain", "aug", epoch, *stream))
        loader.sampler.set_epoch(epoch)
        step_module.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        count = 0
        batches = iter(loader)
        step = epoch * steps_per_epoch
        while True:
            began = now(device) if timer is not None else 0.0
            try:
                signals, _, patients = next(batches)
            except StopIteration:
                break
            if len(signals) * world < 2:
                continue
            signals = signals.to(device, non_blocking=non_blocking)
            patients = patients.to(device, non_blocking=non_blocking)
            loaded = now(device) if timer is not None else 0.0
            with options.autocast(device):
                loss = model(signals, patients, generator)
            loss = loss.float()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            objective.after_step(step, epochs * steps_per_epoch)
            step += 1
            total += loss.detach().double() * len(signals)
            count += len(signals)
            if timer is not None:
                timer.record(loaded - began, now(device) - began, len(signals) * world)
        total_all, count_all = all_reduce_sum([float(total), float(count)], device=device)
        record = {"epoch": epoch + 1, "loss": total_all / max(count_all, 1)}
        check_finite_epoch("pretrain", epoch + 1, record["loss"], params, lr=lr)  # before the checkpoint is written
        history.append(record)
        if last_path is not None:
            save_checkpoint(last_path, {
                "kind": "pretrain", "meta": meta or {}, "fingerprint": fingerprint, "epoch": epoch + 1,
                "history": history, "encoder": encoder.state_dict(), "objective": objective.state_dict(),
                "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
            })
            barrier()  # every rank leaves the epoch with the resume file on disk
        if on_epoch_end is not None:
            on_epoch_end("pretrain", epoch + 1, epochs, record)
    return history


@torch.no_grad()
def predict(model: Classifier, store: ECGStore, rows: np.ndarray, *, batch_size: int,
            device: torch.device, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    """Probabilities for the records `rows` ((N,) for binary tasks, (N, C) for multi-class and multi-label ones);
    EcgclError when the model gives NaN/inf for any record, which no metric may score. `transform` (e.g. a
    robustness perturbation) is applied to each batch on `device` before the model."""
    check_batch_size(batch_size, minimum=1, why="predictions are made in batches of at least one record")
    return check_finite_probabilities(_probabilities(model, store, rows, batch_size, device, transform),
                                      what="the model")


@torch.no_grad()
def _probabilities(model: Classifier, store: ECGStore, rows: np.ndarray, batch_size: int,
                   device: torch.device, transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    model.to(device).eval()
    outputs = []
    for signals, _, _ in _loader(store, rows, None, batch_size):
        signals = signals.to(device)
        outputs.append(probabilities(model(transform(signals) if transform else signals), model.softmax).cpu())
    return torch.cat(outputs).numpy().astype(np.float64)


def _features(model: Classifier, store: ECGStore, rows: np.ndarray, batch_size: int, device: torch.device):
    """The frozen encoder's features of `rows` (eval mode, no augmentation, batched on `device`), as `embed` gives."""
    from ecgcl.engine.embeddings import compute_embeddings

    model.to(device).eval()
    return compute_embeddings(model.encoder, store, rows, window=model.window, representation=model.representation,
                              batch_size=batch_size, device=device, lead_adapter=model.lead_adapter)


def _validation_auroc(y_val: np.ndarray, probs: np.ndarray) -> float:
    auroc = classification_metrics(y_val, probs)["auroc"]
    return -math.inf if math.isnan(auroc) else auroc


def fit_probe(*, model: Classifier, store: ECGStore, train_rows: np.ndarray, val_rows: np.ndarray, y: np.ndarray,
              batch_size: int, device: torch.device) -> dict[str, Any]:
    """The linear probe of a frozen encoder (see `ecgcl.engine.probe`): features computed once, standardised
    with the training records' statistics, logistic regression to convergence with C chosen on validation.

    The probe is folded into `model.head`, so the model scores raw records like any classifier. Returns `probe`
    (its dict: standardisation, weights, C, the validation path over the grid, for the caller's checkpoint),
    `stopped` (`converged` | `max_iter`), `best_val_auroc` and `history` (the C grid).
    """
    from ecgcl.engine.probe import fit_linear_probe

    check_batch_size(batch_size, minimum=1, why="features are computed in batches of at least one record")
    for p in model.encoder.parameters():
        p.requires_grad_(False)
    train_x, val_x = (_features(model, store, r, batch_size, device) for r in (train_rows, val_rows))
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
    return {"probe": probe.to_dict(), "stopped": "converged" if probe.converged else "max_iter",
            "best_epoch": None, "best_val_auroc": best_val, "history": probe.grid}


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train_classifier(*, model: Classifier, store: ECGStore, train_rows: np.ndarray, val_rows: np.ndarray,
                     y: np.ndarray, epochs: int, patience: int, batch_size: int, lr: float, weight_decay: float,
                     seed: int, device: torch.device, last_path: Path | None = None,
                     best_path: Path | None = None, meta: dict[str, Any] | None = None,
                     fingerprint: dict[str, Any] | None = None,
                     on_epoch_end: EpochCallback | None = None,
                     options: TrainOptions | None = None) -> dict[str, Any]:
    """Train `model` (encoder and head, end to end) on `train_rows` until the validation AUROC has not improved
    for `patience` epochs or `epochs` (the maximum) are done, and restore the best epoch.

    `y` is the task's target array for the whole store. On return the model holds the best epoch's weights;
    the result gives `best_epoch`, `best_val_auroc`, `epochs_run`, `stopped` (`patience` | `max_epochs`) and the
    per-epoch `history` (train loss, validation AUROC). The stopping rule depends only on the history, so a run
    resumed inside a patience window stops where the uninterrupted one does. `options` (default: the active
    `training_options`) give bf16 autocast and loader workers / pinned memory. Runs in one process (it is small
    next to pretraining).
    """
    options = options or current_options()
    options.prepare(device)
    if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
        raise EcgclError(f"--patience must be an integer >= 1, got {patience!r}")
    batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if batch_norm:
        check_batch_size(batch_size, minimum=2, why="the encoder uses batch norm, which cannot train on one record, "
                         "so every batch would be skipped")
        if len(train_rows) < 2:
            raise EcgclError(f"{len(train_rows)} training record(s): an encoder with batch norm needs at least 2")
    else:
        check_batch_size(batch_size, minimum=1, why="batches hold at least one record")
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    criterion = nn.CrossEntropyLoss() if model.softmax else nn.BCEWithLogitsLoss()
    fingerprint = fingerprint or {}
    history: list[dict[str, Any]] = []
    start, best_epoch, best_score, best_state = 0, 0, -math.inf, None
    state = _resume(last_path, fingerprint)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history = state["epoch"], state["history"]
        best_epoch, best_score, best_state = state["best_epoch"], state["best_score"], state["best_state"]

    def as_target(t: torch.Tensor) -> torch.Tensor:
        """Class indices for cross-entropy; a (B, outputs) float matrix for binary cross-entropy."""
        if model.softmax:
            return t.long()
        return t.unsqueeze(1) if t.dim() == 1 else t

    y_val = np.asarray(y[val_rows])
    non_blocking = options.pin(device)
    held = preloaded(store, train_rows, y, options, device) if start < epochs and start - best_epoch < patience \
        else None
    for epoch in range(start, epochs):
        if epoch - best_epoch >= patience:  # also when resuming a unit that had already stopped
            break
        torch.manual_seed(derive_seed(seed, "finetune", "torch", epoch))
        shuffle = derive_seed(seed, "finetune", "shuffle", epoch)
        total, count = 0.0, 0
        model.train()
        for signals, target, _ in _loader(store, train_rows, y, batch_size, shuffle_seed=shuffle,
                                          merge_single=batch_norm, options=options, device=device, dataset=held):
            signals = signals.to(device, non_blocking=non_blocking)
            target = as_target(target.to(device, non_blocking=non_blocking))
            with options.autocast(device):
                logits = model(signals)
            loss = criterion(logits.float(), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + float(loss.detach()) * len(signals), count + len(signals)
        val_probs = _probabilities(model, store, val_rows, batch_size, device)
        check_finite_epoch("finetune", epoch + 1, total / max(count, 1), list(model.parameters()), lr=lr)
        if not np.isfinite(val_probs).all():
            raise NonFiniteTraining("finetune", epoch + 1, "the validation predictions became non-finite", lr)
        score = _validation_auroc(y_val, val_probs)
        record = {"epoch": epoch + 1, "loss": total / max(count, 1), "val_auroc": score if score > -math.inf else None}
        history.append(record)
        if score > best_score or best_state is None:
            best_epoch, best_score, best_state = epoch + 1, score, _cpu_state(model)
            if best_path is not None:
                save_checkpoint(best_path, {"kind": "classifier", "meta": meta or {}, "epoch": epoch + 1,
                                            "val_auroc": record["val_auroc"], "model": best_state})
        if last_path is not None:
            save_checkpoint(last_path, {
                "kind": "classifier-last", "meta": meta or {}, "fingerprint": fingerprint, "epoch": epoch + 1,
                "history": history, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "best_epoch": best_epoch, "best_score": best_score, "best_state": best_state,
            })
        if on_epoch_end is not None:
            on_epoch_end("finetune", epoch + 1, epochs, record)
    if best_state is not None:
        model.load_state_dict(best_state)
    epochs_run = len(history)
    return {"best_epoch": best_epoch, "best_val_auroc": best_score if best_score > -math.inf else None,
            "epochs_run": epochs_run, "stopped": "patience" if epochs_run - best_epoch >= patience else "max_epochs",
            "history": history}
