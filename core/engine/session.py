"""One process's place in a (possibly single-process) training job: its device, and the process group of a
`torchrun` launch (NCCL for CUDA devices, gloo on CPU).

`distributed_session` reads the environment variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT); without them it is a single-process no-op, so the same code runs both ways.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ecgcl.distributed import is_distributed, launched_by_torchrun, rank, world_size
from ecgcl.engine.device import select_device
from ecgcl.errors import EcgclError


@dataclass(frozen=True)
class DistributedContext:
    """What one process of a (possibly single-process) run knows about its place in the job."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str | None  # None when not distributed

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int) -> torch.device:
    """The device of a process: `auto`/`cuda` become this node's GPU number `local_rank` under torchrun.

    Raises `EcgclError` (one line) when CUDA is asked for but absent, or a node has fewer GPUs than processes.
    """
    device = select_device(name)
    if device.type != "cuda":
        return device
    count = torch.cuda.device_count()
    index = device.index if device.index is not None and name not in ("auto", "cuda") else local_rank
    if index >= count:
        raise EcgclError(f"--device {name!r}: process with local rank {local_rank} needs GPU {index}, but this "
                         f"node has {count} (use --nproc-per-node <= {count})")
    return torch.device("cuda", index)


@contextmanager
def distributed_session(device: str = "auto", *, timeout_s: float = 1800.0) -> Iterator[DistributedContext]:
    """Initialise the default process group from torchrun's environment and tear it down on exit.

    Backend: NCCL when this process trains on a CUDA device, gloo otherwise (CPU). Outside torchrun, or with
    WORLD_SIZE=1, no group is created and the context describes a single process. The device is resolved
    first, so a CUDA request on a machine without CUDA fails with an `EcgclError` before any rendezvous.
    """
    if not launched_by_torchrun():
        yield DistributedContext(0, 0, 1, resolve_device(device, 0), None)
        return
    rank_, local_rank, world = (int(os.environ[k]) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    resolved = resolve_device(device, local_rank)
    if world == 1 or is_distributed():  # nothing to start, or a caller already started the group
        yield DistributedContext(rank(), local_rank, world_size(), resolved, dist.get_backend() if is_distributed() else None)
        return
    if not dist.is_available():
        raise EcgclError("this PyTorch build has no torch.distributed; run without torchrun")
    backend = "nccl" if resolved.type == "cuda" else "gloo"
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    kwargs = {"device_id": resolved} if resolved.type == "cuda" else {}
    dist.init_process_group(backend, rank=rank_, world_size=world, timeout=timedelta(seconds=timeout_s), **kwargs)
    try:
        yield DistributedContext(rank_, local_rank, world, resolved, backend)
    except BaseException:
        if dist.is_initialized():
            dist.destroy_process_group()
        raise
    if dist.is_initialized():
        dist.barrier()  # every rank done with the group before any tears it down (gloo aborts on a half-closed peer)
        dist.destroy_process_group()
