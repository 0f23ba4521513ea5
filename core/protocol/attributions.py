"""Attributions of one class of a fine-tuned classifier over lead x time, with Captum.

Three methods, each a (leads, samples) map for one record and one class probability:
- `ig_zeros`: Integrated Gradients (Sundararajan et al., "Axiomatic attribution for deep networks", ICML 2017)
  from an all-zero input. Zeros is the usual baseline, but not a neutral ECG: a flat line at 0 mV has no
  baseline level and no complexes, so the attribution also credits the lead's offset.
- `ig_filtered`: Integrated Gradients from the record low-passed below 0.5 Hz (zero-phase Butterworth, order 2):
  the copy keeps the record's baseline wander and offset but none of its P-QRS-T morphology, so the path only
  adds the waveform and the attribution says which waves move the probability.
- `occlusion`: each lead x window (1 lead, `window` samples, no overlap) replaced by the same low-passed copy
  (Zeiler and Fergus, ECCV 2014); the attribution of a window is the probability it loses.
Window sums of these maps (`window_sums`) are what the CSV, the deletion curve and the randomisation test read.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor, nn

from ecgcl.errors import EcgclError

METHODS = ("ig_zeros", "ig_filtered", "occlusion")
LOW_PASS_HZ = 0.5
EXTRA = "ecgcl explain needs the explain extra: pip install 'ecgcl[explain]'"


def require_captum() -> None:
    """One line naming the extra when Captum is not installed."""
    try:
        import captum.attr  # noqa: F401
    except ImportError:
        raise EcgclError(EXTRA) from None


def class_score(model: nn.Module, index: int, kind: str) -> Callable[[Tensor], Tensor]:
    """(B, L, T) -> (B,) probability of class `index` (`kind` binary: 0 negative, 1 positive; multiclass: softmax;
    multilabel: that output's sigmoid), differentiable, for Captum's `forward_func`."""
    def score(batch: Tensor) -> Tensor:
        logits = model(batch).float()
        if kind == "multiclass":
            return torch.softmax(logits, dim=1)[:, index]
        if kind == "binary":
            positive = torch.sigmoid(logits[:, 0])
            return positive if index == 1 else 1 - positive
        return torch.sigmoid(logits[:, index])
    return score


def filtered_baseline(signal: Tensor, fs: float) -> Tensor:
    """The record low-passed below `LOW_PASS_HZ` along time (zero-phase), same shape and dtype."""
    from scipy.signal import butter, sosfiltfilt

    sos = butter(2, LOW_PASS_HZ, btype="lowpass", fs=fs, output="sos")
    pad = min(signal.shape[-1] - 1, 3 * (2 * len(sos) + 1))
    low = sosfiltfilt(sos, signal.detach().cpu().double().numpy(), axis=-1, padlen=pad)
    return torch.as_tensor(np.ascontiguousarray(low), dtype=signal.dtype, device=signal.device)


def attribute(score: Callable[[Tensor], Tensor], signal: Tensor, method: str, *, fs: float, window: int,
              steps: int = 32) -> Tensor:
    """(1, L, T) attributions of `score` at `signal` ((1, L, T)) by `method` (see the module docstring)."""
    from captum.attr import IntegratedGradients, Occlusion

    filtered = filtered_baseline(signal, fs)
    if method == "occlusion":
        values = Occlusion(score).attribute(signal, sliding_window_shapes=(1, window), strides=(1, window),
                                            baselines=filtered, perturbations_per_eval=64)
        return torch.nan_to_num(values)
    baseline = torch.zeros_like(signal) if method == "ig_zeros" else filtered
    return IntegratedGradients(score).attribute(signal, baselines=baseline, n_steps=steps,
                                                method="gausslegendre", internal_batch_size=steps)


def window_sums(values: np.ndarray, window: int) -> np.ndarray:
    """(L, T) -> (L, ceil(T / window)): the sum of each lead's values in each window (the last one shorter)."""
    leads, samples = values.shape
    count = -(-samples // window)
    padded = np.zeros((leads, count * window), dtype=np.float64)
    padded[:, :samples] = values
    return padded.reshape(leads, count, window).sum(axis=2)


def window_values(values: np.ndarray, method: str, window: int) -> np.ndarray:
    """(L, T) -> (L, windows): Integrated Gradients' sum per window (so all windows sum to f(x) - f(baseline));
    occlusion's probability change per window (Captum spreads it over each of the window's samples)."""
    sums = window_sums(values, window)
    if method != "occlusion":
        return sums
    sizes = np.full(sums.shape[1], window)
    sizes[-1] = values.shape[1] - window * (sums.shape[1] - 1)
    return sums / sizes


def lead_importance(values: np.ndarray) -> np.ndarray:
    """(L, T) -> (L,): each lead's share of the summed |attribution| (all zeros when there is none)."""
    per_lead = np.abs(values).sum(axis=1)
    total = per_lead.sum()
    return per_lead / total if total > 0 else per_lead
