"""`ecgcl relabel`: add or replace labels and patients of an existing store without touching its signals.

Users often get labels after they ingest. The new store is assembled in a temporary folder beside the old one
(signals hard-linked, or copied where links are impossible, so their dtype is kept; new metadata; manifest with
updated counts, the join report and a `relabelled` history entry; new content hash) and swapped in by renames,
so a failure at any point leaves the store as it was.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ecgcl.data.label_table import LabelTable, annotate
from ecgcl.data.store import SIGNALS_FILE, _private_folder, move_into_place, open_store, write_store_files
from ecgcl.errors import EcgclError
from ecgcl.files import writing

UNCHANGED = "the store is unchanged"


def label_counts(metadata: pd.DataFrame) -> dict[str, int]:
    """Labelled / unlabelled records and patients, counting each record once (its first window)."""
    records = metadata[metadata["window"] == 0] if "window" in metadata else metadata.drop_duplicates("record_id")
    labelled = int((records["labels"].fillna("").astype(str) != "").sum())
    return {"labelled": labelled, "unlabelled": len(records) - labelled,
            "patients": int(records["patient_id"].nunique())}


def relabel(store_path: str | os.PathLike, *, labels: LabelTable | None = None,
            patient_from_name: str | None = None) -> dict[str, Any]:
    """Join `labels` and/or apply `patient_from_name` to the store at `store_path`; returns the new manifest."""
    from ecgcl.locks import hold_lock

    path = Path(store_path)
    if labels is None and not patient_from_name:
        raise EcgclError("relabel needs --labels FILE and/or --patient-from-name REGEX")
    with hold_lock(path.parent / f".{path.name}.lock", what=f"store {path}"):  # the lock ingest takes too
        return _relabel(path, labels, patient_from_name)


def _relabel(path: Path, labels: LabelTable | None, patient_from_name: str | None) -> dict[str, Any]:
    store = open_store(path)
    metadata, notes = annotate(store.metadata, labels=labels, patient_from_name=patient_from_name)
    manifest = {k: v for k, v in store.manifest.items() if k != "hash"}
    manifest.setdefault("dtype", store.dtype)  # a store written before the manifest said it: float32
    manifest.update(notes)
    manifest["counts"] = {**manifest.get("counts", {}), **label_counts(metadata)}
    manifest["relabelled"] = [*manifest.get("relabelled", []), {
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "previous_hash": store.hash,
        "labels_table": None if labels is None else str(labels.path.resolve()), "patient_from_name": patient_from_name}]
    tmp = _private_folder(path, "tmp")  # named so that a killed relabel's leftovers are found as stale
    try:
        try:
            os.link(path / SIGNALS_FILE, tmp / SIGNALS_FILE)
        except OSError:  # another file system, or links not allowed
            with writing(path / SIGNALS_FILE, "store signals", kept=UNCHANGED):
                shutil.copy2(path / SIGNALS_FILE, tmp / SIGNALS_FILE)
        manifest = write_store_files(tmp, path, metadata, manifest, kept=UNCHANGED)
        del store
        move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
