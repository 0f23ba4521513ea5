"""Ingest and read throughput on the shared PTB-XL subset, as ratios against plain `wfdb` baselines.

1. ingest: records/s of `ecgcl.data.ingest.ingest` (parallel, writes a store) vs a plain loop of `wfdb.rdsamp`
   that stacks the same arrays in memory (no store, no checks).
2. reads: random batches/s from the store (`ECGStore.read`, memory-mapped) vs reading the batch's records from
   their WFDB files each time with `wfdb.rdsamp`.

    python benchmarks/ingest.py [--ptbxl ../shared/data/ptbxl] [--limit N] [--batch 64] [--batches 50]
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
    Console().print(table)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
