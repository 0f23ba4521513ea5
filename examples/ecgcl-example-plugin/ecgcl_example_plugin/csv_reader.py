"""A reader for one CSV file per record, one column per lead: what many carts' "export to spreadsheet" writes.

The header row names the leads (any spelling ecgcl knows: `I`, `Lead II`, `V1` ...; ecgcl maps the aliases);
values are in microvolts unless the header names a unit in brackets (`I [mV]`). The sampling rate is the
first line `# fs=500` when present, else the reader's `fs` option of the ingest (`ecgcl ingest --fs`, which a
user gives anyway for such files). A file whose header names fewer than two leads is not this format, so
other CSV files in a folder (a labels table) are left alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ecgcl.data.leads import STANDARD_LEADS, normalise_lead_name
from ecgcl.data.records import CORRUPT_HEADER, BadRecord, RawRecord, Reader, RecordRef

_RATE = re.compile(r"^#\s*fs\s*=\s*([0-9.]+)")
_UNIT = re.compile(r"\[(\w+)\]\s*$")


def _columns(head: str) -> list[str]:
    lines = [line for line in head.splitlines() if line.strip() and not line.startswith("#")]
    return [c.strip() for c in lines[0].split(",")] if lines else []


class CsvLeadsReader(Reader):
    """One CSV per record with one column per lead (header row of lead names)."""

    kind = "csv_leads"
    suffixes = (".csv",)
    parallel = "process"

    def __init__(self, root: str | os.PathLike, files: list[Path] | None = None, fs: float | None = None) -> None:
        self.root, self.fs = Path(root), fs
        self.files = files if files is not None else sorted(self.root.glob("*.csv"))

    @classmethod
    def recognises(cls, path: Path, head: bytes) -> bool:
        names = [_UNIT.sub("", c).strip() for c in _columns(head.decode("utf-8", errors="ignore"))]
        return path.suffix.lower() == ".csv" and sum(normalise_lead_name(n) in STANDARD_LEADS for n in names) >= 2

    def describe(self) -> str:
        return f"{len(self.files)} lead CSV file(s) under {self.root}"

    def discover(self) -> list[RecordRef]:
        return [RecordRef(f.relative_to(self.root).with_suffix("").as_posix(), f.name, str(f), {"labels": ""})
                for f in self.files]

    def load(self, ref: RecordRef) -> RawRecord:
        text = Path(ref.locator).read_text(encoding="utf-8")
        rate = _RATE.match(text)
        fs = float(rate.group(1)) if rate else self.fs
        if fs is None:
            raise BadRecord(CORRUPT_HEADER, "no '# fs=...' line and no --fs given")
        columns = _columns(text)
        units = [(_UNIT.search(c).group(1) if _UNIT.search(c) else "uV") for c in columns]
        values = np.loadtxt(text.splitlines(), delimiter=",", comments="#", skiprows=1 + bool(rate), ndmin=2)
        names = [_UNIT.sub("", c).strip() for c in columns]
        return RawRecord(values.T.astype(np.float32), fs, names, units=units)
