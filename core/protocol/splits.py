"""Patient-level stratified splits and label-fraction subsets.

Records of one patient are never split across train / validation / test: patients, not records, are drawn,
stratified by each patient's label (the most frequent label of the patient's records). Patients that share a
byte-identical record are drawn together (the store's `group_codes`). Pretraining then uses
every record whose patient is in neither validation nor test of that repeat, labelled or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import train_test_split

from ecgcl.errors import EcgclError


@dataclass(frozen=True)
class PatientSplit:
    """Record indices (into the store) of one repeat's train / validation / test parts."""

    repeat: int
    seed: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    heldout: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))  # more rows kept from pretraining


    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "validation": self.val, "test": self.test}


def patient_labels(patient_codes: np.ndarray, strat_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique patients of the given records and one stratification label per patient (its most frequent one)."""
    patients, inverse = np.unique(patient_codes, return_inverse=True)
    keys, key_inverse = np.unique(strat_key, return_inverse=True)
    counts = np.zeros((len(patients), len(keys)), dtype=np.int64)
    np.add.at(counts, (inverse, key_inverse), 1)
    return patients, keys[counts.argmax(axis=1)]


def _split_patients(patients: np.ndarray, labels: np.ndarray, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split patients into (rest, part of `size`) stratified by label, unstratified when a class is too rare."""
    try:
        return train_test_split(patients, test_size=size, random_state=seed, stratify=labels)
    except ValueError:  # a class with a single patient cannot be stratified
        return train_test_split(patients, test_size=size, random_state=seed)


def split_patients(patient_codes: np.ndarray, strat_key: np.ndarray, labelled: np.ndarray, *, repeat: int,
                   seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15) -> PatientSplit:
    """Split the labelled records of a store by patient into train / validation / test, stratified by label.

    `patient_codes`, `strat_key` and `labelled` are aligned with the whole store; the fractions are fractions
    of the labelled patients.
    """
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise EcgclError(
            f"--val-fraction ({val_fraction}) and --test-fraction ({test_fraction}) must be in (0, 1) and sum below 1"
        )
    rows = np.flatnonzero(labelled)
    patients, labels = patient_labels(patient_codes[rows], strat_key[rows])
    if len(patients) < 3:
        raise EcgclError(f"the store has only {len(patients)} labelled patient(s); a split needs at least 3")
    rest, test_patients = _split_patients(patients, labels, test_fraction, seed)
    rest_labels = labels[np.searchsorted(patients, rest)]
    train_patients, val_patients = _split_patients(rest, rest_labels, val_fraction / (1 - test_fraction), seed + 1)

    def records_of(chosen: np.ndarray) -> np.ndarray:
        return rows[np.isin(patient_codes[rows], chosen)]

    return PatientSplit(repeat, seed, records_of(train_patients), records_of(val_patients), records_of(test_patients))


def pretraining_pool(patient_codes: np.ndarray, split: PatientSplit) -> np.ndarray:
    """Every record (labelled or not) whose patient is in neither the validation nor the test part (nor has a
    record among `split.heldout`, e.g. an unlabelled record of a validation or test fold)."""
    held_out = np.unique(patient_codes[np.concatenate([split.val, split.test, split.heldout])])
    return np.flatnonzero(~np.isin(patient_codes, held_out))


def label_fraction_subset(train: np.ndarray, patient_codes: np.ndarray, strat_key: np.ndarray, fraction: float,
                          seed: int) -> np.ndarray:
    """The train records of a `fraction` of the train patients, drawn per class (at least one patient each).

    For one seed, smaller fractions are subsets of larger ones (one shuffled patient order per class,
    cut at different points), so label-efficiency curves compare nested training sets.
    """
    if not 0 < fraction <= 1:
        raise EcgclError(f"label fraction {fraction} must be in (0, 1]")
    if fraction == 1:
        return train
    patients, labels = patient_labels(patient_codes[train], strat_key[train])
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = rng.permutation(patients[labels == label])
        chosen.append(members[: max(1, int(round(fraction * len(members))))])
    return train[np.isin(patient_codes[train], np.concatenate(chosen))]


def check_both_classes(y: np.ndarray, parts: dict[str, np.ndarray], *, repeat: int, task: str,
                       class_names: Sequence[str]) -> None:
    """Raise a clear error when a part of a split cannot be scored.

    Binary and multi-class targets need at least two classes in every part; multi-label targets need, outside
    the train part, at least one class with both positive and negative records (a class that is constant in
    a part gets an undefined AUROC, reported per class, and the result table warns about it).
    """
    for part, rows in parts.items():
        targets = y[rows]
        if targets.ndim == 1:
            present = np.unique(targets)
            if len(present) < 2:
                only = class_names[int(present[0])] if len(present) else "none"
                raise EcgclError(
                    f"repeat {repeat}: the {part} split of task {task!r} has only class {only!r} "
                    f"({len(rows)} records); use a store with more labelled patients of each class"
                )
        elif part != "train" and all(len(np.unique(targets[:, c])) < 2 for c in range(targets.shape[1])):
            raise EcgclError(
                f"repeat {repeat}: in the {part} split of task {task!r}, every class is all positive or all "
                f"negative ({len(rows)} records); use a store with more labelled patients"
            )


def read_split_file(path: str, part: str) -> list[str]:
    """The record ids of `part` in a run's `split.json` (`ecgcl evaluate/embed --split-file`)."""
    import json
    from pathlib import Path

    try:
        ids = json.loads(Path(path).read_text())[part]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EcgclError(f"--split-file {path}: cannot read part {part!r} ({type(error).__name__}: {error})") from None
    if not isinstance(ids, list):
        raise EcgclError(f"--split-file {path}: part {part!r} is not a list of record ids")
    return [str(i) for i in ids]
