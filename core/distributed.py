"""Small torch.distributed helpers the contrastive losses use to see the global batch.

`gather_with_grad` concatenates a tensor from every rank along dim 0 with
`torch.distributed.nn.functional.all_gather`, whose backward sums the gradients that every rank's loss
sends to each slice (a reduce-scatter). With each rank's loss taken as the mean over its own rows, DDP's
gradient averaging then equals the gradient of the single-process loss over the global batch
(the "global batch" of SimCLR, Chen et al., ICML 2020). Outside torch.distributed every helper is a no-op.

`launched_by_torchrun` reads the environment variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT); starting the process group on the right device is `ecgcl.engine.session`.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import Tensor


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


__all__ = ["all_reduce_sum", "barrier", "env_world_size", "gather_no_grad", "gather_with_grad", "is_distributed",
           "is_main_process", "launched_by_torchrun", "local_slice", "rank", "world_size"]
