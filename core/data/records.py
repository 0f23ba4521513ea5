"""What every reader hands to ingest: a cheap reference per record, the loaded record, and why a record is bad."""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
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


def check_rate(fs: Any) -> float:
    """A record's sampling rate as a positive finite float; BadRecord (corrupt header) for 0, NaN, negative, text."""
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        raise BadRecord(CORRUPT_HEADER, f"sampling rate {fs!r} is not a number") from None
    if not (math.isfinite(rate) and rate > 0):
        raise BadRecord(CORRUPT_HEADER, f"sampling rate {rate:g} Hz is not a positive number")
    return rate


def confined_file(folder: str | os.PathLike, name: str) -> Path:
    """The signal file `name` a header names, which must be a plain file name inside the header's own folder.

    A name with a folder part (`../../secret.bin`, `/etc/passwd`, `sub/x.dat`) is refused, so a header can never
    make ingest read bytes from elsewhere; so is anything but a regular file (a FIFO would block forever).
    """
    if not name or name in (".", "..") or "/" in name or "\\" in name or Path(name).is_absolute():
        raise BadRecord(CORRUPT_HEADER, f"signal file name {name!r} leaves the record's folder")
    path = Path(folder) / name
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise BadRecord(MISSING_SIGNAL, f"{name} is missing") from None
    except OSError as error:
        raise BadRecord(UNREADABLE, f"{name}: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        raise BadRecord(UNREADABLE, f"{name} is not a regular file")
    return path


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
    """Each ref's record, or the BadRecord it raised; through the reader's `load_many` when it has one.

    Any exception a reader raises on a record's bytes (a library's own error, a MemoryError) is that record's
    BadRecord (unreadable), never the end of the ingest; so is a sampling rate that is not a positive number.
    """
    if hasattr(reader, "load_many"):
        try:
            loaded = reader.load_many(refs)
        except Exception:  # noqa: BLE001  (a run that fails as a whole is retried record by record)
            loaded = [_load_one(reader, ref) for ref in refs]
        return [_checked(r) for r in loaded]
    return [_load_one(reader, ref) for ref in refs]


def _load_one(reader: Reader, ref: RecordRef) -> RawRecord | BadRecord:
    try:
        return _checked(reader.load(ref))
    except BadRecord as bad:
        return bad
    except Exception as error:  # noqa: BLE001  (one bad record must never stop an archive)
        return BadRecord(UNREADABLE, f"{type(error).__name__}: {error}")


def _checked(record: RawRecord | BadRecord) -> RawRecord | BadRecord:
    if isinstance(record, BadRecord):
        return record
    try:
        record.fs = check_rate(record.fs)
    except BadRecord as bad:
        return bad
    return record
