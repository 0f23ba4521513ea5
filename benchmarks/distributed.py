"""Pretraining throughput with 1 and 2 processes (torchrun, gloo, CPU), and on a GPU per encoder with and
without bf16 / torch.compile, with the fraction of step time spent waiting on data.

Every measurement is a real `ecgcl pretrain` run in a subprocess on the shared PTB-XL subset at 100 Hz
(ingested once into a cached store, ~2,000 records of 12 x 1000 samples); the throughput and data-wait
figures are the ones the command prints (rank 0's step timer, first step of the run left out).
Throughput is recordings (ECGs, not views) per second per training step over the global batch.

    python benchmarks/distributed.py                        # CPU: 1 process vs 2 processes (torchrun, gloo)
    python benchmarks/distributed.py --device cuda          # GPU: every encoder, fp32 / bf16 / compile
    python benchmarks/distributed.py --device cuda --gpus 2 # also DDP over 2 GPUs (NCCL)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PTBXL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptbxl"
ENCODERS = ("cnn", "cnn_lstm", "cnn_attn_lstm", "cnn_transformer")
THROUGHPUT = re.compile(r"throughput: ([\d.]+) ECGs/s over (\d+) steps, ([\d.]+)% of step time waiting on data")


def store_path(cache: Path) -> Path:
    """The cached 100 Hz PTB-XL store (ingested on first use); the embedded sample when PTB-XL is absent."""
    store = cache / "ptbxl100"
    if (store / "manifest.json").is_file():
        return store
    if (PTBXL / "ptbxl_database.csv").is_file():
        from ecgcl.data.ingest import ingest

        ingest(PTBXL, store, fs=100)
        return store
    from ecgcl.data.sample import sample_store_path

    return Path(sample_store_path())


def pretrain(store: Path, *, device: str, encoder: str, nproc: int, epochs: int, batch: int, width: int,
             depth: int, workers: int, extra: tuple[str, ...] = (), threads: int | None = None) -> dict:
    """One `ecgcl pretrain` run; returns its printed throughput, data-wait fraction and wall time."""
    with tempfile.TemporaryDirectory() as out:
        args = ["pretrain", "--data", str(store), "--out", out, "--device", device, "--encoder", encoder,
                "--encoder-arg", f"width={width}", "--encoder-arg", f"depth={depth}", "--aug", "permute+noise",
                "--batch-size", str(batch), "--pretrain-epochs", str(epochs), "--workers", str(workers), *extra]
        if nproc > 1:
            args += ["--launcher", "torchrun", "--nproc-per-node", str(nproc)]
        env = dict(os.environ)
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "ecgcl.cli", *args], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - started
    text = " ".join(result.stdout.split())  # rich wraps long lines
    match = THROUGHPUT.search(text)
    if result.returncode != 0 or match is None:
        raise SystemExit(f"ecgcl {' '.join(args)} failed (exit {result.returncode}):\n{result.stderr[-2000:]}"
                         f"\n{result.stdout[-1000:]}")
    return {"throughput": float(match.group(1)), "steps": int(match.group(2)),
            "data_wait": float(match.group(3)) / 100, "wall": wall}


def cpu_part(store: Path, args: argparse.Namespace) -> None:
    cores = os.cpu_count() or 1
    print(f"CPU: {cores} cores; encoder {args.encoder} width {args.width} depth {args.depth}, global batch "
          f"{args.batch}, {args.epochs} epochs, workers {args.workers}")
    rows = {}
    for nproc in (1, 2):
        # one process may use every core; torchrun gives each of 2 processes one thread per core share
        threads = cores if nproc == 1 else max(cores // nproc, 1)
        rows[nproc] = pretrain(store, device="cpu", encoder=args.encoder, nproc=nproc, epochs=args.epochs,
                               batch=args.batch, width=args.width, depth=args.depth, workers=args.workers,
                               threads=threads)
        r = rows[nproc]
        print(f"  {nproc} process{'es' if nproc > 1 else '  '} ({threads} thread{'s' if threads > 1 else ''} each): "
              f"{r['throughput']:8.1f} ECGs/s  data wait {100 * r['data_wait']:5.1f}%  "
              f"({r['steps']} timed steps, {r['wall']:.1f} s wall incl. start-up)")
    print(f"  ratio 2 processes / 1 process: {rows[2]['throughput'] / rows[1]['throughput']:.2f}x")


def gpu_part(store: Path, args: argparse.Namespace) -> None:
    import torch

    if not torch.cuda.is_available():
        print("GPU: no GPU available on this machine (torch.cuda.is_available() is False); GPU figures not measured.")
        return
    print(f"GPU: {torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}; global batch {args.gpu_batch}, "
          f"{args.epochs} epochs, workers {args.workers}, width {args.gpu_width} depth {args.depth}")
    modes = {"fp32": (), "bf16": ("--bf16",), "compile": ("--compile",), "bf16+compile": ("--bf16", "--compile")}
    print(f"  {'encoder':<16} {'mode':<13} {'GPUs':>4} {'ECGs/s':>10} {'vs fp32':>8} {'data wait':>10}")
    for encoder in ENCODERS:
        base = None
        for mode, extra in modes.items():
            for gpus in sorted({1, args.gpus}):
                r = pretrain(store, device="cuda", encoder=encoder, nproc=gpus, epochs=args.epochs,
                             batch=args.gpu_batch, width=args.gpu_width, depth=args.depth, workers=args.workers,
                             extra=extra)
                base = r["throughput"] if base is None else base
                print(f"  {encoder:<16} {mode:<13} {gpus:>4} {r['throughput']:>10.1f} "
                      f"{r['throughput'] / base:>7.2f}x {100 * r['data_wait']:>9.1f}%", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--encoder", default="cnn", help="CPU part: the encoder to time.")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--gpu-width", type=int, default=64)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64, help="CPU global batch.")
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--gpus", type=int, default=1, help="GPU part: also run DDP over this many GPUs.")
    parser.add_argument("--cache", default="/tmp/ecgcl-bench-distributed")
    args = parser.parse_args()
    store = store_path(Path(args.cache))
    print(f"store: {store}")
    if args.device == "cpu":
        cpu_part(store, args)
        import torch

        if not torch.cuda.is_available():
            print("GPU: no GPU available on this machine; run with --device cuda where one is.")
    else:
        gpu_part(store, args)


if __name__ == "__main__":
    main()
