"""Small torch.distributed helpers the contrastive losses use to see the global batch.

`gather_with_grad` concatenates a tensor from every rank along dim 0 with
`torch.distributed.nn.functional.all_gather`, whose backward sums the gradients that every rank's loss
sends to each slice (a reduce-scatter). With each rank's loss taken as the mean over its own rows, DDP's
gradient averaging then equals the gradient of the single-process loss over the global batch
(the "global batch" of SimCLR, Chen et al., ICML 2020). Outside torch.distributed every helper is a no-op.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True when torch.distributed is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank in the default group (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """The number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def gather_with_grad(tensor: Tensor) -> Tensor:
    """All ranks' `tensor`s concatenated along dim 0, differentiable (backward sums into each rank's slice).

    Every rank must pass the same shape (use a sampler with `drop_last=True`). Returns `tensor` itself
    when not distributed or with a single process.
    """
    if world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

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


__all__ = ["gather_no_grad", "gather_with_grad", "is_distributed", "local_slice", "rank", "world_size"]
