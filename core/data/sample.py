"""The built-in real sample: a few hundred PTB-XL records that `ecgcl run` uses when no data is given.

The records (100 Hz, 10 s, 12 leads; mostly labelled, some unlabelled for pretraining) ship as package data in
`sample/`: int16 time-differences of digital values at 200 adu/mV (5 uV steps, so within 2.5 uV of PTB-XL's
1 uV originals) with the per-lead gain, and a metadata CSV. They come from PTB-XL (Wagner et al., "PTB-XL, a large publicly available electrocardiography
dataset", Scientific Data 2020; PhysioNet; CC BY 4.0, see `sample/README.md`). `benchmarks/build_sample.py`
rebuilds them from the shared subset.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ecgcl.data.store import StoreWriter, open_store
from ecgcl.errors import EcgclError

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_ARRAYS = "ptbxl_sample.npz"
SAMPLE_METADATA = "ptbxl_sample.csv"


def cache_dir() -> Path:
    """`$ECGCL_CACHE`, else `~/.cache/ecgcl`."""
    return Path(os.environ.get("ECGCL_CACHE") or Path.home() / ".cache" / "ecgcl")


def decode() -> tuple[np.ndarray, pd.DataFrame]:
    """The sample as (records, 12, 1000) float32 mV and its metadata table (ecg_id, patient_id, labels, ...)."""
    try:
        with np.load(SAMPLE_DIR / SAMPLE_ARRAYS) as bundle:
            digital = np.cumsum(bundle["diffs"].astype(np.int32), axis=-1)
            signals = (digital / bundle["gain"][..., None]).astype(np.float32)
        table = pd.read_csv(SAMPLE_DIR / SAMPLE_METADATA, dtype={"ecg_id": str, "patient_id": str, "labels": str},
                            keep_default_na=False, na_values={"strat_fold": [""], "age": [""], "sex": [""]})
    except OSError as error:
        raise EcgclError(f"the built-in sample is missing from the installed package ({error}); reinstall ecgcl") from None
    return signals, table


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in (SAMPLE_ARRAYS, SAMPLE_METADATA):
        digest.update((SAMPLE_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def sample_store_path(cache: str | os.PathLike | None = None) -> Path:
    """The sample as a normal store, written once (atomically) into the cache folder; returns its path."""
    out = Path(cache or cache_dir()) / f"ptbxl-sample-{_fingerprint()}"
    if (out / "manifest.json").is_file():
        return out
    signals, table = decode()
    metadata = pd.DataFrame({"record_id": table["ecg_id"], "patient_id": table["patient_id"],
                             "labels": table["labels"], "fs": 100.0, "original_fs": 100.0,
                             "source_path": table["source_path"]})
    for column in ("scp_codes", "strat_fold", "age", "sex"):
        metadata[column] = table[column]
    labelled = int((metadata["labels"] != "").sum())
    manifest = {
        "source": "ecgcl built-in PTB-XL sample (Wagner et al., Scientific Data 2020; PhysioNet; CC BY 4.0)",
        "source_kind": "sample",
        "options": {"fs": 100.0, "length": 10.0, "leads": "standard", "filter": None},
        "fs": 100.0, "length": 10.0, "samples": signals.shape[-1],
        "leads": ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"], "units": "mV",
        "preprocessing": {"resample": None, "filter": None, "crop": "first samples", "pad": "not allowed"},
        "counts": {"found": len(metadata), "written": len(metadata), "skipped": 0, "labelled": labelled,
                   "unlabelled": len(metadata) - labelled, "patients": int(metadata["patient_id"].nunique())},
        "skip_reasons": {}, "skipped": [],
    }
    try:
        with StoreWriter(out, *signals.shape[1:]) as writer:
            writer.append(signals)
            writer.finish(metadata, manifest)
    except (EcgclError, OSError):
        if not (out / "manifest.json").is_file():  # not a lost race with another process: a real failure
            raise
    open_store(out)
    return out
