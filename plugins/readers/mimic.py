"""MIMIC-IV-ECG (Gow et al., PhysioNet 2023): ~800,000 10 s 12-lead WFDB records of ~160,000 patients.

Layout: `files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN.hea` (subject folder `p` + subject_id, study folder `s` +
study_id) with `record_list.csv` (`subject_id`, `study_id`, `file_name`, `ecg_time`, `path`) at the top. The
records are found like any WFDB tree (RECORDS honoured, folders walked in parallel); each record's patient is
its `subject_id` from `record_list.csv`, or, for records the list lacks, from the `pNNNNNNNN` folder above it,
so splits keep all ECGs of a patient together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from ecgcl.data.records import RecordRef
from ecgcl.plugins.readers.wfdb import WfdbReader
from ecgcl.errors import EcgclError

RECORD_LIST = "record_list.csv"
_SUBJECT_FOLDER = re.compile(r"(?:^|/)p(\d+)/s(\d+)/[^/]+$")


def is_mimic_ecg(root: Path) -> bool:
    return root.is_dir() and (root / RECORD_LIST).is_file() and (root / "files").is_dir()


def load_record_list(path: Path) -> dict[str, dict[str, Any]]:
    """Record path (relative, no extension) -> subject_id, study_id and ecg_time from `record_list.csv`."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise EcgclError(f"{path} is unreadable as a MIMIC-IV-ECG record list: {error}") from None
    missing = [c for c in ("subject_id", "path") if c not in table.columns]
    if missing:
        raise EcgclError(f"{path}: no column(s) {', '.join(missing)}; MIMIC-IV-ECG's record_list.csv has "
                         "subject_id, study_id, file_name, ecg_time, path")
    extra = [c for c in ("study_id", "ecg_time") if c in table.columns]
    keys = table["path"].str.strip().str.removesuffix(".hea").str.strip("/")
    return {key: {"patient_id": subject, **{c: table[c].iat[i] for c in extra}}
            for i, (key, subject) in enumerate(zip(keys, table["subject_id"].str.strip()))}


def subject_meta(record_id: str, known: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A record's patient (subject_id), study and time: from the record list, else from its folder names."""
    if record_id in known:
        return {"labels": "", "study_id": "", "ecg_time": "", **known[record_id]}
    folders = _SUBJECT_FOLDER.search(record_id)
    patient = folders.group(1) if folders else f"record:{record_id}"
    return {"patient_id": patient, "labels": "", "study_id": folders.group(2) if folders else "", "ecg_time": ""}


class MimicEcgReader(WfdbReader):
    """The MIMIC-IV-ECG tree with `record_list.csv`: WFDB records with their patients (the list is read in
    `discover` only, so the reader stays small when it is sent to worker processes)."""

    kind = "mimic_iv_ecg"
    layout = True
    priority = 20

    @classmethod
    def recognises(cls, path: Path, head: bytes) -> bool:
        return is_mimic_ecg(path)

    def describe(self) -> str:
        return f"MIMIC-IV-ECG records under {self.root}"

    def discover(self) -> list[RecordRef]:
        known = load_record_list(self.root / RECORD_LIST)
        refs = super().discover()
        for ref in refs:
            ref.meta = subject_meta(ref.record_id, known)
        return refs
