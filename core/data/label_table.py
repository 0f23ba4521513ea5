"""Labels and patients from a user's table, joined onto a store's metadata at ingest or by `ecgcl relabel`.

The table (`.csv`, `.tsv` or `.parquet`) has one row per record (several rows of one record are merged): an id
column matched against each record's id or relative path (extensions, `./` and leading zeros of numeric ids
ignored; the bare file name when it is unique), label columns and optionally a patient column. A label column
holds class names (a cell may list several, split on `,`, `;` or line breaks: a spreadsheet export writes one
finding per line of a quoted cell), or is an indicator column (only 0/1, true/false, yes/no) whose name is the
class. Every other column is copied as a metadata column, so `--task column:NAME` can use it. Rows that match
no record and records that no row matches are counted and listed in the manifest, with the number of label
cells that listed several classes (`multi_class_cells`).
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

from ecgcl.data.ingest_columns import object_array
from ecgcl.errors import EcgclError, did_you_mean

TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
ID_CANDIDATES = ("record_id", "record", "id", "ecg_id", "filename", "file", "path")
RESERVED = ("record_id", "patient_id", "labels", "fs", "original_fs", "source_path", "window", "window_start",
            "valid_samples", "original_length", "amplitude_mv", "signal_hash")
SIGNAL_SUFFIXES = (".hea", ".dat", ".mat", ".npy", ".npz", ".h5", ".hdf5", ".xml", ".edf")
TRUE, FALSE = {"1", "1.0", "true", "yes", "y", "t"}, {"0", "0.0", "false", "no", "n", "f", ""}
CELL_SEPARATORS = (",", ";", "\r\n", "\r", "\n")  # between the classes of one label cell
_CELL_SPLIT = re.compile("|".join(map(re.escape, CELL_SEPARATORS)))


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
    return [s.strip() for s in _CELL_SPLIT.split(value) if s.strip()]


def join_labels(metadata: pd.DataFrame, labels: LabelTable) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`metadata` with labels, patients and extra columns from the table, and the report for the manifest.

    Each matched record's labels are the classes of its rows in table order (each once), its patient and extra
    values those of its first row with a non-empty cell. Column by column, on the distinct values of each
    column (labels take few; a record's own ids one each): no per-row `table.iloc`, no dict, list or string per
    record, which cost ~250 us and ~1 KB a record.
    """
    lookup = _record_lookup(metadata)
    table = labels.table
    matched_to = pd.Series([lookup.get(match_key(key)) for key in table[labels.id_column].tolist()],
                           index=table.index, dtype=object)  # not Series.map: it copies the dict into a Series
    del lookup
    unmatched_rows = table.loc[matched_to.isna(), labels.id_column].tolist()
    if matched_to.isna().all():
        example = metadata["record_id"].iloc[0]
        raise EcgclError(f"labels file {labels.path}: none of its {len(table)} ids (column {labels.id_column!r}, "
                         f"e.g. {table[labels.id_column].iloc[0]!r}) matches a record id or path of the store "
                         f"(e.g. {example!r})")
    extras = [c for c in table.columns if c not in (labels.id_column, *RESERVED)]
    rows = np.flatnonzero(matched_to.notna().to_numpy())
    codes, matched = pd.factorize(matched_to.iloc[rows].astype(str))  # the rows' records, first seen first
    position = matched.get_indexer(metadata["record_id"].astype(str))  # -1: no row of the table
    at = np.flatnonzero(position >= 0)  # store rows whose record the table names

    def distinct_cells(column: str) -> tuple[np.ndarray, list[str]]:
        """The matched rows' cells of `column` (in table order) as codes into their distinct values, stripped."""
        cell_codes, distinct = pd.factorize(table[column].iloc[rows], use_na_sentinel=False)
        return cell_codes, [str(v).strip() for v in distinct]

    def take_first_filled(column: str, previous: np.ndarray) -> list[Any]:
        """`previous` (one value a store row) with, where the record has one, its first non-empty cell."""
        cell_codes, distinct = distinct_cells(column)
        filled = np.flatnonzero(np.array([v != "" for v in distinct], dtype=bool)[cell_codes])
        records, first_row = np.unique(codes[filled], return_index=True)  # np.unique: the first row of each
        first = np.full(len(matched), -1, dtype=np.int64)
        first[records] = cell_codes[filled[first_row]]
        chosen = np.full(len(position), -1, dtype=np.int64)
        chosen[at] = first[position[at]]
        values = object_array(distinct, len(distinct))
        previous[chosen >= 0] = values[chosen[chosen >= 0]]
        return previous.tolist()  # a list: the column's dtype is inferred as before

    out = metadata.copy()
    several = 0  # matched rows' label cells that listed more than one class
    if labels.label_columns:
        parsed_columns = []
        for column in labels.label_columns:
            cell_codes, distinct = distinct_cells(column)
            parsed = [_cell_labels(value, column, labels) for value in distinct]
            several += int(np.array([len(cell) > 1 for cell in parsed], dtype=bool)[cell_codes].sum())
            parsed_columns.append((cell_codes, parsed))
        out["labels"] = _new_labels(codes, position, parsed_columns, out["labels"], records=len(matched),
                                    merge=labels.merge)
    if labels.patient_column:
        out["patient_id"] = take_first_filled(labels.patient_column,
                                              out["patient_id"].to_numpy(dtype=object, copy=True))
    for column in extras:
        previous = (out[column].to_numpy(dtype=object, copy=True) if column in out else
                    np.full(len(out), None, dtype=object))
        out[column] = take_first_filled(column, previous)
    unmatched_records = out["record_id"][position < 0].drop_duplicates().tolist()
    report = {**labels.describe(), "rows": len(table), "matched_rows": int(matched_to.notna().sum()),
              "matched_records": len(matched), "unmatched_rows": [str(v) for v in unmatched_rows],
              "unmatched_records": [str(v) for v in unmatched_records], "copied_columns": extras,
              "multi_class_cells": several}
    return out, report


def _new_labels(codes: np.ndarray, position: np.ndarray, parsed_columns: list[tuple[np.ndarray, list[list[str]]]],
                old: pd.Series, *, records: int, merge: bool) -> list[str]:
    """The labels column after the join: each matched record's classes, its rows' in table order (each once),
    merged with its old labels under `merge`. Rows with the same cells share their classes, and records of one
    row (most) take their row's; only records of several rows are merged one by one."""
    from ecgcl.tasks import split_labels

    cells = np.stack([cell_codes for cell_codes, _ in parsed_columns], axis=1)
    combinations, row_combination = np.unique(cells, axis=0, return_inverse=True)
    row_combination = row_combination.reshape(-1)
    combined: list[list[str]] = []  # the classes of each distinct combination of cells, as one row gives them
    for combination in combinations.tolist():
        classes: list[str] = []
        for (_, parsed), code in zip(parsed_columns, combination):
            classes += [c for c in parsed[code] if c not in classes]
        combined.append(classes)
    rows_of = np.bincount(codes, minlength=records)
    key = np.full(records, -1, dtype=np.int64)  # a record's classes: index into `combined` (then `merged`)
    single = rows_of[codes] == 1
    key[codes[single]] = row_combination[single]
    merged: dict[int, list[str]] = {}
    for row in np.flatnonzero(~single).tolist():
        found = merged.setdefault(int(codes[row]), [])
        found += [c for c in combined[row_combination[row]] if c not in found]
    for code, found in merged.items():
        key[code] = len(combined)
        combined.append(found)
    combined.append([])  # the store rows that no table row names
    row_key = np.full(len(position), len(combined) - 1, dtype=np.int64)
    row_key[position >= 0] = key[position[position >= 0]]
    if not merge:
        text = object_array((";".join(classes) for classes in combined), len(combined))
        return text[row_key].tolist()
    old_codes, old_values = pd.factorize(old, use_na_sentinel=False)
    pairs, pair_of_row = np.unique(np.stack([row_key, old_codes], axis=1), axis=0, return_inverse=True)
    text = []
    for classes_at, old_at in pairs.tolist():
        before = split_labels(old_values[old_at])
        text.append(";".join(sorted(before) + [c for c in combined[classes_at] if c not in before]))
    return object_array(text, len(text))[pair_of_row.reshape(-1)].tolist()


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
