"""Ingest speed of clinical formats, as ratios against a plain loop over the same library's parser.

Archives are built from the real DICOM ECG that pydicom ships (12 leads, 1000 Hz, 10 s): `--records` copies
with their own patient ids and waveform noise as DICOM files, and the same signals (decimated to 500 Hz, the
8 leads MUSE stores) written as GE MUSE XML with `tests/clinical_files.py`. For each format:

- baseline: `ecgdatakit.FileParser.parse` on every file in one process, stacking the leads in memory (no
  checks, no resampling, no store);
- ecgcl: `ecgcl.data.ingest.ingest(folder, out, fs=500)` with 1 and 2 workers: discovery, sniffing, parsing,
  the pydicom repair where ecgdatakit gives NaN, limb-lead derivation, checks, hashing of ids, resampling and
  the store written to disk. The plugin registry is loaded once before timing (about 1 s per process, paid
  once by `ecgcl ingest` whatever the archive size).

    python benchmarks/formats.py [--records 400]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from clinical_files import dicom_archive, muse_archive  # noqa: E402

from ecgcl.data.ingest import ingest  # noqa: E402


def plain_loop(files: list[Path]) -> float:
    """Seconds for ecgdatakit alone to parse every file and stack its leads."""
    import warnings

    from ecgdatakit import FileParser

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for file in files:
            record = FileParser.parse(file, units="mV")
            np.stack([np.asarray(lead.samples, dtype=np.float32) for lead in record.leads])
    return time.perf_counter() - start


def ecgcl_ingest(folder: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = ingest(folder, Path(tmp) / "store", fs=500, length=10, workers=workers)
        seconds = time.perf_counter() - start
    assert result.written == len(list(folder.iterdir())), result.skip_counts
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=400)
    args = parser.parse_args()
    from ecgcl.manager import get_registry

    get_registry()
    table = Table(title=f"Ingest of clinical formats, {args.records} records each (records/s)")
    for column in ("format", "plain ecgdatakit loop", "ecgcl ingest, 1 worker", "ratio", "ecgcl ingest, 2 workers",
                   "ratio"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in (("DICOM (12 leads, 1000 Hz)", dicom_archive), ("MUSE XML (8 leads, 500 Hz)", muse_archive)):
            folder = Path(tmp) / name.split()[0]
            build(folder, args.records)
            files = sorted(folder.iterdir())
            baseline = args.records / plain_loop(files)
            one = args.records / ecgcl_ingest(folder, 1)
            two = args.records / ecgcl_ingest(folder, 2)
            table.add_row(name, f"{baseline:.0f}", f"{one:.0f}", f"{one / baseline:.2f}x", f"{two:.0f}",
                          f"{two / baseline:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
