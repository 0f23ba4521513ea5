"""`ecgcl pretrain` against the contrastive loop a user writes by hand in plain PyTorch, on the same CPU cores.

The bare loop is what the README's reader would write: the records in one in-memory float32 tensor, a shuffling
`DataLoader` (batch 64), two views per batch (5-segment permutation, then Gaussian noise at 5% of each lead's
standard deviation), two forward passes through the same encoder class (imported from `ecgcl.plugins.encoders`,
so the network is identical) and an MLP projection head, NT-Xent (temperature 0.1), backward, Adam. `ecgcl`
runs `pretrain_once` with its defaults (what `ecgcl pretrain` runs; embed and projection size 64, batch 64,
permute+noise, ntxent) on the same records (`--all-records`, so no patients are held out).

Both are timed the same way as `ecgcl pretrain`'s printed throughput (`StepTimer`): wall time from asking for a
batch to the end of the optimizer step, each run's first step left out. The bare loop runs in a process of its
own (a user's script has its own allocator and torch settings), in lockstep with ecgcl's: after each ecgcl step,
outside its timed span, ecgcl waits while the bare loop runs one step, so load from other processes hits both
alike. One alternation is a fresh run of both for `--epochs` epochs; the figure is the ratio ecgcl / bare per
alternation, min, median and max over `--alternations`.

    python benchmarks/bare_loop.py                        # cnn and cnn_attn_lstm, PTB-XL at 500 Hz
    python benchmarks/bare_loop.py --encoders cnn --alternations 9 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ecgcl.plugins.encoders import CNNAttnLSTMEncoder, CNNEncoder, CNNLSTMEncoder

PTBXL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptbxl"
ENCODERS = {"cnn": CNNEncoder, "cnn_lstm": CNNLSTMEncoder, "cnn_attn_lstm": CNNAttnLSTMEncoder}
BATCH, EMBED, PROJECTION, LR = 64, 64, 64, 1e-3  # ecgcl pretrain's defaults


def augment(x: torch.Tensor) -> torch.Tensor:
    """One view: each recording's 5 segments in a random order, then noise at 5% of each lead's std."""
    b, leads, t = x.shape
    order = torch.rand(b, 5).argsort(dim=1)
    pieces = x.reshape(b, leads, 5, t // 5)
    x = torch.gather(pieces, 2, order[:, None, :, None].expand(-1, leads, -1, t // 5)).reshape(b, leads, t)
    return x + 0.05 * x.std(dim=-1, keepdim=True) * torch.randn_like(x)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))
    n = len(z1)
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(similarity, targets)


class BareLoop:
    """The hand-written loop over `signals` (N, leads, T), one training step per `step()`."""

    def __init__(self, encoder_name: str, signals: torch.Tensor, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.encoder = ENCODERS[encoder_name](in_leads=signals.shape[1], length=signals.shape[2], embed_dim=EMBED)
        self.head = nn.Sequential(nn.Linear(EMBED, EMBED), nn.ReLU(), nn.Linear(EMBED, PROJECTION))
        self.optimizer = torch.optim.Adam([*self.encoder.parameters(), *self.head.parameters()], lr=LR)
        self.loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(signals), batch_size=BATCH,
                                                  shuffle=True, drop_last=True)
        self.batches = iter(self.loader)
        self.encoder.train()
        self.head.train()
        self.seconds, self.seen, self.steps = 0.0, 0, 0

    def step(self) -> None:
        """One training step, timed like `StepTimer` (batch wait + step; the first step left out)."""
        started = time.perf_counter()
        try:
            (x,) = next(self.batches)
        except StopIteration:  # next epoch
            self.batches = iter(self.loader)
            (x,) = next(self.batches)
        loss = nt_xent(self.head(self.encoder(augment(x))), self.head(self.encoder(augment(x))))
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        elapsed = time.perf_counter() - started
        self.steps += 1
        if self.steps > 1:
            self.seconds += elapsed
            self.seen += len(x)

    @property
    def throughput(self) -> float:
        return self.seen / self.seconds if self.seconds else 0.0


def in_memory(store: Path) -> torch.Tensor:
    """The store's records as one float32 tensor, as a user would load them."""
    from ecgcl.api import open_store

    return torch.from_numpy(np.asarray(open_store(store).signals[:], dtype=np.float32))


def bare_process(conn, encoder_name: str, store: str, threads: int, seed: int) -> None:
    """The bare loop in a process of its own (its own allocator, RNG and torch settings, as a user's script has):
    one step per "step" message, its throughput after "stop"."""
    torch.set_num_threads(threads)
    bare = BareLoop(encoder_name, in_memory(Path(store)), seed)
    conn.send("ready")
    while conn.recv() == "step":
        bare.step()
        conn.send("done")
    conn.send(bare.throughput)


def lockstep(encoder_name: str, store: Path, epochs: int, seed: int = 0) -> tuple[float, float]:
    """ECGs/s of `ecgcl pretrain` with its defaults (the throughput the command prints) and of the bare loop in
    another process, which runs one step after each ecgcl step (ecgcl waits, outside its timed span), so both
    meet the same moments of load from other processes."""
    import multiprocessing

    from ecgcl.api import run_config
    from ecgcl.engine.speed import StepTimer, TrainOptions
    from ecgcl.protocol.single import pretrain_once

    context = multiprocessing.get_context("spawn")
    conn, child = context.Pipe()
    bare = context.Process(target=bare_process, args=(child, encoder_name, str(store), torch.get_num_threads(), seed))
    bare.start()
    try:
        if conn.recv() != "ready":
            raise RuntimeError("the bare loop's process did not start")

        class Lockstep(StepTimer):
            def record(self, wait_s: float, step_s: float, samples: int) -> None:
                super().record(wait_s, step_s, samples)
                conn.send("step")
                conn.recv()

        timer = Lockstep(skip=1)
        with tempfile.TemporaryDirectory() as out:
            config = run_config(data=str(store), out=out, encoder=encoder_name, pretrain_epochs=epochs, device="cpu",
                                seed=seed)
            pretrain_once(config, all_records=True, overwrite=True, options=TrainOptions(timer=timer))
        conn.send("stop")
        return timer.throughput, conn.recv()
    finally:
        bare.join(timeout=60)
        if bare.is_alive():
            bare.kill()


def summary(values: list[float]) -> str:
    return f"min {min(values):.3f} median {statistics.median(values):.3f} max {max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="store folder (default: PTB-XL records500 ingested at 500 Hz)")
    parser.add_argument("--encoders", default="cnn,cnn_attn_lstm")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per measurement")
    parser.add_argument("--alternations", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default="/tmp/ecgcl-bench-bare-loop", help="where the default store is cached")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    store = Path(args.data) if args.data else Path(args.out) / "ptbxl500"
    if not store.exists():
        from ecgcl.data.ingest import ingest

        ingest(PTBXL, store, fs=500)
    signals = in_memory(store)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; {len(signals)} records of "
          f"{signals.shape[1]} x {signals.shape[2]}, batch {BATCH}, {args.epochs} epochs per measurement; "
          f"ratio = ecgcl / bare per alternation")
    for name in args.encoders.split(","):
        bare, ours = [], []
        for i in range(args.alternations):
            ecgcl_rate, bare_rate = lockstep(name, store, args.epochs, seed=i)
            ours.append(ecgcl_rate)
            bare.append(bare_rate)
            print(f"  {name} #{i + 1}: bare {bare[-1]:.1f} ECGs/s, ecgcl {ours[-1]:.1f} ECGs/s, "
                  f"ratio {ours[-1] / bare[-1]:.3f}", flush=True)
        ratios = [o / b for o, b in zip(ours, bare)]
        print(f"{name}: ecgcl / bare {summary(ratios)} (bare ECGs/s median {statistics.median(bare):.1f}, "
              f"ecgcl {statistics.median(ours):.1f})", flush=True)


if __name__ == "__main__":
    main()
