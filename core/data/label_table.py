"""Labels and patients from a user's table, joined onto a store's metadata at ingest or by `ecgcl relabel`.

The table (`.csv`, `.tsv` or `.parquet`) has one row per record (several rows of one record are merged): an id
column matched against each record's id or relative path (extensions, `./` and leading zeros of numeric ids
ignored; the bare file name when it is unique), label columns and optionally a patient column. A label column
holds class names (a cell may list several, split on `,` or `;`), or is an indicator column (only 0/1,
true/false, yes/no) whose name is the class. Every other column is copied as a metadata column, so
`--task column:NAME` can use it. Rows that match no record and records that no row matches are counted and
listed in the manifest.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcl.errors import EcgclError, did_you_mean

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
ID_CANDIDATES = ("record_id", "record", "id", "ecg_id", "filename", "file", "path")
RESERVED = ("record_id", "patient_id", "labels", "fs", "original_fs", "source_path", "window", "window_start",
            "valid_samples", "original_length", "amplitude_mv", "signal_hash")
SIGNAL_SUFFIXES = (".hea", ".dat", ".mat", ".npy", ".npz", ".h5", ".hdf5", ".xml", ".edf")
TRUE, FALSE = {"1", "1.0", "true", "yes", "y", "t"}, {"0", "0.0", "false", "no", "n", "f", ""}


@dataclass
class LabelTable:
    """A labels table read and checked against the options, before any signal is read."""

    path: Path
    table: pd.DataFrame
    id_column: str
    label_columns: tuple[str, ...]
    patient_column: str | None
    merge: bool = False
    indicators: tuple[str, ...] = field(default=())

    def describe(self) -> dict[str, Any]:
        return {"file": str(self.path), "id_column": self.id_column, "label_columns": list(self.label_columns),
                "indicator_columns": list(self.indicators), "patient_column": self.patient_column,
                "mode": "merged with the existing labels" if self.merge else "replacing the existing labels"}


def _read(path: Path) -> pd.DataFrame:
    if path.suffix.lower() not in TABLE_SUFFIXES:
        raise EcgclError(f"labels file {path}: expected a .csv, .tsv or .parquet file")
    if not path.is_file():
        raise EcgclError(f"labels file {path} does not exist")
    try:
        if path.suffix.lower() == ".parquet":
            table = pd.read_parquet(path)
            return table.astype(object).where(table.notna(), "").astype(str)
        return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str,
                           keep_default_na=False)
    except ImportError as error:
        raise EcgclError(f"labels file {path}: reading parquet needs `pip install ecgcl[parquet]` ({error})") from None
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise EcgclError(f"labels file {path} cannot be read: {error}") from None


def _column(table: pd.DataFrame, name: str, path: Path, option: str) -> str:
    if name not in table.columns:
        columns = [str(c) for c in table.columns]
        raise EcgclError(f"labels file {path} has no column {name!r} ({option}){did_you_mean(name, columns)}; "
                         f"columns: {', '.join(columns)}")
    return name


def read_label_table(path: str | Path, *, id_column: str | None = None, label_columns: str | tuple | list = (),
                     patient_column: str | None = None, merge: bool = False) -> LabelTable:
    """Read and check a labels table: the columns exist, it has rows, and it gives labels or patients."""
    path = Path(path)
    table = _read(path)
    table.columns = [str(c).strip() for c in table.columns]
    if table.empty:
        raise EcgclError(f"labels file {path} has no rows")
    if id_column is None:
        id_column = next((c for c in ID_CANDIDATES if c in table.columns), None)
        if id_column is None:
            raise EcgclError(f"labels file {path}: say which column holds the record ids with --id-column; "
                             f"columns: {', '.join(table.columns)}")
    _column(table, id_column, path, "--id-column")
    if isinstance(label_columns, str):
        label_columns = [c for c in (s.strip() for s in label_columns.split(",")) if c]
    label_columns = tuple(label_columns) or (("labels",) if "labels" in table.columns else ())
    for name in label_columns:
        _column(table, name, path, "--label-columns")
    if patient_column is not None:
        _column(table, patient_column, path, "--patient-column")
    if not label_columns and patient_column is None:
        raise EcgclError(f"labels file {path}: give --label-columns (and/or --patient-column); "
                         f"columns: {', '.join(table.columns)}")
    indicators = tuple(c for c in label_columns if table[c].str.strip().str.lower().isin(TRUE | FALSE).all())
    return LabelTable(path, table, id_column, label_columns, patient_column, merge, indicators)


def match_key(text: str) -> str:
    """How ids and paths are compared: `/`, no `./`, no signal extension, no leading zeros of a number."""
    key = str(text).strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    if key.lower().endswith(SIGNAL_SUFFIXES):
        key = key.rsplit(".", 1)[0]
    return (key.lstrip("0") or "0") if key.isdigit() else key


def _record_lookup(metadata: pd.DataFrame) -> dict[str, str]:
    """match key -> record id, from each record's id and source path, and its file name where unique."""
    records = metadata.drop_duplicates("record_id")
    lookup: dict[str, str] = {}
    ids, sources = records["record_id"].astype(str).tolist(), records["source_path"].astype(str).tolist()
    for record, source in zip(ids, sources):
        for text in (record, source):
            lookup.setdefault(match_key(text), record)
    names = [match_key(source.rsplit("/", 1)[-1]) for source in sources]
    owners = Counter(names)
    for name, record in zip(names, ids):
        if owners[name] == 1:
            lookup.setdefault(name, record)
    return lookup


def _cell_labels(value: str, column: str, labels: LabelTable) -> list[str]:
    """The classes one cell (stripped text) of label column `column` gives."""
    if column in labels.indicators:
        return [column] if value.lower() in TRUE else []
    return [s.strip() for s in re.split(r"[,;]", value) if s.strip()]


def join_labels(metadata: pd.DataFrame, labels: LabelTable) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`metadata` with labels, patients and extra columns from the table, and the report for the manifest.

    Column by column: each matched record's labels are the classes of its rows in table order (each once), its
    patient and extra values those of its first row with a non-empty cell. No per-row `table.iloc` and no
    dictionary per record: those cost ~250 us and ~1 KB a record, a quarter of a whole ingest's time.
    """
    lookup = _record_lookup(metadata)
    table = labels.table
    keys = table[labels.id_column].map(match_key)
    matched_to = keys.map(lookup)
    unmatched_rows = table.loc[matched_to.isna(), labels.id_column].tolist()
    if matched_to.isna().all():
        example = metadata["record_id"].iloc[0]
        raise EcgclError(f"labels file {labels.path}: none of its {len(table)} ids (column {labels.id_column!r}, "
                         f"e.g. {table[labels.id_column].iloc[0]!r}) matches a record id or path of the store "
                         f"(e.g. {example!r})")
    extras = [c for c in table.columns if c not in (labels.id_column, *RESERVED)]
    rows = np.flatnonzero(matched_to.notna().to_numpy())
    codes, matched = pd.factorize(pd.Series(matched_to.to_numpy()[rows], dtype=object))  # records, first seen first
    matched = [str(r) for r in matched]

    def cells(column: str) -> pd.Series:
        """The matched rows' cells of `column` as stripped text, in table order."""
        return pd.Series([str(v).strip() for v in table[column].to_numpy()[rows].tolist()], dtype=object)

    def first_filled(column: str) -> list[str | None]:
        """Per matched record: its first non-empty cell of `column` (None when it has none)."""
        values = cells(column)
        filled = (values != "").to_numpy()
        first = values[filled].groupby(codes[filled], sort=False).first()
        out: list[str | None] = [None] * len(matched)
        for code, value in zip(first.index.tolist(), first.tolist()):
            out[code] = value
        return out

    position = pd.Index(matched).get_indexer(metadata["record_id"].astype(str))  # -1: no row of the table
    out = metadata.copy()
    if labels.label_columns:
        from ecgcl.tasks import split_labels

        found: list[list[str]] = [[] for _ in matched]
        columns = [(column, cells(column).tolist()) for column in labels.label_columns]
        for row, code in enumerate(codes.tolist()):
            classes: list[str] = []
            for column, values in columns:
                classes += [c for c in _cell_labels(values[row], column, labels) if c not in classes]
            found[code] += [c for c in classes if c not in found[code]]

        def new_labels(at: int, old: Any) -> str:
            classes = found[at] if at >= 0 else []
            if labels.merge:
                classes = sorted(split_labels(old)) + [c for c in classes if c not in split_labels(old)]
            return ";".join(classes)

        out["labels"] = [new_labels(at, old) for at, old in zip(position.tolist(), out["labels"])]
    if labels.patient_column:
        patients = first_filled(labels.patient_column)
        out["patient_id"] = [patients[at] if at >= 0 and patients[at] else p
                             for at, p in zip(position.tolist(), out["patient_id"])]
    for column in extras:
        values = first_filled(column)
        previous = out[column] if column in out else pd.Series([None] * len(out), index=out.index)
        out[column] = [values[at] if at >= 0 and values[at] is not None else p
                       for at, p in zip(position.tolist(), previous)]
    records = out.drop_duplicates("record_id")
    unmatched_records = records.loc[~records["record_id"].astype(str).isin(matched), "record_id"].tolist()
    report = {**labels.describe(), "rows": len(table), "matched_rows": int(matched_to.notna().sum()),
              "matched_records": len(matched), "unmatched_rows": [str(v) for v in unmatched_rows],
              "unmatched_records": [str(v) for v in unmatched_records], "copied_columns": extras}
    return out, report


def compile_pattern(pattern: str) -> re.Pattern:
    """The `--patient-from-name` regex, with a one-line error when it does not compile."""
    try:
        return re.compile(pattern)
    except re.error as error:
        raise EcgclError(f"--patient-from-name {pattern!r} is not a valid regular expression: {error}") from None


def patients_from_name(metadata: pd.DataFrame, pattern: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Patient ids from the first group of `pattern` searched in each record id (the whole match without groups)."""
    regex = compile_pattern(pattern)
    ids = metadata["record_id"].astype(str)
    found = [regex.search(r) for r in ids]
    values = [(m.group(1) if regex.groups else m.group(0)) if m else None for m in found]
    if all(v is None for v in values):
        raise EcgclError(f"--patient-from-name {pattern!r} matches no record id (e.g. {ids.iloc[0]!r})")
    out = metadata.copy()
    out["patient_id"] = [v if v else p for v, p in zip(values, out["patient_id"])]
    missed = sorted({r for r, v in zip(ids, values) if not v})
    return out, {"pattern": pattern, "matched_records": int(ids[[v is not None for v in values]].nunique()),
                 "unmatched_records": missed}


def annotate(metadata: pd.DataFrame, *, labels: LabelTable | None = None, patient_from_name: str | None = None,
             before_report: Callable[[pd.DataFrame], pd.DataFrame] | None = None
             ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Apply `--patient-from-name`, then the labels table (its patients win), then `before_report` (ingest
    hashes identifying ids there), and report duplicate records.

    Returns the new metadata and the manifest sections `labels_table`, `patient_from_name` and `duplicates`.
    """
    from ecgcl.data.duplicates import duplicate_report

    notes: dict[str, Any] = {}
    if patient_from_name:
        metadata, notes["patient_from_name"] = patients_from_name(metadata, patient_from_name)
    if labels is not None:
        metadata, notes["labels_table"] = join_labels(metadata, labels)
    if before_report is not None:
        metadata = before_report(metadata)
    notes["duplicates"] = duplicate_report(metadata)
    return metadata, notes
