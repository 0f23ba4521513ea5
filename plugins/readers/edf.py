"""EDF and EDF+ (Kemp et al., Electroencephalogr. Clin. Neurophysiol. 1992; Kemp & Olivan, Clin.
Neurophysiol. 2003) recordings with ECG channels, parsed by ecgdatakit (`ecgcl.plugins.readers.clinical`)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from ecgcl.data.records import RawRecord, RecordRef
from ecgcl.plugins.readers.clinical import ClinicalFileReader


class EdfReader(ClinicalFileReader):
    """EDF and EDF+ recordings whose signals are ECG leads.

    A plain EDF (not EDF+) has a free-text patient field, which ecgdatakit hands over whole as the patient id;
    writers put the name and birth date there, often as EDF+ subfields (`MRN4242 F 17-MAR-1945 DOE_JANE`).
    So the id is the first subfield when the field has that layout (with the sex, and the age at recording),
    a lone token with a digit and no date otherwise, and none when the field is any other text.
    """

    kind = "edf"
    suffixes = (".edf",)
    parser = "edf:EDFParser"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return head[:8] == b"0       "

    def load(self, ref: RecordRef) -> RawRecord:
        record = self.parse(Path(ref.locator))
        raw = self.to_raw(record)
        if record.source_format == "edf":
            raw.meta.pop("patient_id", None)
            raw.meta.update(plain_edf_patient(str(record.patient.patient_id or ""), record.recording.date))
        return raw


_EDFPLUS_PATIENT = re.compile(r"^(\S+) ([MFX]) (\d{1,2}-[A-Za-z]{3}-\d{4}|X) \S+", re.IGNORECASE)
_DATE = re.compile(r"\d{1,4}[-/.]([A-Za-z]{3}|\d{1,2})[-/.]\d{2,4}")


def plain_edf_patient(field: str, recorded: datetime | None) -> dict[str, Any]:
    """The patient id (and sex and age where stated) of a plain EDF's free-text patient field: never a name
    or a birth date (see `EdfReader`)."""
    field = " ".join(field.split())
    match = _EDFPLUS_PATIENT.match(field)
    if match is None:
        lone = field if field and " " not in field and any(c.isdigit() for c in field) else ""
        return {"patient_id": lone} if lone and not _DATE.search(lone) else {}
    code, sex, birth = match.groups()
    meta: dict[str, Any] = {"patient_id": code.replace("_", " ")} if code.upper() != "X" else {}
    if sex.upper() in "MF":
        meta["sex"] = sex.upper()
    try:
        born = datetime.strptime(birth.title(), "%d-%b-%Y")
    except ValueError:
        born = None
    if born is not None and recorded is not None:
        age = recorded.year - born.year - ((recorded.month, recorded.day) < (born.month, born.day))
        if 0 <= age < 130:
            meta["age"] = age
    return meta
