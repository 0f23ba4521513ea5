"""A torch Dataset over a store: reads signals by index from the memory map, with no per-item parsing."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ecgcl.data.store import ECGStore


class ECGDataset(Dataset):
    """Records `indices` of a store as `(signal (L, T), target, patient code)` triples.

    `targets` is an array aligned with the whole store (from `ecgcl.tasks`); without it the target is NaN,
    which is what self-supervised pretraining uses. `__getitems__` reads a whole batch in one sorted memory-map
    access, which the DataLoader uses automatically; it is safe in worker processes and under
    `DistributedSampler` because nothing is parsed per item.
    """

    def __init__(self, store: ECGStore, indices: Sequence[int] | np.ndarray | None = None,
                 targets: np.ndarray | None = None) -> None:
        self.store = store
        self.indices = np.arange(len(store)) if indices is None else np.asarray(indices, dtype=np.int64)
        self.targets = targets

    def __len__(self) -> int:
        return len(self.indices)

    def _target(self, rows: np.ndarray) -> torch.Tensor:
        if self.targets is None:
            return torch.full((len(rows),), float("nan"))
        return torch.from_numpy(np.asarray(self.targets[rows], dtype=np.float32))

    def __getitem__(self, i: int):
        row = self.indices[i]
        signal = torch.from_numpy(np.array(self.store.signals[row], dtype=np.float32))
        return signal, self._target(np.array([row]))[0], int(self.store.patient_codes[row])

    def __getitems__(self, items: Sequence[int]):
        rows = self.indices[np.asarray(items, dtype=np.int64)]
        signals = torch.from_numpy(self.store.read(rows))
        patients = torch.from_numpy(self.store.patient_codes[rows])
        return [(signals, self._target(rows), patients)]


def collate_batch(batch):
    """Collate for `__getitems__`: the dataset already returns one stacked batch."""
    if len(batch) == 1 and isinstance(batch[0][0], torch.Tensor) and batch[0][0].dim() == 3:
        return batch[0]
    signals, targets, patients = zip(*batch)
    return torch.stack(signals), torch.stack(targets), torch.tensor(patients)
