"""float32 against float16 stores on the shared PTB-XL pool: bytes, read throughput, rounding and test AUROC.

Ingests every 100 Hz record of ../shared/data/ptbxl (10 s) twice, `--dtype float32` and `--dtype float16`, and
reports:

1. store bytes: the size of `signals.npy`, and per record;
2. random-batch reads: batches/s of `ECGStore.read` on random rows (batch 256), warm (each store read once
   first, so both come from the page cache) and cold (before each pass the file's pages are dropped from the
   page cache with `posix_fadvise(DONTNEED)` and the store is opened afresh; one pass reads every row once in
   random batches); the page cache cannot be dropped as a whole here, DONTNEED drops one file's clean pages;
3. rounding: the largest |float16 - float32| over the store, in uV, and its ratio to float16's bound
   max(|x| 2^-11, 2^-25) (half a unit in the last place; <= 1 means within float16 rounding);
4. test AUROC of `ecgcl run` (same config and seed on each store) per method and repeat, and the paired
   difference float16 - float32 per method over the same repeats: mean, 95% t interval and paired t-test p
   (`ecgcl.protocol.paired.paired_difference`), next to each store's mean and 95% CI (`ecgcl.metrics.mean_ci`).

    OMP_NUM_THREADS=1 python benchmarks/store_dtype.py [--ptbxl ../shared/data/ptbxl] [--out /tmp/ecgcl-bench-dtype]
        [--repeats 5] [--pretrain-epochs 5] [--finetune-epochs 30] [--patience 10] [--width 16] [--depth 3]
        [--batches 200] [--no-run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ecgcl.data.ingest import ingest
from ecgcl.data.store import SIGNALS_FILE, open_store
from ecgcl.metrics import mean_ci
from ecgcl.protocol.paired import paired_difference

REPO = Path(__file__).resolve().parents[1]
DTYPES = ("float32", "float16")
BATCH = 256


def drop_cached(path: Path) -> None:
    """Ask the kernel to drop `path`'s (clean) pages from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd) if hasattr(os, "fdatasync") else None
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def warm_reads(path: Path, batches: int, seed: int = 0) -> float:
    """Batches/s of `store.read` on random rows after the whole store was read once (page cache warm)."""
    store = open_store(path)
    float(np.asarray(store.signals).sum(dtype=np.float64))  # every page once
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(store), BATCH) for _ in range(batches)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for rows in draws:
            store.read(rows)
        best = min(best, time.perf_counter() - start)
    return batches / best


def cold_reads(path: Path, passes: int = 3, seed: int = 0) -> float:
    """Batches/s of one pass over every row in random batches, the file dropped from the page cache first
    (median of `passes`)."""
    rates = []
    for k in range(passes):
        drop_cached(path / SIGNALS_FILE)
        store = open_store(path)
        order = np.random.default_rng(seed + k).permutation(len(store))
        batches = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
        start = time.perf_counter()
        for rows in batches:
            store.read(rows)
        rates.append(len(batches) / (time.perf_counter() - start))
        del store
    return float(np.median(rates))


def rounding(path32: Path, path16: Path) -> dict[str, float]:
    """Largest |float16 - float32| (mV) and its largest ratio to float16's rounding bound."""
    a, b = open_store(path32), open_store(path16)
    assert a.metadata["record_id"].tolist() == b.metadata["record_id"].tolist()
    worst, ratio, peak = 0.0, 0.0, 0.0
    for start in range(0, len(a), 512):
        rows = np.arange(start, min(len(a), start + 512))
        x, y = a.read(rows).astype(np.float64), b.read(rows).astype(np.float64)
        diff = np.abs(x - y)
        bound = np.maximum(np.abs(x) * 2.0 ** -11, 2.0 ** -25)
        worst, ratio, peak = max(worst, diff.max()), max(ratio, (diff / bound).max()), max(peak, np.abs(x).max())
    return {"max_abs_diff_mv": worst, "max_ratio_to_bound": ratio, "max_abs_mv": peak}


def run_protocol_cli(store: Path, out: Path, args) -> list[dict]:
    """`ecgcl run` on `store` (a subprocess, OMP_NUM_THREADS=1), its per-repeat rows from metrics.json."""
    command = [str(Path(sys.executable).parent / "ecgcl"), "run", "--data", str(store), "--out", str(out),
               "--repeats", str(args.repeats), "--pretrain-epochs", str(args.pretrain_epochs),
               "--finetune-epochs", str(args.finetune_epochs), "--patience", str(args.patience),
               "--encoder-arg", f"width={args.width}", "--encoder-arg", f"depth={args.depth}",
               "--methods", args.methods, "--device", "cpu", "--seed", "0", "--overwrite"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ecgcl run failed on {store}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    print(f"  ecgcl run on {store.name}: {time.perf_counter() - started:.0f} s", flush=True)
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ptbxl", type=Path, default=REPO.parent / "shared" / "data" / "ptbxl")
    parser.add_argument("--out", type=Path, default=Path("/tmp/ecgcl-bench-dtype"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=200, help="random batches per warm timing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--finetune-epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--methods", default="pretrained_linear,supervised")
    parser.add_argument("--no-run", action="store_true", help="Leave out the `ecgcl run` AUROC comparison")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    stores, timing = {}, {}
    for dtype in DTYPES:
        started = time.perf_counter()
        result = ingest(args.ptbxl, args.out / f"ptbxl100-{dtype}", fs=100, length=10, dtype=dtype,
                        workers=args.workers, overwrite=True)
        timing[dtype] = time.perf_counter() - started
        stores[dtype] = result.path
    rows = {}
    for dtype, path in stores.items():
        store = open_store(path)
        size = (path / SIGNALS_FILE).stat().st_size
        rows[dtype] = {"records": len(store), "bytes": size, "per_record": size / len(store), "hash": store.hash,
                       "warm": warm_reads(path, args.batches), "cold": cold_reads(path), "ingest_s": timing[dtype]}
        assert store.read(np.arange(2)).dtype == np.float32 and store.manifest["dtype"] == dtype
    diff = rounding(stores["float32"], stores["float16"])

    print(f"\nshared PTB-XL pool, 100 Hz, 10 s: {rows['float32']['records']} records x 12 leads x 1000 samples")
    print(f"{'dtype':<8} {'signals.npy':>12} {'per record':>11} {'warm batches/s':>15} {'cold batches/s':>15} "
          f"{'ingest s':>9}  hash")
    for dtype, r in rows.items():
        print(f"{dtype:<8} {r['bytes'] / 1e6:>9.1f} MB {r['per_record'] / 1e3:>8.1f} kB {r['warm']:>15.1f} "
              f"{r['cold']:>15.1f} {r['ingest_s']:>9.1f}  {r['hash']}")
    print(f"float16/float32: bytes x{rows['float16']['bytes'] / rows['float32']['bytes']:.3f}, warm reads "
          f"x{rows['float16']['warm'] / rows['float32']['warm']:.2f}, cold reads "
          f"x{rows['float16']['cold'] / rows['float32']['cold']:.2f} (batch {BATCH})")
    print(f"max |float16 - float32| = {diff['max_abs_diff_mv'] * 1e3:.3f} uV (largest |x| "
          f"{diff['max_abs_mv']:.2f} mV); largest ratio to float16's rounding bound max(|x| 2^-11, 2^-25): {diff['max_ratio_to_bound']:.3f}")
    summary = {"stores": rows, "rounding": diff}
    if not args.no_run:
        print(f"\necgcl run: --repeats {args.repeats} --pretrain-epochs {args.pretrain_epochs} --finetune-epochs "
              f"{args.finetune_epochs} --patience {args.patience} --encoder-arg width={args.width} --encoder-arg "
              f"depth={args.depth} --methods {args.methods} (task normal_vs_abnormal, seed 0, cpu)", flush=True)
        results = {dtype: run_protocol_cli(path, args.out / f"run-{dtype}", args) for dtype, path in stores.items()}
        print(f"\n{'method':<20} {'float32 AUROC (95% CI)':>26} {'float16 AUROC (95% CI)':>26} "
              f"{'paired diff 16-32':>18} {'95% CI':>20} {'p':>7}")
        summary["auroc"] = {}
        for method in args.methods.split(","):
            by_dtype = {d: {r["repeat"]: r["auroc"] for r in results[d] if r["method"] == method} for d in DTYPES}
            repeats = sorted(set(by_dtype["float32"]) & set(by_dtype["float16"]))
            a = [by_dtype["float16"][k] for k in repeats]
            b = [by_dtype["float32"][k] for k in repeats]
            paired = paired_difference(a, b)
            cells = {d: mean_ci([by_dtype[d][k] for k in repeats]) for d in DTYPES}
            text = "".join(f"{m:>10.4f} [{lo:.3f}, {hi:.3f}]" for m, lo, hi in cells.values())
            print(f"{method:<20}{text} {paired['mean']:>+18.4f} [{paired['ci_low']:+.4f}, {paired['ci_high']:+.4f}]"
                  f" {paired['p']:>7.3f}")
            per_repeat = "  ".join(f"{k + 1}: {y:.4f}/{x:.4f}" for k, x, y in zip(repeats, a, b))
            print(f"{'':<20} per repeat float32/float16: {per_repeat}")
            summary["auroc"][method] = {"float32": b, "float16": a, "paired": paired,
                                        "ci": {d: list(c) for d, c in cells.items()}}
    (args.out / "store_dtype.json").write_text(json.dumps(summary, indent=2, default=float))
    print(f"\nfigures in {args.out / 'store_dtype.json'}")


if __name__ == "__main__":
    main()
