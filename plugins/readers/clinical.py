"""Clinical export formats read with ecgdatakit (Apache-2.0; XML through defusedxml): the shared reader.

Each format is a subclass naming its ecgdatakit parser. A file becomes a record of its rhythm (full-length)
leads in mV; median or representative beats are ignored (the manifest counts them). Metadata kept: the patient
id (hashed by ingest unless `--keep-patient-ids`), age, sex, acquisition time, and the interpretation
statements with identifying text removed (`statements.diagnostic_statements`). Names, birth dates and every
other field of the file are never read into the record.
"""

from __future__ import annotations

import importlib
import os
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ecgcl.data.records import NO_WAVEFORM, UNKNOWN_UNIT, UNREADABLE, BadRecord, RawRecord, Reader, RecordRef
from ecgcl.data.folder_walk import walk_files
from ecgcl.data.sources import read_head
from ecgcl.plugins.readers.header_comments import SEXES
from ecgcl.plugins.readers.statements import diagnostic_statements


class ClinicalFileReader(Reader):
    """One record per file of a clinical export format, parsed by the ecgdatakit parser `parser`."""

    parallel = "process"
    clinical = True
    requires: ClassVar[tuple[str, ...]] = ("ecgdatakit",)
    extra = "formats"
    library = "ecgdatakit"
    parser: ClassVar[str] = ""  # "module:Class" under ecgdatakit.parsing.parsers

    def __init__(self, root: str | os.PathLike, files: list[Path] | None = None) -> None:
        self.root = Path(root)
        self.files = list(files) if files is not None else [
            p for p in walk_files(self.root) if self.recognises(p, read_head(p))]  # the folder walk ingest uses

    @classmethod
    def parser_class(cls):
        module, _, name = cls.parser.partition(":")
        return getattr(importlib.import_module(f"ecgdatakit.parsing.parsers.{module}"), name)

    @classmethod
    def recognises(cls, path: Path, head: bytes) -> bool:
        """ecgdatakit's own sniffing when it is installed, else the format's suffix or magic (`sniff`)."""
        if not path.is_file() or path.suffix.lower() not in cls.suffixes:
            return False
        try:
            return bool(cls.parser_class().can_parse(path, head))
        except ImportError:
            return cls.sniff(head)
        except Exception:  # noqa: BLE001  (a sniffer choking on foreign bytes means: not this format)
            return False

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """Without ecgdatakit: whether `head` looks like this format (so the user is told what to install)."""
        return False

    def describe(self) -> str:
        return f"{len(self.files)} {self.kind} file(s) under {self.root}"

    def discover(self) -> list[RecordRef]:
        refs = []
        for file in self.files:
            try:
                rel = file.relative_to(self.root).as_posix()
            except ValueError:
                rel = file.as_posix()
            refs.append(RecordRef(rel.rsplit(".", 1)[0] if file.suffix else rel, rel, str(file), {"labels": ""},
                                  identifying=True))
        return refs

    def parse(self, path: Path):
        """The ecgdatakit record of one file, in mV where the file gives a scale (warnings kept out of the way,
        except a stored checksum that does not match the bytes: ecgdatakit only warns, the file is damaged, a skip)."""
        from ecgdatakit import FileParser
        from ecgdatakit.exceptions import ChecksumWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                record = FileParser.parse(path, units="mV")
            except Exception as error:  # noqa: BLE001  (its message names the file, often a patient id)
                raise BadRecord(UNREADABLE, _without_name(f"{type(error).__name__}: {error}", path)) from None
        damaged = [str(w.message) for w in caught if issubclass(w.category, ChecksumWarning)]
        if damaged:
            raise BadRecord(UNREADABLE, _without_name("checksum mismatch (damaged file): " + "; ".join(damaged), path))
        return record

    def load(self, ref: RecordRef) -> RawRecord:
        record = self.parse(Path(ref.locator))
        return self.to_raw(record)

    def to_raw(self, record: Any, signal: np.ndarray | None = None) -> RawRecord:
        """A RawRecord of an ecgdatakit record's rhythm leads (or of `signal`, the same leads repaired)."""
        leads = [lead for lead in record.leads if len(lead.samples)]
        if not leads:
            raise BadRecord(NO_WAVEFORM, "no rhythm leads with samples"
                            + (" (only median beats)" if record.median_beats else ""))
        rates = {float(lead.sampling_rate) for lead in leads}
        lengths = {len(lead.samples) for lead in leads}
        if len(rates) != 1 or len(lengths) != 1:
            raise BadRecord(NO_WAVEFORM, f"leads differ in rate {sorted(rates)} or length {sorted(lengths)}")
        raw = [lead.label for lead in leads if lead.is_raw]
        if raw:
            raise BadRecord(UNKNOWN_UNIT, f"lead(s) {', '.join(raw)} carry no physical scale")
        if signal is None:
            signal = np.stack([np.asarray(lead.samples, dtype=np.float32) for lead in leads])
        notes = {"ignored_groups": ["median beats"]} if record.median_beats else {}
        return RawRecord(signal.astype(np.float32, copy=False), rates.pop(), [lead.label for lead in leads],
                         clinical_meta(record), [lead.units for lead in leads], notes=notes)


def clinical_meta(record: Any) -> dict[str, Any]:
    """The metadata a store keeps from a clinical file: patient id, age, sex, acquisition time, statements."""
    patient, interpretation = record.patient, record.interpretation
    meta: dict[str, Any] = {"labels": ""}
    if str(patient.patient_id or "").strip():
        meta["patient_id"] = str(patient.patient_id).strip()
    if patient.age is not None and 0 <= patient.age < 130:
        meta["age"] = int(patient.age)
    sex = SEXES.get(str(patient.sex or "").strip().lower())
    if sex:
        meta["sex"] = sex
    if record.recording.date is not None:
        meta["acquired"] = record.recording.date.isoformat(timespec="seconds")
    texts = [" ".join(part for part in statement if part).strip() if isinstance(statement, (tuple, list))
             else str(statement) for statement in interpretation.statements]
    meta["statements"] = ";".join(diagnostic_statements(texts))
    meta["statements_source"] = interpretation.source or ""
    return meta


def _without_name(message: str, path: Path) -> str:
    """`message` with the file's path and name replaced by `<file>` (a file name is often a patient id)."""
    for name in (str(path), path.name):
        message = message.replace(name, "<file>")
    return message
