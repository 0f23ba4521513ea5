"""Patient-level splits: no patient in two parts, pretraining never sees validation/test patients."""

from __future__ import annotations

import numpy as np
import pytest

from ecgcl.data.store import open_store
from ecgcl.tasks import task_targets
from ecgcl.errors import EcgclError
from ecgcl.protocol.splits import (check_both_classes, label_fraction_subset, pretraining_pool, split_patients)


def _many_records_per_patient(seed: int = 0):
    """300 records of 60 patients (1-9 records each), a per-patient label, 40 unlabelled records."""
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(60), rng.integers(1, 10, size=60))[:300]
    codes = np.concatenate([codes, np.arange(60, 100)])  # unlabelled patients
    patient_label = rng.integers(0, 2, size=100)
    y = patient_label[codes].astype(np.float32)
    labelled = codes < 60
    return codes, y.astype(np.int64), labelled


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_split_keeps_patients_whole_and_pretraining_away_from_val_and_test(seed):
    codes, key, labelled = _many_records_per_patient(seed)
    split = split_patients(codes, key, labelled, repeat=seed, seed=seed, val_fraction=0.2, test_fraction=0.2)
    parts = [set(codes[p]) for p in (split.train, split.val, split.test)]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    # every labelled record lands in exactly one part, unlabelled ones in none
    together = np.concatenate([split.train, split.val, split.test])
    assert sorted(together) == list(np.flatnonzero(labelled))
    pool = pretraining_pool(codes, split)
    assert not set(codes[pool]) & (parts[1] | parts[2])
    assert set(split.train) <= set(pool) and set(np.flatnonzero(~labelled)) <= set(pool)
    # stratified: both classes in every part
    for rows in (split.train, split.val, split.test):
        assert set(key[rows]) == {0, 1}


def test_split_is_reproducible_and_differs_between_seeds():
    codes, key, labelled = _many_records_per_patient()
    a = split_patients(codes, key, labelled, repeat=0, seed=5)
    b = split_patients(codes, key, labelled, repeat=0, seed=5)
    c = split_patients(codes, key, labelled, repeat=1, seed=6)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.train, b.train)
    assert not np.array_equal(a.test, c.test)


def test_label_fractions_are_nested_by_patient_and_keep_every_class():
    codes, key, labelled = _many_records_per_patient()
    split = split_patients(codes, key, labelled, repeat=0, seed=0)
    small = label_fraction_subset(split.train, codes, key, 0.1, seed=0)
    half = label_fraction_subset(split.train, codes, key, 0.5, seed=0)
    assert set(small) <= set(half) <= set(split.train)
    assert set(key[small]) == {0, 1}
    # whole patients only
    assert set(np.flatnonzero(np.isin(codes, codes[half]) & np.isin(np.arange(len(codes)), split.train))) == set(half)
    assert np.array_equal(label_fraction_subset(split.train, codes, key, 1.0, seed=0), split.train)


def test_split_of_real_ptbxl_store_by_patient(tiny_store):
    store = open_store(tiny_store)
    targets = task_targets("normal_vs_abnormal", store.metadata)
    split = split_patients(store.patient_codes, targets.stratify_key(), targets.labelled, repeat=0, seed=0,
                           val_fraction=0.25, test_fraction=0.25)
    patients = store.metadata["patient_id"].to_numpy()
    assert not set(patients[split.train]) & set(patients[split.test])
    pool = pretraining_pool(store.patient_codes, split)
    assert not set(patients[pool]) & (set(patients[split.val]) | set(patients[split.test]))
    assert (~targets.labelled[pool]).sum() == (~targets.labelled).sum()  # all unlabelled records pretrain


def test_one_class_split_names_the_split_and_repeat():
    y = np.array([0, 0, 1, 1, 0, 0], dtype=np.float32)
    parts = {"train": np.array([0, 2]), "test": np.array([4, 5])}
    with pytest.raises(EcgclError, match=r"repeat 3: the test split of task 'normal_vs_abnormal' has only class 'normal'"):
        check_both_classes(y, parts, repeat=3, task="normal_vs_abnormal", class_names=("normal", "abnormal"))


def test_bad_fractions_are_user_errors():
    codes, key, labelled = _many_records_per_patient()
    with pytest.raises(EcgclError, match="--val-fraction"):
        split_patients(codes, key, labelled, repeat=0, seed=0, val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(EcgclError, match="label fraction"):
        label_fraction_subset(np.arange(10), codes, key, 0.0, seed=0)
