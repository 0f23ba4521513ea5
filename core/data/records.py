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
NAN_VALUES = "NaN values"
FLAT_LEADS = "flat leads"
TOO_SHORT = "too short"
SKIP_CATEGORIES = (MISSING_SIGNAL, TRUNCATED_SIGNAL, CORRUPT_HEADER, UNREADABLE, MISSING_LEADS, NAN_VALUES,
                   FLAT_LEADS, TOO_SHORT)


@dataclass
class RecordRef:
    """One record found in a source: enough to load it later (`locator`) plus metadata known without loading it."""

    record_id: str
    source_path: str
    locator: Any
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class RawRecord:
    """A loaded record in physical units (mV): `signal` is (leads, samples) float32, in the file's lead order."""

    signal: np.ndarray
    fs: float
    leads: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

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
    its data in memory (parquet, numpy).
    """

    kind: str
    parallel: str

    def describe(self) -> str: ...

    def discover(self) -> list[RecordRef]: ...

    def load(self, ref: RecordRef) -> RawRecord: ...
