"""Byte-identical records: a content hash per record at ingest, reported groups, and split groups.

Archives often hold one recording twice (re-exports, copies under two ids). Such records must sit on the
same side of every split, or the test set contains training data. Each record's written rows are hashed
(BLAKE2b over the float32 bytes); records sharing a hash are reported in the manifest, and `split_groups`
joins patients that share a record hash into one group, which the splits use instead of the patient alone.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

HASH_COLUMN = "signal_hash"


def signal_hash(rows: np.ndarray) -> str:
    """A 16-hex-digit BLAKE2b hash of a record's rows (its float32 bytes in C order)."""
    return hashlib.blake2b(np.ascontiguousarray(rows, dtype="<f4").tobytes(), digest_size=8).hexdigest()


def record_hashes(signals: np.ndarray, positions: np.ndarray) -> dict[int, str]:
    """The hash of each record's rows, for a block of rows with the record `positions` they came from."""
    return {int(p): signal_hash(signals[positions == p]) for p in np.unique(positions)}


def duplicate_report(metadata: pd.DataFrame) -> dict[str, Any]:
    """Groups of record ids whose signals are byte-identical, for the manifest."""
    if HASH_COLUMN not in metadata:
        return {"groups": 0, "records": 0, "sets": []}
    records = metadata[["record_id", HASH_COLUMN]].drop_duplicates("record_id")  # two columns, not a table copy
    records = records[_has_hash(records)]
    shared = records[records.duplicated(HASH_COLUMN, keep=False)]
    sets = [sorted(group["record_id"].astype(str)) for _, group in shared.groupby(HASH_COLUMN, sort=False)]
    sets.sort()
    return {"rule": "records with the same signal_hash (BLAKE2b of the written float32 rows); kept together on one "
                    "side of every split", "groups": len(sets), "records": sum(len(s) for s in sets), "sets": sets}


def split_groups(metadata: pd.DataFrame) -> np.ndarray:
    """Group codes 0..G-1 per row: patients joined when they share a byte-identical record (connected components)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    patients, _ = pd.factorize(metadata["patient_id"].astype(str))
    if HASH_COLUMN not in metadata:
        return patients.astype(np.int64)
    valid = _has_hash(metadata).to_numpy()
    hashes, _ = pd.factorize(metadata[HASH_COLUMN][valid].astype(str))
    n_patients, n_hashes = int(patients.max()) + 1, int(hashes.max(initial=-1)) + 1
    graph = coo_matrix((np.ones(len(hashes)), (patients[valid], n_patients + hashes)),
                       shape=(n_patients + n_hashes,) * 2)
    _, component = connected_components(graph, directed=False)
    groups, _ = pd.factorize(component[patients])
    return groups.astype(np.int64)


def _has_hash(metadata: pd.DataFrame) -> pd.Series:
    values = metadata[HASH_COLUMN]
    return values.notna() & (values.astype(str).str.strip() != "")
