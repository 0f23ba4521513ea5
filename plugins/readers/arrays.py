"""Records held as arrays: numpy `.npy`/`.npz` with a sidecar CSV (and the table-to-records rule the parquet
reader shares).

numpy: `signals` shaped (records, leads, samples) in mV, in `X.npy` or as the `signals` entry of `X.npz`
(which may also hold `leads` and `fs`). The sidecar `X.csv` (or `metadata.csv` beside it) has one row per record
with optional `record_id`, `patient_id`, `labels` (';'-joined) and `fs` columns, plus any extra columns. Without
a `leads` entry a 12-lead array is taken to be in the standard order I, II, III, aVR, aVL, aVF, V1-V6.

parquet: one row per record; every column named like a lead (`I`, `avr`, `V1` ...) holds that lead's samples
as a list; `record_id`, `patient_id`, `labels` (string or list) and `fs` are optional metadata columns and any
other scalar column is kept as metadata. `fs` is required (a column, or the npz entry) because arrays carry no rate.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcl.data.leads import STANDARD_LEADS
from ecgcl.data.records import RawRecord, Reader, RecordRef
from ecgcl.errors import EcgclError

ARRAY_SUFFIXES = (".npy", ".npz")


def _labels_text(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ";".join(str(v) for v in value)
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def refs_from_table(table: pd.DataFrame, source_name: str, fs: float | None) -> tuple[list[RecordRef], np.ndarray]:
    """RecordRefs (locator = row number) and the per-record sampling rate from a metadata table."""
    n = len(table)
    for column in ("record_id", "patient_id", "fs"):
        if column in table.columns:
            listed = table[column].map(lambda v: isinstance(v, (list, tuple, dict, np.ndarray)))
            if listed.any():
                raise EcgclError(f"{source_name}: column {column} holds a list in row {int(listed.to_numpy().argmax())}; "
                                 "expected one value per record")
    if "fs" in table.columns:
        rates = pd.to_numeric(table["fs"], errors="coerce").to_numpy(dtype=float)
    elif fs is not None:
        rates = np.full(n, float(fs))
    else:
        raise EcgclError(f"{source_name}: no sampling rate; add an `fs` column (or an `fs` entry to the .npz)")
    if not (np.isfinite(rates) & (rates > 0)).all():
        raise EcgclError(f"{source_name}: the sampling rate `fs` has missing, non-numeric or non-positive values")
    ids = table["record_id"].astype(str).tolist() if "record_id" in table.columns else [str(i) for i in range(n)]
    if len(set(ids)) != len(ids):
        raise EcgclError(f"{source_name}: record_id values are not unique")
    extra_columns = [c for c in table.columns if c not in ("record_id", "patient_id", "labels", "fs")]
    refs = []
    for row, record_id in enumerate(ids):
        meta: dict[str, Any] = {c: table[c].iat[row] for c in extra_columns}
        patient = table["patient_id"].iat[row] if "patient_id" in table.columns else None
        meta["patient_id"] = str(patient) if patient is not None and not pd.isna(patient) else f"record:{record_id}"
        meta["labels"] = _labels_text(table["labels"].iat[row]) if "labels" in table.columns else ""
        refs.append(RecordRef(record_id, f"{source_name}#{row}", row, meta))
    return refs, rates


def _scalar_rate(value: np.ndarray, path: Path) -> float:
    """The `fs` entry of an .npz: one number (an array of rates is a mistake, not a per-record rate)."""
    if np.ndim(value) != 0 and np.size(value) != 1:
        raise EcgclError(f"{path}: the `fs` entry must be one number, got an array of shape {np.shape(value)} "
                         "(give per-record rates as an `fs` column of the sidecar CSV)")
    try:
        return float(np.ravel(value)[0])
    except (TypeError, ValueError):
        raise EcgclError(f"{path}: the `fs` entry {value!r} is not a number") from None


def _read_sidecar(path: Path) -> pd.DataFrame:
    """The metadata CSV beside an array file; one line naming the file when it is not a readable CSV."""
    try:
        return pd.read_csv(path)
    except Exception as error:  # noqa: BLE001  (empty, binary or malformed files raise several types)
        raise EcgclError(f"{path} is not a readable metadata CSV: {type(error).__name__}: {error}") from None


class NumpyReader(Reader):
    """A (records, leads, samples) array from `.npy` (memory-mapped) or `.npz`, with its sidecar metadata CSV."""

    kind = "numpy"
    parallel = "thread"
    layout = True
    priority = 30
    suffixes = ARRAY_SUFFIXES
    library = "numpy"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        fs = None
        leads: list[str] | None = None
        try:
            if self.path.suffix == ".npy":
                self.signals = np.load(self.path, mmap_mode="r")
            else:
                with np.load(self.path, allow_pickle=False) as bundle:
                    if "signals" not in bundle:
                        raise EcgclError(f"{self.path} has no `signals` entry (found: {', '.join(bundle.files)})")
                    self.signals = bundle["signals"]
                    fs = _scalar_rate(bundle["fs"], self.path) if "fs" in bundle else None
                    leads = [str(n) for n in np.ravel(bundle["leads"])] if "leads" in bundle else None
        except EcgclError:
            raise
        except Exception as error:  # noqa: BLE001  (numpy/zipfile raise many types for a damaged file)
            raise EcgclError(f"{self.path} is not a readable numpy array file: {type(error).__name__}: {error}") from None
        if self.signals.ndim != 3:
            raise EcgclError(f"{self.path}: signals must be (records, leads, samples), got shape {self.signals.shape}")
        if not (np.issubdtype(self.signals.dtype, np.floating) or np.issubdtype(self.signals.dtype, np.integer)):
            raise EcgclError(f"{self.path}: signals must be numbers, not {self.signals.dtype}")
        if leads is None:
            if self.signals.shape[1] != len(STANDARD_LEADS):
                raise EcgclError(f"{self.path}: {self.signals.shape[1]} leads but no lead names; save an .npz with a "
                                 "`leads` entry")
            leads = list(STANDARD_LEADS)
        if len(leads) != self.signals.shape[1]:
            raise EcgclError(f"{self.path}: {len(leads)} lead names for {self.signals.shape[1]} leads")
        self.leads = [str(n) for n in leads]  # names as written; ingest maps aliases
        sidecar = next((p for p in (self.path.with_suffix(".csv"), self.path.parent / "metadata.csv") if p.is_file()),
                       None)
        table = _read_sidecar(sidecar) if sidecar else pd.DataFrame(index=range(self.signals.shape[0]))
        if len(table) != self.signals.shape[0]:
            raise EcgclError(f"{sidecar}: {len(table)} rows but {self.signals.shape[0]} records in {self.path.name}")
        self.refs, self.rates = refs_from_table(table, self.path.name, fs)

    def describe(self) -> str:
        return f"numpy array {self.path}"

    def discover(self) -> list[RecordRef]:
        return self.refs

    def load(self, ref: RecordRef) -> RawRecord:
        row = int(ref.locator)
        return RawRecord(np.asarray(self.signals[row], dtype=np.float32), float(self.rates[row]), self.leads)
