"""The WFDB reader (Moody & Mark's format, PhysioNet and the CinC challenges): folders (RECORDS honoured),
headers, record stems, `.mat`/`.dat` records and record lists, read through `ecgcl.plugins.readers.wfdb_files`."""

from __future__ import annotations

import os
from pathlib import Path

from ecgcl.data.records import RawRecord, Reader, RecordRef
from ecgcl.errors import EcgclError
from ecgcl.plugins.readers.wfdb_discovery import (LIST_SUFFIXES, RECORDS_FILE, SIGNAL_SUFFIXES, is_record_list,
                                                  record_id, record_stem, stems_of, wfdb_records)
from ecgcl.plugins.readers.wfdb_files import header_shape, read_wfdb


class WfdbReader(Reader):
    """WFDB records (PhysioNet, CinC challenges): headers, stems, `.mat`/`.dat` records, RECORDS and list files.

    Built on a whole folder (its RECORDS files honoured, else every header), or on the files a folder walk
    gave it; ids are paths relative to the source's folder, without extension.
    """

    kind = "wfdb"
    parallel = "process"
    suffixes = (".hea", ".mat", ".dat", *LIST_SUFFIXES, "")
    priority = 10
    library = "wfdb"

    def __init__(self, root: str | os.PathLike, files: list[Path] | None = None) -> None:
        self.root = Path(root)
        self.files = files
        if not self.root.exists() and record_stem(self.root) is None:
            raise EcgclError(f"source {self.root} does not exist")

    @classmethod
    def recognises(cls, path: Path, head: bytes) -> bool:
        """A header, a signal file or stem with its header beside it, a RECORDS file, or a list of records."""
        return path.suffix == ".hea" or record_stem(path) is not None or path.name == RECORDS_FILE or (
            is_record_list(path) and path.suffix.lower() in LIST_SUFFIXES and _lists_records(path))

    @classmethod
    def mismatch(cls, path: Path) -> str:
        if path.suffix.lower() in SIGNAL_SUFFIXES:
            return (f"no WFDB header {path.with_suffix('.hea').name} beside it; .mat/.dat signals are read through "
                    "their header")
        return ""

    def describe(self) -> str:
        return f"WFDB records under {self.root}"

    def __getstate__(self) -> dict:
        """What goes to ingest's worker processes (once each, when they start): the reader without the folder
        walk's file list, which only `discover` reads (in the ingest process). When the reader still went with
        every chunk, its list made an ingest O(records^2): 3.2 ms a record at 10k records, 6.3 ms at 40k."""
        state = self.__dict__.copy()
        if state.get("files") is not None:
            state["files"], state["files_left_behind"] = None, True
        return state

    def discover(self) -> list[RecordRef]:
        if getattr(self, "files_left_behind", False):
            raise RuntimeError("this WfdbReader was sent without its file list; call discover on the original")
        base, stems = wfdb_records(self.root) if self.files is None else (self.root, stems_of(self.files))
        refs = []
        for stem in stems:
            rel = record_id(stem, base)
            refs.append(RecordRef(rel, rel, str(stem)))  # no meta: ingest's defaults, without a dict per record
        return refs

    def probe(self, ref: RecordRef) -> tuple[float, int] | None:
        return header_shape(ref.locator)

    def load(self, ref: RecordRef) -> RawRecord:
        return read_wfdb(ref.locator)


def _lists_records(path: Path) -> bool:
    """A text file whose first entry names a WFDB record or a folder (a list file, not free text)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                entry = line.strip()
                if entry and not entry.startswith("#"):
                    target = Path(entry) if Path(entry).is_absolute() else path.parent / entry
                    return entry.endswith("/") or target.is_dir() or record_stem(target) is not None or \
                        target.suffix.lower() in SIGNAL_SUFFIXES
    except OSError:
        return False
    return False
