"""Small torch.distributed helpers the contrastive losses use to see the global batch.

`gather_with_grad` concatenates a tensor from every rank along dim 0 with
`torch.distributed.nn.functional.all_gather`, whose backward sums the gradients that every rank's loss
sends to each slice (a reduce-scatter). With each rank's loss taken as the mean over its own rows, DDP's
gradient averaging then equals the gradient of the single-process loss over the global batch
(the "global batch" of SimCLR, Chen et al., ICML 2020). Outside torch.distributed every helper is a no-op.

`distributed_session` starts and ends the process group of a `torchrun` launch (NCCL for CUDA devices,
gloo on CPU), reading the environment variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT); without them it is a single-process no-op, so the same code runs both ways.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import Tensor

from ecgcl.errors import EcgclError

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def is_distributed() -> bool:
    """True when torch.distributed is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the default group (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (and in a single process): the one process that writes files and prints progress."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op outside torch.distributed)."""
    if world_size() > 1:
        dist.barrier()


def launched_by_torchrun() -> bool:
    """True when this process was started by torchrun (`torch.distributed.run`), which sets WORLD_SIZE etc."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def env_world_size() -> int:
    """WORLD_SIZE from torchrun's environment (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1")) if launched_by_torchrun() else 1


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
    from ecgcl.engine.device import select_device

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
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def all_reduce_sum(values: list[float], device: torch.device | None = None) -> list[float]:
    """Sum a few floats over all ranks (float64); returned unchanged outside torch.distributed."""
    if world_size() == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def gather_with_grad(tensor: Tensor) -> Tensor:
    """All ranks' `tensor`s concatenated along dim 0, differentiable (backward sums into each rank's slice).

    Every rank must pass the same shape (use a sampler with `drop_last=True`). Returns `tensor` itself
    when not distributed or with a single process.
    """
    if world_size() == 1:
        return tensor
    import warnings

    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # deprecated in favour of a private API; still the autograd-aware gather
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(tensor), dim=0)


def gather_no_grad(tensor: Tensor) -> Tensor:
    """All ranks' `tensor`s concatenated along dim 0, without autograd (for labels such as patient ids)."""
    if world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)


def local_slice(local_size: int) -> slice:
    """The rows of a gathered tensor that belong to this rank, given the per-rank batch size."""
    start = rank() * local_size
    return slice(start, start + local_size)


__all__ = ["DistributedContext", "all_reduce_sum", "barrier", "distributed_session", "env_world_size",
           "gather_no_grad", "gather_with_grad", "is_distributed", "is_main_process", "launched_by_torchrun",
           "local_slice", "rank", "resolve_device", "world_size"]
