"""The store dataset under DataLoader workers and distributed samplers; the built-in real sample."""

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from ecgcl.data.dataset import ECGDataset, collate_batch
from ecgcl.data.ingest import ingest
from ecgcl.data.sample import decode, sample_store_path
from ecgcl.data.store import open_store
from ecgcl.tasks import task_targets


@pytest.fixture(scope="module")
def store(ptbxl_dir, tmp_path_factory):
    return open_store(ingest(ptbxl_dir, tmp_path_factory.mktemp("ds") / "store", limit=40, workers=1).path)


def test_store_pickles_without_its_signals(store):
    """What a spawned DataLoader worker receives: the path, re-opened as a memory map, not the array."""
    blob = pickle.dumps(store)
    assert len(blob) < store.signals.nbytes / 4
    copy = pickle.loads(blob)
    assert isinstance(copy.signals, np.memmap) and np.array_equal(copy.read(np.array([3, 1])), store.read([3, 1]))


def test_dataloader_workers_and_distributed_sampler_cover_the_store_once(store):
    targets = task_targets("normal_vs_abnormal", store.metadata)
    dataset = ECGDataset(store, targets=targets.y)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=3)
        loader = DataLoader(dataset, batch_size=8, sampler=sampler, num_workers=2, collate_fn=collate_batch)
        for signals, y, patients in loader:
            assert signals.shape[1:] == (12, 1000) and signals.dtype == torch.float32
            assert len(y) == len(patients) == len(signals)
            seen.append(signals)
    stacked = torch.cat(seen)
    assert len(stacked) == len(store)  # 40 records split evenly: each seen exactly once across both ranks
    fingerprint = lambda x: sorted(np.round(x.reshape(len(x), -1).astype(np.float64) @ np.arange(12000.0), 3))  # noqa: E731
    assert fingerprint(stacked.numpy()) == fingerprint(store.read(np.arange(len(store))))


def test_sample_store_is_real_labelled_ptbxl(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGCL_CACHE", str(tmp_path / "cache"))
    path = sample_store_path()
    assert path.parent == tmp_path / "cache" and sample_store_path() == path  # materialised once
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temporary folder left
    store = open_store(path)
    assert store.signals.shape[1:] == (12, 1000) and store.fs == 100.0
    labelled = sum(bool(s) for s in store.label_sets)
    assert 300 <= labelled <= 400 and labelled < len(store)
    for task in ("normal_vs_abnormal", "superclasses", "mi_vs_normal"):
        assert task_targets(task, store.metadata).labelled.sum() > 40
    assert store.metadata["strat_fold"].notna().sum() == labelled
    assert store.metadata.loc[store.metadata["labels"] == "", "patient_id"].str.startswith("record:").all()


def test_sample_matches_the_shared_ptbxl_records(ptbxl_dir):
    from ecgcl.plugins.readers.wfdb_files import read_wfdb

    signals, table = decode()
    for row in (0, len(table) // 2, len(table) - 1):
        original = read_wfdb(ptbxl_dir / table["source_path"][row]).signal
        assert np.abs(signals[row] - original).max() <= 0.0025 + 1e-6  # requantised to 5 uV steps
