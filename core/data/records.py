"""What every reader hands to ingest: a cheap reference per record, the loaded record, and why a record is bad."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

# Skip categories, in the order the summary lists them.
MISSING_SIGNAL = "missing signal file"
TRUNCATED_SIGNAL = "truncated signal file"
CORRUPT_HEADER = "corrupt header"
UNREADABLE = "unreadable record"
MISSING_LEADS = "missing leads"
UNKNOWN_UNIT = "unknown unit"
NAN_VALUES = "NaN values"
FLAT_LEADS = "flat leads"
TOO_SHORT = "too short"
IMPLAUSIBLE_AMPLITUDE = "implausible amplitude"
SKIP_CATEGORIES = (MISSING_SIGNAL, TRUNCATED_SIGNAL, CORRUPT_HEADER, UNREADABLE, MISSING_LEADS, UNKNOWN_UNIT,
                   NAN_VALUES, FLAT_LEADS, TOO_SHORT, IMPLAUSIBLE_AMPLITUDE)


@dataclass
class RecordRef:
    """One record found in a source: enough to load it later (`locator`) plus metadata known without loading it."""

    record_id: str
    source_path: str
    locator: Any
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class RawRecord:
    """A loaded record: `signal` is (leads, samples) float32 in the file's lead order, with the lead names as the
    file writes them; values are in `units` per lead (None: all mV). Ingest converts units and names."""

    signal: np.ndarray
    fs: float
    leads: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    units: list[str] | None = None

    @property
    def duration(self) -> float:
        return self.signal.shape[-1] / self.fs


class BadRecord(Exception):
    """A record that cannot go into the store; `category` is one of SKIP_CATEGORIES, `detail` says why."""

    def __init__(self, category: str, detail: str) -> None:
        super().__init__(f"{category}: {detail}")
        self.category = category
        self.detail = detail


@dataclass
class Skip:
    """A skipped record as listed in the manifest."""

    record_id: str
    source_path: str
    category: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"record_id": self.record_id, "source_path": self.source_path, "reason": self.category,
                "detail": self.detail}


class Reader(Protocol):
    """A data source. `discover` lists records cheaply; `load` reads one (raising BadRecord for bad data).

    `parallel` is "process" when a reader is cheap to pickle and parses files (WFDB), "thread" when it holds
    its data in memory (parquet, numpy). A reader may also offer `probe(ref) -> (fs, samples)`, cheaper than
    `load` (a header read), which ingest uses to choose the most common rate and length, and
    `load_many(refs) -> list[RawRecord | BadRecord]`, which reads a run of records at once (HDF5 slices).
    """

    kind: str
    parallel: str

    def describe(self) -> str: ...

    def discover(self) -> list[RecordRef]: ...

    def load(self, ref: RecordRef) -> RawRecord: ...


def load_records(reader: Reader, refs: list[RecordRef]) -> list[RawRecord | BadRecord]:
    """Each ref's record, or the BadRecord it raised; through the reader's `load_many` when it has one."""
    if hasattr(reader, "load_many"):
        return reader.load_many(refs)
    loaded: list[RawRecord | BadRecord] = []
    for ref in refs:
        try:
            loaded.append(reader.load(ref))
        except BadRecord as bad:
            loaded.append(bad)
    return loaded
