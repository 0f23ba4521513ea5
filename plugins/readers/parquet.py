"""Parquet tables with one list column per lead (`ecgcl.plugins.readers.arrays` explains the layout)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ecgcl.data.records import TRUNCATED_SIGNAL, BadRecord, RawRecord, Reader, RecordRef
from ecgcl.errors import EcgclError
from ecgcl.plugins.readers.arrays import refs_from_table

PARQUET_SUFFIXES = (".parquet", ".pq")


class ParquetReader(Reader):
    """A parquet table with one list column per lead; lead arrays are decoded once, then sliced per record."""

    kind = "parquet"
    parallel = "thread"
    layout = True
    priority = 30
    suffixes = PARQUET_SUFFIXES
    requires = ("pyarrow",)
    extra = "parquet"
    library = "pyarrow"

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            import pyarrow.parquet as pq
            import pyarrow.types as pat
        except ImportError:
            raise EcgclError("reading parquet needs pyarrow: pip install 'ecgcl[parquet]'") from None
        self.path = Path(path)
        try:
            table = pq.read_table(self.path)
        except Exception as error:  # noqa: BLE001  (pyarrow raises its own error types for bad files)
            raise EcgclError(f"{self.path} is not a readable parquet file: {error}") from None
        def numeric_list(name: str) -> bool:
            kind = table.schema.field(name).type
            return ((pat.is_list(kind) or pat.is_large_list(kind)) and name not in ("labels", "record_id", "patient_id")
                    and (pat.is_floating(kind.value_type) or pat.is_integer(kind.value_type)))

        lead_columns = [c for c in table.column_names if numeric_list(c)]
        if not lead_columns:
            raise EcgclError(f"{self.path}: no numeric list columns; expected one list column per lead (I, II, ..., V6)")
        self.leads = list(lead_columns)
        self.values: list[np.ndarray] = []
        self.offsets: list[np.ndarray] = []
        for column in lead_columns:
            array = table.column(column).combine_chunks()
            self.values.append(array.values.to_numpy(zero_copy_only=False).astype(np.float32))
            self.offsets.append(array.offsets.to_numpy())
        meta = table.drop_columns(lead_columns).to_pandas()
        self.refs, self.rates = refs_from_table(meta, self.path.name, None)

    def describe(self) -> str:
        return f"parquet table {self.path}"

    def discover(self) -> list[RecordRef]:
        return self.refs

    def load(self, ref: RecordRef) -> RawRecord:
        row = int(ref.locator)
        lengths = {int(o[row + 1] - o[row]) for o in self.offsets}
        if len(lengths) != 1:
            raise BadRecord(TRUNCATED_SIGNAL, f"leads have different lengths {sorted(lengths)}")
        signal = np.stack([v[o[row]:o[row + 1]] for v, o in zip(self.values, self.offsets)])
        return RawRecord(signal, float(self.rates[row]), self.leads)
