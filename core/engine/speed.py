"""Speed options of the training loops (bf16 autocast, torch.compile, data-loading workers and pinned memory)
and the per-step timer that measures how much of each step waits on data.

None of these change what is computed on CPU with the defaults, so the defaults keep runs bit-identical to
earlier versions. The CLI sets them for a whole command with `training_options(...)`; the loops read the
active options when their `options` argument is not given, so the protocol code needs no extra arguments.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch

from ecgcl.errors import EcgclError


@dataclass
class StepTimer:
    """Accumulates, over training steps, the wall time blocked waiting for the next batch (and its transfer
    to the device) and the whole step time, plus the number of recordings seen (over all ranks)."""

    skip: int = 0  # leading steps left out (warm-up, torch.compile's first graphs)
    data_wait_s: float = 0.0
    step_s: float = 0.0
    steps: int = 0
    samples: int = 0
    seen: int = 0
    preloaded: str = "off"  # where the batches came from (`ecgcl.engine.preload`), set by the loop

    def record(self, wait_s: float, step_s: float, samples: int) -> None:
        """Add one step (after the first `skip` steps)."""
        self.seen += 1
        if self.seen <= self.skip:
            return
        self.data_wait_s += wait_s
        self.step_s += step_s
        self.steps += 1
        self.samples += samples

    @property
    def data_fraction(self) -> float:
        """Fraction of step time spent waiting on data (0 when nothing was timed)."""
        return self.data_wait_s / self.step_s if self.step_s > 0 else 0.0

    @property
    def throughput(self) -> float:
        """Recordings per second over the timed steps (global batch when distributed)."""
        return self.samples / self.step_s if self.step_s > 0 else 0.0

    def summary(self) -> str:
        return (f"{self.throughput:.1f} ECGs/s over {self.steps} steps, "
                f"{100 * self.data_fraction:.1f}% of step time waiting on data (preload {self.preloaded})")


@dataclass
class TrainOptions:
    """How the loops run, not what they compute.

    - `bf16`: autocast the encoder and projection to bfloat16 (CUDA or CPU); losses stay in float32.
    - `compile`: `torch.compile` the encoder + projection (pretraining).
    - `workers`: DataLoader worker processes (0 reads in the training process); with workers, loading is
      persistent across epochs and prefetches `prefetch` batches per worker.
    - `pin_memory`: page-locked host batches with non-blocking copies; None = on when training on CUDA.
    - `sync_batchnorm`: under DDP on CUDA, convert BatchNorm to `nn.SyncBatchNorm` so statistics span all
      ranks (SyncBatchNorm is GPU-only; on CPU use `--encoder-arg norm=group` for rank-independent results).
    - `preload`: where the training records are read from (`ecgcl.engine.preload`): auto | off | ram | device;
      `preload_budget` (GB) replaces the free-memory figure `auto` and `ram` compare the pool with.
    - `timer`: a `StepTimer` the pretraining loop fills (data wait vs. step time).
    """

    bf16: bool = False
    compile: bool = False
    workers: int = 0
    pin_memory: bool | None = None
    prefetch: int = 2
    sync_batchnorm: bool = True
    preload: str = "auto"
    preload_budget: float | None = None
    timer: StepTimer | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        from ecgcl.config import PRELOAD_MODES

        if self.preload not in PRELOAD_MODES:
            raise EcgclError(f"--preload must be one of {', '.join(PRELOAD_MODES)}, got {self.preload!r}")
        if self.preload_budget is not None and not self.preload_budget > 0:
            raise EcgclError(f"--preload-budget must be a positive number of GB, got {self.preload_budget!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise EcgclError(f"--workers must be an integer >= 0, got {self.workers!r}")
        if not isinstance(self.prefetch, int) or self.prefetch < 1:
            raise EcgclError(f"prefetch must be an integer >= 1, got {self.prefetch!r}")

    def pin(self, device: torch.device) -> bool:
        return (device.type == "cuda") if self.pin_memory is None else bool(self.pin_memory and device.type == "cuda")

    def prepare(self, device: torch.device) -> None:
        """Per-run device settings: cuDNN's autotuner on CUDA, since every batch has the store's fixed shape (it
        picks each convolution's fastest algorithm once per shape; off, fp32 at 12 x 1000 ran slower than at 12
        x 5000). CPU runs are untouched, so they stay bit-identical."""
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def autocast(self, device: torch.device):
        """A bf16 autocast context on `device` when `bf16` is set (a disabled one otherwise)."""
        kind = device.type if device.type in ("cuda", "cpu", "mps") else "cpu"
        return torch.autocast(kind, dtype=torch.bfloat16, enabled=self.bf16)


_ACTIVE: ContextVar[TrainOptions | None] = ContextVar("ecgcl_train_options", default=None)


def current_options() -> TrainOptions:
    """The options set by the innermost `training_options` block (defaults outside any)."""
    return _ACTIVE.get() or TrainOptions()


@contextmanager
def training_options(options: TrainOptions) -> Iterator[TrainOptions]:
    """Make `options` the default of every training loop called inside the block."""
    token = _ACTIVE.set(options)
    try:
        yield options
    finally:
        _ACTIVE.reset(token)


def now(device: torch.device) -> float:
    """Wall clock after the device's queued work finished (so GPU time is charged to the right step)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


__all__ = ["StepTimer", "TrainOptions", "current_options", "now", "training_options"]
