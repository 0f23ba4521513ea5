"""Applying a robustness condition to a batch on its device: lead subsets, augmentations, resampling."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

import torch
from torch import Tensor

from ecgcl.errors import EcgclError
from ecgcl.robustness.conditions import Condition

Perturbation = Callable[[Tensor, torch.Generator], Tensor]


def keep_leads(names: Sequence[str], store_leads: Sequence[str]) -> Perturbation:
    """Zero every lead of the batch not in `names` (matched by name)."""
    from ecgcl.data.leads import normalise_lead_name

    wanted = {normalise_lead_name(n) for n in names}
    mask = torch.tensor([normalise_lead_name(n) in wanted for n in store_leads])

    def apply(batch: Tensor, generator: torch.Generator) -> Tensor:
        return batch.masked_fill(~mask.to(batch.device)[None, :, None], 0)

    return apply


def resample_down_up(fs: float, rate: float) -> Perturbation:
    """Polyphase resampling to `rate` Hz and back to `fs` (scipy.signal.resample_poly), same length."""
    from scipy.signal import resample_poly

    ratio = Fraction(rate / fs).limit_denominator(1000)

    def apply(batch: Tensor, generator: torch.Generator) -> Tensor:
        signal = batch.detach().to("cpu", torch.float64).numpy()
        low = resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1)
        back = resample_poly(low, ratio.denominator, ratio.numerator, axis=-1)[..., : signal.shape[-1]]
        out = torch.zeros_like(batch)
        out[..., : back.shape[-1]] = torch.from_numpy(back).to(batch.device, batch.dtype)
        return out

    return apply


def build_perturbation(condition: Condition, *, registry, store_leads: Sequence[str], fs: float) -> Perturbation:
    """The function that applies `condition` to a `(B, L, T)` batch with a generator on its device."""
    from ecgcl.compose import parse_augmentations
    from ecgcl.context import RuntimeContext

    if condition.keep_leads is not None:
        return keep_leads(condition.keep_leads, store_leads)
    if condition.resample_hz is not None:
        return resample_down_up(fs, condition.resample_hz)
    if condition.augmentation is not None:
        try:
            augmentation = parse_augmentations(condition.augmentation, registry,
                                               RuntimeContext(fs=float(fs), leads=tuple(store_leads)))
        except EcgclError as error:
            raise EcgclError(f"robustness condition {condition.augmentation!r}: {error}") from error
        return augmentation
    return lambda batch, generator: batch
