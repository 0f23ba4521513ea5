"""The reader contract: what every reader (a plugin kind) hands to ingest: a cheap reference per record, the
loaded record, and why a record is bad. Readers recognise their sources; `ecgcl.data.sources` picks one."""

from __future__ import annotations

import math
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

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
SIGNAL_GAP = "gap in signal"
NO_WAVEFORM = "no usable waveform"
SKIP_CATEGORIES = (MISSING_SIGNAL, TRUNCATED_SIGNAL, CORRUPT_HEADER, UNREADABLE, NO_WAVEFORM, MISSING_LEADS,
                   UNKNOWN_UNIT, NAN_VALUES, SIGNAL_GAP, FLAT_LEADS, TOO_SHORT, IMPLAUSIBLE_AMPLITUDE)


@dataclass(slots=True)
class RecordRef:
    """One record found in a source: enough to load it later (`locator`) plus metadata known without loading it.
    Slotted: a source lists one per record before ingest turns them into columns (`ecgcl.data.ingest_columns`).
    `meta` left empty gives the defaults (`patient_id` `record:<record_id>`, no labels)."""

    record_id: str
    source_path: str
    locator: Any
    meta: dict[str, Any] = field(default_factory=dict)
    identifying: bool = False  # ids from a clinical file (names, MRNs): ingest hashes them unless told not to


@dataclass
class RawRecord:
    """A loaded record: `signal` is (leads, samples) float32 in the file's lead order, with the lead names as the
    file writes them; values are in `units` per lead (None: all mV). Ingest converts units and names.

    `padding` marks the samples equal to the file's declared padding value (None: the file declares none);
    ingest decides which of them are padding (runs at the ends or a gap) and which are real values.
    `notes` are facts for the manifest only (e.g. which waveform groups were ignored), never store columns.
    """

    signal: np.ndarray
    fs: float
    leads: list[str]
    meta: dict[str, Any] = field(default_factory=dict)
    units: list[str] | None = None
    padding: np.ndarray | None = None
    notes: dict[str, Any] = field(default_factory=dict)

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


class Reader:
    """A reader: one file format or folder layout (a plugin kind, `register_readers`).

    The class says what it recognises, without being built: `recognises(path, head)` is True for a file that
    is one of its records (`head`: the file's first 4 KiB, for magic numbers and XML roots) or, for a `layout`
    reader, for a whole source (a folder layout such as PTB-XL, or a file holding many records). It is built as
    `Reader(source, files=...)`, where `files` lists the files of a folder walk it claimed (None: the whole
    source), plus any runtime values its signature names (`fs`, `ptbxl_resolution`, `min_likelihood`).

    An instance lists records cheaply (`discover`) and loads one (`load`, raising BadRecord for bad data), in
    mV or with `units` per lead, lead names as written (ingest maps aliases) and metadata (`patient_id`,
    `labels`, `age`, `sex`, `acquired`, `statements`). `parallel` is "process" when it is cheap to pickle and
    parses files, "thread" when it holds its data in memory. It may offer `probe(ref) -> (fs, samples)`, cheaper
    than `load`, and `load_many(refs)`, a run of records at once (HDF5 slices).

    `clinical` readers read files that hospitals export: their patient and record ids are hashed by ingest
    unless `--keep-patient-ids`, and they must never put names or birth dates in `meta`. `requires` names the
    modules the reader needs and `extra` the pip extra that installs them, so a file of its format without them
    is one line saying what to install.
    """

    kind: ClassVar[str] = ""
    parallel: ClassVar[str] = "process"
    layout: ClassVar[bool] = False
    clinical: ClassVar[bool] = False
    suffixes: ClassVar[tuple[str, ...]] = ()
    priority: ClassVar[int] = 50  # among layout readers, and among file readers claiming one file: lowest first
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""
    library: ClassVar[str] = ""  # the distribution that parses the format, for the manifest's versions

    @classmethod
    def recognises(cls, path: Path, head: bytes) -> bool:
        """Whether `path` is this reader's (see the class docstring); by default, a file with one of `suffixes`."""
        return path.is_file() and path.suffix.lower() in cls.suffixes

    @classmethod
    def mismatch(cls, path: Path) -> str:
        """Why a file with one of this reader's suffixes is not one of its records ("" when there is nothing
        useful to say); the error for a source no reader recognises quotes it."""
        return ""

    def describe(self) -> str:
        raise NotImplementedError

    def discover(self) -> list[RecordRef]:
        raise NotImplementedError

    def load(self, ref: RecordRef) -> RawRecord:
        raise NotImplementedError


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
