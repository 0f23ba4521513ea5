"""PTB-XL (Wagner et al., Scientific Data 2020, PhysioNet): labels, patients and folds from its database.

Label rule (the one of the official `example_physionet.py` and the PTB-XL benchmark of Strodthoff et al., 2021):
a record's labels are the `diagnostic_class` of every statement in its `scp_codes` that `scp_statements.csv`
marks as diagnostic, whatever its likelihood (`min_likelihood=0`); pass a higher `min_likelihood` (e.g. 100) to
keep only statements the cardiologist was sure of. Form and rhythm statements have no superclass and are ignored.

Records that exist on disk but have no database row (the shared subset has many) are kept, unlabelled, for
pretraining. Their patient is unknown, so each gets its own patient id `record:<ecg_id>`; a split by patient can
therefore not guarantee that such a record's real patient is absent from validation or test sets.
"""

from __future__ import annotations

import ast
import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from ecgcl.data.records import RawRecord, Reader, RecordRef
from ecgcl.errors import EcgclError
from ecgcl.plugins.readers.wfdb_files import find_headers, header_shape, read_wfdb
from ecgcl.errors import EcgclError

SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")  # PTB-XL's diagnostic superclasses, in the standard order
DATABASE_FILE = "ptbxl_database.csv"
STATEMENTS_FILE = "scp_statements.csv"
RESOLUTIONS = {"lr": ("records100", 100.0), "hr": ("records500", 500.0)}


def is_ptbxl(root: Path) -> bool:
    return root.is_dir() and (root / DATABASE_FILE).is_file()


def load_statements(root: Path) -> dict[str, str]:
    """Diagnostic SCP statement -> diagnostic superclass."""
    try:
        statements = pd.read_csv(root / STATEMENTS_FILE, index_col=0)
        diagnostic = statements[statements["diagnostic"] == 1]
        return {str(code): str(cls) for code, cls in diagnostic["diagnostic_class"].items() if isinstance(cls, str)}
    except (OSError, KeyError, ValueError, pd.errors.ParserError) as error:
        raise EcgclError(f"{root / STATEMENTS_FILE} is missing or unreadable ({error}); PTB-XL needs it for labels") from None


def superclasses(scp_codes: dict[str, float], statements: dict[str, str], min_likelihood: float = 0.0) -> list[str]:
    """The diagnostic superclasses of one record, in the standard order NORM, MI, STTC, CD, HYP."""
    found = {statements[code] for code, likelihood in scp_codes.items()
             if code in statements and float(likelihood) >= min_likelihood}
    return [c for c in SUPERCLASSES if c in found]


def parse_scp_codes(text: Any, *, where: str) -> dict[str, float]:
    """One `scp_codes` cell (`{'NORM': 100.0, 'SR': 0.0}`) as {statement: likelihood}; EcgclError naming `where`."""
    try:
        codes = ast.literal_eval(text) if isinstance(text, str) else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        codes = None
    if not isinstance(codes, dict):
        raise EcgclError(f"{where}: scp_codes {str(text)[:60]!r} is not a {{statement: likelihood}} dictionary")
    parsed = {}
    for code, likelihood in codes.items():
        try:
            parsed[str(code)] = float(likelihood)
        except (TypeError, ValueError):
            raise EcgclError(f"{where}: likelihood {likelihood!r} of statement {code!r} is not a number") from None
        if not math.isfinite(parsed[str(code)]):
            raise EcgclError(f"{where}: likelihood of statement {code!r} is not a finite number")
    return parsed


def _integers(db: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """A whole-number column (missing allowed) as Int64, or EcgclError naming the first bad row."""
    values = pd.to_numeric(db[column], errors="coerce")
    bad = (values.isna() & db[column].notna()) | (values.notna() & (values % 1 != 0))
    if bad.any():
        row = bad.idxmax()
        raise EcgclError(f"{path}: {column} {db[column][row]!r} of ecg_id {row} is not a whole number")
    return values.astype("Int64")


def load_database(root: Path, min_likelihood: float = 0.0) -> pd.DataFrame:
    """One row per labelled record, indexed by ecg_id: patient_id, labels, scp_codes (JSON), strat_fold, age, sex.

    A table that breaks PTB-XL's format (a non-numeric ecg_id, patient_id or strat_fold, a duplicate ecg_id,
    a malformed scp_codes cell) is a whole-input error naming the file and the row.
    """
    path = root / DATABASE_FILE
    try:
        db = pd.read_csv(path, dtype=str, keep_default_na=True)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise EcgclError(f"{path} is unreadable as a PTB-XL database: {error}") from None
    missing = [c for c in ("ecg_id", "patient_id", "scp_codes") if c not in db.columns]
    if missing:
        raise EcgclError(f"{path} is not a PTB-XL database: no column(s) {', '.join(missing)}")
    db.index = _integers(db, "ecg_id", path)
    if db.index.isna().any():
        raise EcgclError(f"{path}: a row has no ecg_id")
    duplicated = db.index[db.index.duplicated()]
    if len(duplicated):
        raise EcgclError(f"{path}: ecg_id {duplicated[0]} appears more than once")
    patients = _integers(db.set_index(db.index), "patient_id", path)
    codes = [parse_scp_codes(text, where=f"{path}, ecg_id {i}") for i, text in zip(db.index, db["scp_codes"])]
    statements = load_statements(root)
    table = pd.DataFrame(index=db.index.astype(int))
    table["patient_id"] = [str(p) if pd.notna(p) else f"record:{i}" for i, p in zip(db.index, patients)]
    table["labels"] = [";".join(superclasses(c, statements, min_likelihood)) for c in codes]
    table["scp_codes"] = [json.dumps(c, sort_keys=True) for c in codes]
    table["strat_fold"] = _integers(db, "strat_fold", path).values if "strat_fold" in db else pd.NA
    table["age"] = pd.to_numeric(db["age"], errors="coerce").values if "age" in db else pd.NA
    table["sex"] = pd.to_numeric(db["sex"], errors="coerce").map({0: "M", 1: "F"}).values if "sex" in db else pd.NA
    return table


def ecg_id_of(path: Path) -> int | None:
    """`00001_lr` -> 1; None for a file that does not follow the PTB-XL naming."""
    head = path.stem.split("_")[0]
    return int(head) if head.isdigit() else None


class PtbxlReader(Reader):
    """PTB-XL in its official layout: `records100` (lr) or `records500` (hr) plus the database CSVs.

    `ptbxl_resolution` None takes records500 when the ingest's `fs` is above 100 Hz, else records100.
    """

    kind = "ptbxl"
    parallel = "process"
    layout = True
    priority = 10
    library = "wfdb"

    @classmethod
    def recognises(cls, path: Path, head: bytes) -> bool:
        return is_ptbxl(path)

    def __init__(self, root: str | os.PathLike, fs: float | None = None, ptbxl_resolution: str | None = None,
                 min_likelihood: float = 0.0) -> None:
        resolution = ptbxl_resolution or ("hr" if fs is not None and fs > 100 else "lr")
        self.root = Path(root)
        if resolution not in RESOLUTIONS:
            raise EcgclError(f"PTB-XL resolution {resolution!r} unknown; choose lr (100 Hz) or hr (500 Hz)")
        self.resolution = resolution
        self.min_likelihood = min_likelihood
        self.folder = self.root / RESOLUTIONS[resolution][0]
        if not self.folder.is_dir():
            raise EcgclError(f"PTB-XL folder {self.folder} is missing (resolution {resolution})")

    def describe(self) -> str:
        return f"PTB-XL at {self.root} ({RESOLUTIONS[self.resolution][0]})"

    def discover(self) -> list[RecordRef]:
        table = load_database(self.root, self.min_likelihood)
        known = table.to_dict("index")
        refs = []
        for header in find_headers(self.folder):
            stem = header.with_suffix("")
            ecg_id = ecg_id_of(stem)
            rel = stem.relative_to(self.root).as_posix()
            record_id = str(ecg_id) if ecg_id is not None else rel
            meta: dict[str, Any] = {"patient_id": f"record:{record_id}", "labels": "", "scp_codes": "",
                                    "strat_fold": pd.NA, "age": pd.NA, "sex": pd.NA}
            if ecg_id in known:
                meta.update(known[ecg_id])
            refs.append(RecordRef(record_id, rel, str(stem), meta))
        refs.sort(key=lambda r: (0, int(r.record_id)) if r.record_id.isdigit() else (1, r.record_id))
        return refs

    def probe(self, ref: RecordRef) -> tuple[float, int] | None:
        return header_shape(ref.locator)

    def load(self, ref: RecordRef) -> RawRecord:
        return read_wfdb(ref.locator)
