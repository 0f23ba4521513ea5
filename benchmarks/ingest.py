"""Ingest and read throughput on the shared PTB-XL subset, as ratios against plain `wfdb` baselines.

1. ingest: records/s of `ecgcl.data.ingest.ingest` (parallel, writes a store) vs a plain loop of `wfdb.rdsamp`
   that stacks the same arrays in memory (no store, no checks).
2. reads: random batches/s from the store (`ECGStore.read`, memory-mapped) vs reading the batch's records from
   their WFDB files each time with `wfdb.rdsamp`.
3. CODE-15 HDF5: a synthetic part of `--hdf5-records` (20,000) exams in CODE-15's layout (4096 x 12 at 400 Hz,
   real PTB-XL 500 Hz signals cut to 10 s and centred in zero padding) ingested in a fresh process, against a
   plain h5py loop that reads the same slices and trims the padding (no checks, no store); with the peak
   resident memory of the ingest process next to the size of the part, which it never loads whole.

    python benchmarks/ingest.py [--ptbxl ../shared/data/ptbxl] [--limit N] [--batch 64] [--batches 50]
                                [--hdf5-records 20000 | 0 to leave the HDF5 rows out]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import wfdb
from rich.console import Console
from rich.table import Table

from ecgcl.data.ingest import ingest
from ecgcl.data.store import open_store

REPO = Path(__file__).resolve().parents[1]


def best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ptbxl", type=Path, default=REPO.parent / "shared" / "data" / "ptbxl")
    parser.add_argument("--limit", type=int, default=None, help="records to ingest (default: all 100 Hz records)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--hdf5-records", type=int, default=20_000, help="exams in the synthetic CODE-15 part")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="ecgcl-bench-"))
    # warm the page cache and imports so both sides read from memory
    result = ingest(args.ptbxl, tmp / "warm", limit=args.limit, workers=1)
    store = open_store(result.path)
    paths = [str(args.ptbxl / p) for p in store.metadata["source_path"]]
    n = len(paths)

    def plain_loop():
        np.stack([wfdb.rdsamp(p)[0].T.astype(np.float32) for p in paths])

    def ecgcl_ingest(workers):
        def run():
            ingest(args.ptbxl, tmp / f"store-{workers}", limit=args.limit, workers=workers, overwrite=True)
        return run

    t_plain = best_of(1, plain_loop)
    t_one = best_of(2, ecgcl_ingest(1))
    t_par = best_of(2, ecgcl_ingest(args.workers))

    rng = np.random.default_rng(0)
    batches = [rng.choice(n, args.batch, replace=False) for _ in range(args.batches)]
    wfdb_batches = batches[: max(3, args.batches // 10)]  # the slow side: fewer batches, same size

    def store_reads():
        for rows in batches:
            store.read(rows)

    def wfdb_reads():
        for rows in wfdb_batches:
            np.stack([wfdb.rdsamp(paths[i])[0].T.astype(np.float32) for i in rows])

    t_store = best_of(3, store_reads) / len(batches)
    t_wfdb = best_of(1, wfdb_reads) / len(wfdb_batches)

    table = Table(title=f"Ingest and reads, {n} PTB-XL 100 Hz records (12 x 1000), {os.cpu_count()} CPU cores")
    for column in ("measure", "ecgcl", "baseline", "speed-up"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    table.add_row("ingest, 1 worker (records/s) vs wfdb.rdsamp loop", f"{n / t_one:,.0f}", f"{n / t_plain:,.0f}",
                  f"{t_plain / t_one:.1f}x")
    table.add_row(f"ingest, {args.workers} workers (records/s) vs wfdb.rdsamp loop", f"{n / t_par:,.0f}",
                  f"{n / t_plain:,.0f}", f"{t_plain / t_par:.1f}x")
    table.add_row(f"random batches of {args.batch} (batches/s): store vs WFDB files", f"{1 / t_store:,.0f}",
                  f"{1 / t_wfdb:,.1f}", f"{t_wfdb / t_store:.0f}x")
    if args.hdf5_records > 0:
        hdf5_rows(table, args, tmp)
    Console().print(table)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


def build_code15_part(ptbxl: Path, folder: Path, records: int) -> Path:
    """A CODE-15-layout part of `records` exams cycling through the shared 500 Hz PTB-XL records."""
    import h5py

    sources = sorted((ptbxl / "records500").rglob("*.hea"))
    signals = np.stack([wfdb.rdsamp(str(p.with_suffix("")))[0][:4000].astype(np.float32) for p in sources])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "exams_part0.hdf5"
    with h5py.File(path, "w") as handle:
        tracings = handle.create_dataset("tracings", (records, 4096, 12), dtype="f4", chunks=(16, 4096, 12))
        for start in range(0, records, 1000):
            stop = min(records, start + 1000)
            block = np.zeros((stop - start, 4096, 12), np.float32)
            block[:, 48:4048] = signals[np.arange(start, stop) % len(signals)]
            tracings[start:stop] = block
        handle.create_dataset("exam_id", data=np.arange(1, records + 1, dtype=np.int64))
    return path


def _ingest_in_fresh_process(source: Path, out: Path, workers: int) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one ingest run in its own interpreter. The peak is the process's VmHWM,
    which starts afresh at exec (getrusage's ru_maxrss would include the forked parent's pages); with several
    workers it is the main process's, each worker holding one chunk at a time."""
    import json
    import subprocess
    import sys

    code = ("import json, time\n"
            "from ecgcl.data.ingest import ingest\n"
            "start = time.perf_counter()\n"
            f"ingest({str(source)!r}, {str(out)!r}, fs=400, length=10, workers={workers}, overwrite=True)\n"
            "seconds = time.perf_counter() - start\n"
            "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
            "print(json.dumps([seconds, int(status) / 1024]))\n")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    seconds, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return seconds, peak


def hdf5_rows(table, args, tmp: Path) -> None:
    """Rows 4-5: the synthetic CODE-15 part (throughput vs a plain h5py loop, and peak memory)."""
    import h5py

    from ecgcl.plugins.readers.code15 import trim_padding

    n = args.hdf5_records
    part = build_code15_part(args.ptbxl, tmp / "code15", n)

    def plain_h5py():
        with h5py.File(part, "r") as handle:
            tracings = handle["tracings"]
            for start in range(0, n, 64):
                block = tracings[start:start + 64]
                first, stop = trim_padding(block)
                _ = [np.ascontiguousarray(t[a:b].T) for t, a, b in zip(block, first, stop)]

    t_plain = best_of(1, plain_h5py)
    t_one, rss_one = _ingest_in_fresh_process(part.parent, tmp / "code15-1", 1)
    t_par, rss_par = _ingest_in_fresh_process(part.parent, tmp / "code15-n", args.workers)
    size = part.stat().st_size / 2**20
    table.add_row(f"CODE-15 part, {n:,} exams, 1 worker (records/s) vs h5py slice loop", f"{n / t_one:,.0f}",
                  f"{n / t_plain:,.0f}", f"{t_plain / t_one:.2f}x")
    table.add_row(f"CODE-15 part, {args.workers} workers (records/s) vs h5py slice loop", f"{n / t_par:,.0f}",
                  f"{n / t_plain:,.0f}", f"{t_plain / t_par:.2f}x")
    table.add_row("CODE-15 ingest peak RSS (MiB), 1 / N workers, vs part size (MiB)",
                  f"{rss_one:,.0f} / {rss_par:,.0f}", f"{size:,.0f}", f"{rss_one / size:.2f}x of the part")


if __name__ == "__main__":
    main()
