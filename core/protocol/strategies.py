"""Split strategies: how a repeat's train / validation / test patients are chosen.

- `random` (default): repeated random patient-level splits, stratified by label, a new draw per repeat.
- `ptbxl-folds`: the official PTB-XL folds of the store's `strat_fold` column (Wagner et al., Scientific Data
  2020; Strodthoff et al., IEEE JBHI 2021): folds 1-8 train, 9 validation, 10 test. Every repeat uses the same
  split, so repeats vary only the training seed (initialisation, shuffling, augmentation draws).
- `column:NAME`: any store column holding fold numbers, with `--val-folds` / `--test-folds`; the other folds train.

Whatever the strategy, the patients of the validation and test parts (and every record in a validation or test
fold, labelled or not) stay out of pretraining.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ecgcl.errors import EcgclError, did_you_mean
from ecgcl.protocol.splits import PatientSplit, split_patients
from ecgcl.split_spec import SplitStrategy


def fold_numbers(store, column: str) -> np.ndarray:
    """The column as float fold numbers (NaN where empty); a clear error for a missing or non-numeric column."""
    metadata = store.metadata
    if column not in metadata.columns:
        raise EcgclError(f"--split needs column {column!r}, which store {store.path} lacks (columns: "
                         f"{', '.join(map(str, metadata.columns))}){did_you_mean(column, list(map(str, metadata.columns)))}")
    raw = metadata[column]
    values = pd.to_numeric(raw, errors="coerce")
    bad = raw[values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")]
    if len(bad) or not np.all(np.isnan(values) | (values == np.round(values))):
        example = bad.iloc[0] if len(bad) else values[values != np.round(values)].iloc[0]
        raise EcgclError(f"column {column!r} of store {store.path} must hold whole fold numbers, found {str(example)!r}")
    return values.to_numpy(dtype=np.float64)


def fold_split(strategy: SplitStrategy, store, labelled: np.ndarray, *, repeat: int, seed: int) -> PatientSplit:
    """The split a fold strategy fixes: labelled records of the validation / test folds, the rest train."""
    folds = fold_numbers(store, strategy.column)
    present = sorted(int(f) for f in np.unique(folds[~np.isnan(folds)]))
    for option, wanted in (("--val-folds", strategy.val_folds), ("--test-folds", strategy.test_folds)):
        missing = sorted(set(wanted) - set(present))
        if missing:
            raise EcgclError(f"{option}: column {strategy.column!r} of store {store.path} has no records in fold(s) "
                             f"{missing} (folds present: {present})")
    in_val, in_test = np.isin(folds, strategy.val_folds), np.isin(folds, strategy.test_folds)
    in_train = ~np.isnan(folds) & ~in_val & ~in_test
    codes = store.group_codes  # patients, joined where they share a byte-identical record
    part_of = np.full(len(folds), -1)
    part_of[in_train], part_of[in_val], part_of[in_test] = 0, 1, 2
    with_fold = part_of >= 0
    pairs = np.unique(np.stack([codes[with_fold], part_of[with_fold]], axis=1), axis=0)
    patients, parts = np.unique(pairs[:, 0], return_counts=True)
    spread = patients[parts > 1]
    if len(spread):
        ids = store.metadata["patient_id"].astype(str).to_numpy()[np.isin(codes, spread)]
        raise EcgclError(f"column {strategy.column!r} puts {len(spread)} patient(s) (e.g. {ids[0]!r}) in more than one "
                         "of train / validation / test; folds must keep each patient's records (and byte-identical "
                         "records, which ecgcl joins) together")
    train, val, test = (np.flatnonzero(mask & labelled) for mask in (in_train, in_val, in_test))
    if len(train) == 0:
        raise EcgclError(f"column {strategy.column!r}: no labelled record is left for training outside the "
                         "validation and test folds")
    return PatientSplit(repeat, seed, train, val, test, heldout=np.flatnonzero(in_val | in_test))


def draw_split(strategy: SplitStrategy, store, targets, *, repeat: int, seed: int, val_fraction: float,
               test_fraction: float) -> PatientSplit:
    """The split of one repeat under `strategy` (random draws are seeded; fold splits are the same every time)."""
    if strategy.fixed:
        return fold_split(strategy, store, targets.labelled, repeat=repeat, seed=seed)
    return split_patients(store.group_codes, targets.stratify_key(), targets.labelled, repeat=repeat, seed=seed,
                          val_fraction=val_fraction, test_fraction=test_fraction)
