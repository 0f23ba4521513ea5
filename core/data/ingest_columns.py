"""What ingest holds for every record while it runs, kept as columns rather than as objects per record.

A RecordRef with its metadata dict for every record found, and a dict of results for every record written,
cost about 3.6 kB a record (3.6 GB for a million records from files) against the 0.2 kB a record of the
metadata table the store ends with. Here the references are columns (`RefTable`), a chunk's results come back
from its worker as numpy columns (`RecordColumns`), and metadata dicts become one object array per key
(`MetaColumns`): a few hundred bytes a record, most of it the strings themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecgcl.data.duplicates import HASH_COLUMN
from ecgcl.data.records import RecordRef


class _Missing:
    """The value of a key that a record's metadata lacks (pickled by name: a worker's is the same object)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING = _Missing()


def object_array(values: Iterable[Any], count: int) -> np.ndarray:
    """`values` as a 1-D object array (a tuple stays one element, where `np.array` would nest it)."""
    return np.fromiter(values, dtype=object, count=count)


@dataclass
class MetaColumns:
    """Per-record metadata dicts as one object array per key (MISSING where a record lacks the key); keys in
    the order first seen."""

    count: int
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, dicts: Sequence[dict[str, Any]]) -> MetaColumns:
        keys = dict.fromkeys(key for d in dicts for key in d)
        return cls(len(dicts), {key: object_array((d.get(key, MISSING) for d in dicts), len(dicts)) for key in keys})

    @classmethod
    def concat(cls, parts: Sequence[MetaColumns]) -> MetaColumns:
        keys = dict.fromkeys(key for part in parts for key in part.columns)
        columns = {key: np.concatenate([part.columns.get(key, _missing(part.count)) for part in parts])
                   for key in keys}
        return cls(sum(part.count for part in parts), columns)

    def __len__(self) -> int:
        return self.count

    def at(self, index: int) -> dict[str, Any]:
        """The metadata dict of record `index`."""
        return {key: values[index] for key, values in self.columns.items() if values[index] is not MISSING}

    def take(self, index: np.ndarray) -> MetaColumns:
        """The records at `index` (positions or a boolean mask)."""
        index = np.asarray(index)
        count = int(index.sum()) if index.dtype == bool else len(index)
        return MetaColumns(count, {key: values[index] for key, values in self.columns.items()})

    def present(self, key: str) -> np.ndarray:
        """Which records have `key` (compared by identity: values may be anything a reader gives)."""
        values = self.columns.get(key)
        if values is None:
            return np.zeros(self.count, bool)
        return np.fromiter((value is not MISSING for value in values), dtype=bool, count=self.count)

    def values(self, key: str) -> list[Any]:
        """`key`'s values as a list, NaN where a record lacks it: a DataFrame built from such lists infers the
        same dtypes as one built from the records' dicts."""
        values = self.columns[key]
        return np.where(self.present(key), values, np.nan).tolist()


def _missing(count: int) -> np.ndarray:
    return object_array((MISSING for _ in range(count)), count)


class RefTable:
    """A source's record references as columns (ids, paths, locators, identifying flags, metadata), in order.

    Indexing gives a RecordRef (an int) or a list of them (a slice): what readers and the plan expect.
    """

    def __init__(self, refs: Sequence[RecordRef]) -> None:
        n = len(refs)
        self.record_id = object_array((ref.record_id for ref in refs), n)
        self.source_path = object_array((ref.source_path for ref in refs), n)
        self.locator = object_array((ref.locator for ref in refs), n)
        self.identifying = np.fromiter((bool(ref.identifying) for ref in refs), dtype=bool, count=n)
        self.meta = MetaColumns.of([ref.meta for ref in refs])

    def __len__(self) -> int:
        return len(self.record_id)

    def __getitem__(self, index: int | slice) -> RecordRef | list[RecordRef]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return RecordRef(self.record_id[index], self.source_path[index], self.locator[index], self.meta.at(index),
                         bool(self.identifying[index]))


@dataclass
class RecordColumns:
    """What ingest keeps of each record it writes (`position` in the source), in position order: the rate and
    length it had, its median lead peak-to-peak, the hash of its rows (ASCII hex, `S16`), the metadata its
    reader loaded, and the manifest's facts (`facts`: only records that have any)."""

    position: np.ndarray
    original_fs: np.ndarray
    original_length: np.ndarray
    amplitude_mv: np.ndarray
    signal_hash: np.ndarray
    meta: MetaColumns
    facts: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> RecordColumns:
        return cls.concat([])

    @classmethod
    def concat(cls, parts: Sequence[RecordColumns]) -> RecordColumns:
        def joined(name: str, dtype: Any) -> np.ndarray:
            return np.concatenate([np.empty(0, dtype)] + [getattr(part, name) for part in parts])

        facts = {position: fact for part in parts for position, fact in part.facts.items()}
        return cls(joined("position", np.int64), joined("original_fs", np.float64),
                   joined("original_length", np.float64), joined("amplitude_mv", np.float64),
                   joined("signal_hash", "S1"), MetaColumns.concat([part.meta for part in parts]), facts)

    def __len__(self) -> int:
        return len(self.position)

    def take(self, keep: np.ndarray) -> RecordColumns:
        """The records where the boolean mask `keep` is true."""
        kept = set(self.position[keep].tolist())
        return RecordColumns(self.position[keep], self.original_fs[keep], self.original_length[keep],
                             self.amplitude_mv[keep], self.signal_hash[keep], self.meta.take(keep),
                             {p: fact for p, fact in self.facts.items() if p in kept})


def merged_meta(ref_meta: MetaColumns, records: RecordColumns) -> dict[str, list[Any]]:
    """The metadata columns of the written records: each record's ref metadata, overridden by what its reader
    loaded and then by its rows' hash, NaN where a record has no value; as lists, so that a DataFrame of them has
    the dtypes that one of the records' merged dicts had. Columns come in the order first met over the records
    (their ref's keys, then the loaded ones, then the hash)."""
    loaded = MetaColumns(len(records), {k: v for k, v in records.meta.columns.items() if k != HASH_COLUMN})
    first: dict[str, tuple[int, int, int]] = {}
    for rank, meta in enumerate((ref_meta, loaded)):
        for seen, key in enumerate(meta.columns):
            present = meta.present(key)
            if present.any():
                first[key] = min(first.get(key, (len(records), 2, 0)), (int(present.argmax()), rank, seen))
    first[HASH_COLUMN] = (0, 1, len(loaded.columns))
    merged: dict[str, list[Any]] = {}
    for key in sorted(first, key=first.__getitem__):
        if key == HASH_COLUMN:
            merged[key] = records.signal_hash.astype(str).tolist()
            continue
        values = np.full(len(records), np.nan, dtype=object)
        for meta in (ref_meta, loaded):
            if key in meta.columns:
                present = meta.present(key)
                values[present] = meta.columns[key][present]
        merged[key] = values.tolist()
    return merged
