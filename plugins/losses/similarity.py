"""The similarity logits both contrastive losses share, computed in float32 over the global batch.

For the B local recordings with projections z1, z2 (two views), the anchors are the 2B local rows
[z1; z2] and the candidates are the 2N rows [Z1; Z2] of the whole batch gathered from every rank
(N = B * world size). Each anchor's own column is masked out, as in SimCLR's NT-Xent (Chen et al., 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ecgcl.distributed import gather_no_grad, gather_with_grad, rank
from ecgcl.errors import EcgclError


def check_temperature(loss: str, temperature: float) -> float:
    """The temperature as a float, or `EcgclError` naming the loss when it is not positive."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise EcgclError(f"loss {loss!r}: temperature must be a positive number, got {temperature!r}")
    return float(temperature)


def check_views(loss: str, z1: Tensor, z2: Tensor) -> None:
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise EcgclError(f"loss {loss!r} expects two (batch, dim) tensors of equal shape, got "
                         f"{tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] < 1:
        raise EcgclError(f"loss {loss!r} needs at least one recording per batch")


@dataclass
class PairLogits:
    """Masked logits of local anchors against global candidates, with the index bookkeeping."""

    logits: Tensor  # (2B, 2N) float32; each anchor's own column is -inf
    self_mask: Tensor  # (2B, 2N) bool, True at each anchor's own column
    positive_view: Tensor  # (2B,) column of each anchor's other view
    local: int  # B
    total: int  # N


def pair_logits(z1: Tensor, z2: Tensor, temperature: float) -> PairLogits:
    """Cosine similarities / temperature of the 2B local anchors against all 2N candidates (float32 inside)."""
    dtype = torch.promote_types(z1.dtype, torch.float32)
    with torch.autocast(device_type=z1.device.type, enabled=False):
        anchors = F.normalize(torch.cat([z1, z2]).to(dtype), dim=1)  # (2B, D)
        b = z1.shape[0]
        every1 = gather_with_grad(anchors[:b])
        every2 = gather_with_grad(anchors[b:])
        n = every1.shape[0]
        candidates = torch.cat([every1, every2])  # (2N, D)
        logits = anchors @ candidates.T / temperature
        local = torch.arange(b, device=z1.device) + rank() * b
        own = torch.cat([local, local + n])
        positive_view = torch.cat([local + n, local])
        columns = torch.arange(2 * n, device=z1.device)
        self_mask = columns.unsqueeze(0) == own.unsqueeze(1)
        logits = logits.masked_fill(self_mask, float("-inf"))
    return PairLogits(logits, self_mask, positive_view, b, n)


def as_patient_ids(loss: str, patient_ids: object, batch: int, device: torch.device) -> Tensor:
    """Patient ids as an int64 tensor of shape (batch,) on `device`, or `EcgclError`."""
    try:
        ids = torch.as_tensor(patient_ids, device=device)
    except (TypeError, ValueError, RuntimeError) as error:
        raise EcgclError(f"loss {loss!r}: patient_ids must be integers, one per recording ({error})") from error
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise EcgclError(f"loss {loss!r}: patient_ids must be integers, got dtype {ids.dtype}")
    if ids.shape != (batch,):
        raise EcgclError(f"loss {loss!r}: patient_ids must have shape ({batch},), got {tuple(ids.shape)}")
    return gather_no_grad(ids.to(torch.int64))


__all__ = ["PairLogits", "as_patient_ids", "check_temperature", "check_views", "pair_logits"]
