"""Training-step throughput and size of every registered encoder.

One step = forward and backward of two views of a batch through encoder + projection head, NT-Xent, and an
Adam update; throughput is ECGs (recordings, not views) per second. Each encoder's throughput is also shown
as a ratio to `cnn` measured in the same run with the same length and mode.

    python benchmarks/encoders.py                       # CPU, 12 x 5000 and 12 x 1000, batch 64
    python benchmarks/encoders.py --device cuda --bf16 --compile
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ecgcl.engine.heads import ProjectionHead
from ecgcl.manager import create_plugin_manager


PTBXL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptbxl"


def real_batch(batch: int, leads: int, length: int) -> tuple[torch.Tensor, str]:
    """`batch` real PTB-XL ECGs of `length` samples: 100 Hz records for 1000, 500 Hz ones for 5000.

    Other lengths crop or tile those; only where the shared data is absent does it fall back to noise.
    """
    import numpy as np

    folder = PTBXL / ("records500/00000" if length > 1000 else "records100/00000")
    headers = sorted(folder.glob("*.hea"))[:batch]
    if len(headers) < batch:
        return torch.randn(batch, leads, length), "random noise (shared PTB-XL data not found)"
    import wfdb

    signals = np.stack([wfdb.rdsamp(str(h.with_suffix("")))[0].T for h in headers]).astype(np.float32)
    signals = np.nan_to_num(signals)[:, :leads]
    reps = -(-length // signals.shape[-1])
    return torch.from_numpy(np.tile(signals, (1, 1, reps))[..., :length].copy()), f"{batch} real PTB-XL records ({folder.parent.name})"


@dataclass
class Row:
    encoder: str
    length: int
    mode: str
    parameters: int
    seconds_per_step: float
    batch: int

    @property
    def ecgs_per_second(self) -> float:
        return self.batch / self.seconds_per_step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(registry, name: str, args: argparse.Namespace, length: int, bf16: bool, compile_: bool,
            batch: torch.Tensor) -> Row:
    """Seconds per training step (median of `args.steps` after `args.warmup` warm-up steps)."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    encoder = registry.create("encoder", name, in_leads=args.leads, length=length, embed_dim=args.embed_dim).to(device)
    head = ProjectionHead(args.embed_dim, args.embed_dim, args.proj_dim).to(device)
    loss_fn = registry.create("loss", "ntxent", temperature=0.1)
    parameters = sum(p.numel() for p in encoder.parameters())
    model = torch.nn.Sequential(encoder, head)
    step_model = torch.compile(model) if compile_ else model
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator(device=device).manual_seed(0)
    view1, view2 = registry.create("augmentation", "noise", std=0.1).views(batch.to(device), generator)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(step_model(view1), step_model(view2))
        loss.backward()
        optimizer.step()

    for _ in range(max(args.warmup, 3) if compile_ else args.warmup):  # compiling takes the first calls
        step()
    times = []
    for _ in range(args.steps):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    times.sort()
    mode = ("bf16" if bf16 else "fp32") + ("+compile" if compile_ else "")
    return Row(name, length, mode, parameters, times[len(times) // 2], args.batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--leads", type=int, default=12)
    parser.add_argument("--lengths", type=int, nargs="+", default=[5000, 1000])
    parser.add_argument("--steps", type=int, default=3, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--embed-dim", type=int, default=128)
    parser.add_argument("--proj-dim", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="also time under bf16 autocast")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd models")
    parser.add_argument("--encoders", nargs="*", default=None, help="names (default: every registered encoder)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    registry = create_plugin_manager(entry_points=False).registry
    names = args.encoders or registry.names("encoder")
    if "cnn" in names:
        names = ["cnn"] + [n for n in names if n != "cnn"]  # the baseline first
    modes = [(False, False)]
    if args.bf16:
        modes.append((True, False))
    if args.compile:
        modes += [(False, True)] + ([(True, True)] if args.bf16 else [])

    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    print(f"torch {torch.__version__}, device {device_name}, {torch.get_num_threads()} CPU threads, "
          f"batch {args.batch} x 2 views, {args.leads} leads, {args.warmup} warm-up + {args.steps} timed steps")
    header = f"{'encoder':<16} {'leads x T':>10} {'mode':<13} {'params':>9} {'ms/step':>9} {'ECGs/s':>9} {'vs cnn':>7}"
    print(header)
    print("-" * len(header))
    for length in args.lengths:
        batch, origin = real_batch(args.batch, args.leads, length)
        print(f"input {args.leads} x {length}: {origin}, views from the `noise` augmentation")
        measure(registry, names[0], args, length, False, False, batch)  # untimed: the process's first steps are slow
        for bf16, compile_ in modes:
            baseline = None
            for name in names:
                row = measure(registry, name, args, length, bf16, compile_, batch)
                if name == "cnn":
                    baseline = row.ecgs_per_second
                ratio = f"{row.ecgs_per_second / baseline:6.2f}x" if baseline else "    n/a"
                print(f"{row.encoder:<16} {f'{args.leads} x {length}':>10} {row.mode:<13} {row.parameters:>9,} "
                      f"{1000 * row.seconds_per_step:>9.1f} {row.ecgs_per_second:>9.1f} {ratio:>7}", flush=True)


if __name__ == "__main__":
    main()
