"""CODE-15% (Ribeiro et al., Nature Communications 2020; Zenodo 4916206): 345,779 12-lead ECGs in HDF5 parts.

Layout: `exams_partN.hdf5`, each with `tracings` (exams, 4096, 12) float32 at 400 Hz in the lead order
DI, DII, DIII, AVR, AVL, AVF, V1-V6, and `exam_id` (exams,); `exams.csv` beside them gives per exam_id the
`patient_id`, `age`, `is_male` and the six label columns 1dAVb, RBBB, LBBB, SB, ST, AF (plus `normal_ecg`).
Each tracing is a 7 s (2800) or 10 s (4000 samples) ECG centred in the 4096-sample array with zeros on both
sides; the padding is trimmed (the shorter of the two zero runs, so a signal that ends on a true zero keeps it).
Values are taken as mV (what the CinC 2024 conversion scripts write); the amplitude check flags parts that
are not. Parts are read in slices of consecutive exams (a chunk at a time), so memory stays bounded whatever
the part size; every worker process opens the files itself (h5py handles do not cross processes).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcl.data.records import CORRUPT_HEADER, BadRecord, RawRecord, Reader, RecordRef
from ecgcl.errors import EcgclError

HDF5_SUFFIXES = ("hdf5", "h5")
FS = 400.0
LEADS = ("DI", "DII", "DIII", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")
LABEL_COLUMNS = ("1dAVb", "RBBB", "LBBB", "SB", "ST", "AF")
EXAMS_FILE = "exams.csv"


def _h5py():
    try:
        import h5py
    except ImportError:
        raise EcgclError("reading CODE-15 HDF5 files needs h5py: pip install 'ecgcl[hdf5]'") from None
    return h5py


def part_files(path: Path) -> list[Path]:
    """The HDF5 files of a CODE-15 source: the file itself, or a folder's `exams_part*` files (any `.hdf5`/`.h5`
    when the folder has `exams.csv`), sorted; empty for anything else, so WFDB folders are never taken for one."""
    def is_hdf5(p: Path) -> bool:
        return p.is_file() and p.suffix.lower().lstrip(".") in HDF5_SUFFIXES

    if path.is_file():
        return [path] if is_hdf5(path) else []
    if not path.is_dir():
        return []
    files = sorted(p for p in path.iterdir() if is_hdf5(p))
    parts = [p for p in files if p.name.startswith("exams_part")]
    return parts or (files if (path / EXAMS_FILE).is_file() else [])


def is_code15(path: Path) -> bool:
    return bool(part_files(path))


def load_exams(path: Path) -> dict[int, dict[str, Any]]:
    """exam_id -> patient_id, labels (';'-joined true label columns), the label columns as 0/1, age, sex."""
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise EcgclError(f"{path} is unreadable as CODE-15's exams.csv: {error}") from None
    if "exam_id" not in table.columns:
        raise EcgclError(f"{path}: no exam_id column; CODE-15's exams.csv has exam_id, patient_id and label columns")
    labels = [c for c in LABEL_COLUMNS if c in table.columns]
    flags = {c: table[c].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0")).to_numpy() for c in labels}
    patients = table["patient_id"] if "patient_id" in table.columns else pd.Series([None] * len(table))
    exams: dict[int, dict[str, Any]] = {}
    for row, exam in enumerate(pd.to_numeric(table["exam_id"], errors="coerce")):
        if pd.isna(exam):
            continue
        patient = patients.iat[row]
        meta: dict[str, Any] = {"patient_id": str(int(patient)) if pd.notna(patient) else None,
                                "labels": ";".join(c for c in labels if flags[c][row])}
        meta.update({c: int(flags[c][row]) for c in labels})
        if "normal_ecg" in table.columns:
            meta["normal_ecg"] = int(str(table["normal_ecg"].iat[row]).strip().lower() in ("true", "1", "1.0"))
        if "age" in table.columns:
            meta["age"] = table["age"].iat[row]
        if "is_male" in table.columns:
            meta["sex"] = "M" if str(table["is_male"].iat[row]).strip().lower() in ("true", "1", "1.0") else "F"
        exams[int(exam)] = meta
    return exams


def trim_padding(tracings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first, stop) sample of each (samples, leads) tracing of a (records, samples, leads) block without the
    symmetric zero padding; an all-zero tracing keeps everything (ingest then skips it as flat)."""
    nonzero = (tracings != 0).any(axis=2)                            # (records, samples)
    total = tracings.shape[1]
    lead_in = nonzero.argmax(axis=1)
    lead_out = nonzero[:, ::-1].argmax(axis=1)
    pad = np.minimum(lead_in, lead_out)
    pad[~nonzero.any(axis=1)] = 0
    return pad, total - pad


class Code15Reader(Reader):
    """CODE-15 HDF5 parts (one file or a folder of them) with `exams.csv` for patients and labels."""

    kind = "code15"
    parallel = "process"
    layout = True
    priority = 20
    requires = ("h5py",)
    extra = "hdf5"
    library = "h5py"

    @classmethod
    def recognises(cls, path: Path, head: bytes) -> bool:
        return is_code15(path)

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.files = part_files(self.path)
        if not self.files:
            raise EcgclError(f"{self.path}: no .hdf5/.h5 file")
        folder = self.path if self.path.is_dir() else self.path.parent
        self.exams_file = folder / EXAMS_FILE
        self._open: dict[int, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_open": {}}  # each process opens its own handles

    def describe(self) -> str:
        return f"CODE-15 HDF5 {self.path} ({len(self.files)} file(s))"

    def _dataset(self, file_index: int):
        if file_index not in self._open:
            self._open[file_index] = _h5py().File(self.files[file_index], "r")
        return self._open[file_index]["tracings"]

    def discover(self) -> list[RecordRef]:
        h5py = _h5py()
        exams = load_exams(self.exams_file) if self.exams_file.is_file() else {}
        refs = []
        for index, file in enumerate(self.files):
            try:
                with h5py.File(file, "r") as handle:
                    tracings = handle["tracings"]
                    if tracings.ndim != 3 or tracings.shape[2] != len(LEADS):
                        raise EcgclError(f"{file}: tracings has shape {tracings.shape}; CODE-15 has (exams, 4096, 12)")
                    ids = handle["exam_id"][:] if "exam_id" in handle else np.arange(tracings.shape[0])
                    if len(ids) != tracings.shape[0]:
                        raise EcgclError(f"{file}: {len(ids)} exam_id values for {tracings.shape[0]} tracings")
            except (OSError, KeyError) as error:
                raise EcgclError(f"{file} is not a CODE-15 HDF5 part (datasets tracings, exam_id): {error}") from None
            for row, exam in enumerate(np.asarray(ids).astype(np.int64).tolist()):
                meta = {"patient_id": f"record:{exam}", "labels": "", **exams.get(exam, {})}
                meta["patient_id"] = meta["patient_id"] or f"record:{exam}"
                meta["exam_id"] = exam
                refs.append(RecordRef(str(exam), f"{file.name}#{row}", (index, row), meta))
        return refs

    def load_many(self, refs: Sequence[RecordRef]) -> list[RawRecord | BadRecord]:
        """Records of a run of refs, read as one slice per file (rows in increasing order)."""
        out: list[RawRecord | BadRecord] = [BadRecord(CORRUPT_HEADER, "not read")] * len(refs)
        by_file: dict[int, list[int]] = {}
        for i, ref in enumerate(refs):
            by_file.setdefault(ref.locator[0], []).append(i)
        for file_index, members in by_file.items():
            rows = np.array([refs[i].locator[1] for i in members])
            low, high = int(rows.min()), int(rows.max()) + 1
            try:
                dataset = self._dataset(file_index)
                if high - low <= 2 * len(rows):  # a run of consecutive exams: one contiguous slice
                    block = np.asarray(dataset[low:high], dtype=np.float32)[rows - low]
                else:  # scattered exams (probing): read only those rows
                    unique, back = np.unique(rows, return_inverse=True)
                    block = np.asarray(dataset[unique.tolist()], dtype=np.float32)[back]
            except OSError as error:
                for i in members:
                    out[i] = BadRecord(CORRUPT_HEADER, f"{self.files[file_index].name}: {error}")
                continue
            first, stop = trim_padding(block)
            for i, tracing, a, b in zip(members, block, first, stop):
                out[i] = RawRecord(tracing[a:b].T, FS, list(LEADS))  # a view: ingest copies the leads it keeps
        return out

    def load(self, ref: RecordRef) -> RawRecord:
        record = self.load_many([ref])[0]
        if isinstance(record, BadRecord):
            raise record
        return record
