"""Batches of store records for the loops: in a seeded order, from the memory map or a preloaded pool.

One home for how records reach a model, so training (`ecgcl.engine.loops`), prediction and embedding
(`ecgcl.engine.inference`) read the same batches the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ecgcl.data.dataset import ECGDataset, collate_batch
from ecgcl.data.store import ECGStore
from ecgcl.distributed import rank, world_size
from ecgcl.engine.guards import check_global_batch
from ecgcl.engine.preload import PreloadedDataset, choose_preload, pool_bytes
from ecgcl.engine.speed import TrainOptions


def batch_loader(store: ECGStore, rows: np.ndarray, targets: np.ndarray | None, batch_size: int, *,
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
                      **loading_kwargs(options, device))


def preloaded(store: ECGStore, rows: np.ndarray, targets: np.ndarray | None, options: TrainOptions,
              device: torch.device) -> ECGDataset | None:
    """The `PreloadedDataset` of `rows` that `options.preload` asks for on `device`, or None (the loader)."""
    choice = choose_preload(options.preload, device, pool_bytes(store, rows), options.preload_budget)
    if options.timer is not None:
        options.timer.preloaded = choice
    if choice == "off":
        return None
    return PreloadedDataset(store, rows, targets, device if choice == "device" else torch.device("cpu"))


def loading_kwargs(options: TrainOptions | None, device: torch.device | None) -> dict[str, Any]:
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
    kwargs = {} if isinstance(dataset, PreloadedDataset) else loading_kwargs(options, device)
    return DataLoader(dataset, batch_size=per_rank, sampler=sampler, drop_last=drop_last,
                      collate_fn=collate_batch, **kwargs)
