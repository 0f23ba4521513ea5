"""`--preload`: the training records held where training runs, so no worker, pinned copy or host-to-device
transfer sits in a step.

`device` copies the pool to the GPU once, in the store's dtype (float16 stores take half the memory), and each
batch is gathered there and turned into float32; `ram` does the same in host memory; `auto` takes `device` when
the pool fits in `AUTO_SHARE` of the free GPU memory (or in `--preload-budget` GB), else the memory-mapped
loader (`off`). The batches are the loader's, record for record: the same sampler draws the same positions, only
where their values are read from changes, so results are identical for the same seed. Under DDP each rank holds
one fixed shard of the pool (see `ecgcl.engine.loading.pretraining_loader`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from ecgcl.data.dataset import ECGDataset
from ecgcl.data.store import ECGStore
from ecgcl.errors import EcgclError

AUTO_SHARE = 0.5  # of the free GPU memory the pool may take under `auto` (activations need the rest)
RAM_SHARE = 0.8  # of the available host memory an explicit `ram` preload may take
READ_CHUNK = 4096  # records read from the memory map at a time while preloading


def pool_bytes(store: ECGStore, rows: Sequence[int]) -> int:
    """Bytes the records `rows` take in the store's dtype."""
    return int(len(rows) * np.prod(store.signals.shape[1:]) * store.signals.dtype.itemsize)


def choose_preload(mode: str, device: torch.device, needed: int, budget_gb: float | None = None) -> str:
    """The preload a run uses: `off`, `ram` or `device`; EcgclError (one line) for one that cannot work."""
    if mode == "off":
        return "off"
    if mode == "device" and device.type != "cuda":
        raise EcgclError(f"--preload device needs a CUDA device; this run is on {device.type} (use --preload ram "
                         "to hold the records in host memory)")
    if mode == "ram":
        available = _available_host_bytes() if budget_gb is None else budget_gb * 2**30
        if needed > RAM_SHARE * available:
            raise EcgclError(f"--preload ram: the training records take {needed / 2**30:.2f} GiB, more than "
                             f"{RAM_SHARE:.0%} of the {available / 2**30:.2f} GiB available (use --preload off)")
        return "ram"
    if device.type != "cuda":
        return "off"  # auto on CPU: the memory map is already host memory
    free = torch.cuda.mem_get_info(device)[0] if budget_gb is None else budget_gb * 2**30 / AUTO_SHARE
    fits = needed <= AUTO_SHARE * free
    if mode == "device" and not fits:
        raise EcgclError(f"--preload device: the training records take {needed / 2**30:.2f} GiB, more than "
                         f"{AUTO_SHARE:.0%} of the {free / 2**30:.2f} GiB free on {device} (use --preload off)")
    return "device" if fits else "off"


def _available_host_bytes() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**63


class PreloadedDataset(ECGDataset):
    """An `ECGDataset` whose records are copied once onto `device` (host memory for CPU) in the store's dtype;
    `__getitems__` gathers a batch there and returns it as float32, like the memory-mapped dataset."""

    def __init__(self, store: ECGStore, indices: Sequence[int] | np.ndarray, targets: np.ndarray | None,
                 device: torch.device) -> None:
        super().__init__(store, indices, targets)
        rows = self.indices
        order = np.argsort(rows, kind="stable")
        self.signals = torch.empty((len(rows), *store.signals.shape[1:]), device=device,
                                   dtype=_torch_dtype(store.signals.dtype))
        for start in range(0, len(rows), READ_CHUNK):  # sorted reads: sequential access to the memory map
            chosen = order[start:start + READ_CHUNK]
            block = torch.from_numpy(np.ascontiguousarray(store.signals[rows[chosen]]))
            self.signals[torch.from_numpy(chosen).to(device)] = block.to(device=device, dtype=self.signals.dtype)
        self.device = torch.device(device)
        self.patients = torch.from_numpy(np.asarray(store.patient_codes[rows])).to(device)
        self.target_values = None if targets is None else \
            torch.from_numpy(np.asarray(targets[rows], dtype=np.float32)).to(device)

    def __getitems__(self, items: Sequence[int]):
        index = torch.as_tensor(np.asarray(items, dtype=np.int64), device=self.device)
        signals = self.signals.index_select(0, index).float()
        targets = torch.full((len(index),), float("nan"), device=self.device) if self.target_values is None \
            else self.target_values.index_select(0, index)
        return [(signals, targets, self.patients.index_select(0, index))]


def _torch_dtype(dtype: np.dtype) -> torch.dtype:
    return {np.dtype("float16"): torch.float16, np.dtype("float32"): torch.float32}.get(np.dtype(dtype),
                                                                                      torch.float32)
