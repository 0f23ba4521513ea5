"""Padding declared by a file, told apart from real samples that happen to equal the padding value.

Some writers declare a padding value that real signals take (0, a trace at baseline). A reader marks the samples
equal to it (`RawRecord.padding`); here they count as padding only in runs of at least `MIN_GAP_S`: at the start
or end of a lead (the record is cropped to the span every lead covers; a lead that starts or ends that much
before the others has such a run), or a contiguous gap inside it. Shorter runs, at the ends or scattered
through a signal, are real values and stay. A record with a gap is skipped, or, with `--pad`, its gap samples
are set to zero and the rows covering them count fewer `valid_samples`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgcl.data.records import SIGNAL_GAP, BadRecord

MIN_GAP_S = 0.04  # 40 ms: no lead of a real ECG sits on one exact value that long, at its ends or inside
RULE = (f"samples at the declared padding value: runs of {MIN_GAP_S * 1000:g} ms or more at a lead's ends cropped, "
        f"gaps of {MIN_GAP_S * 1000:g} ms or more skipped (zero-filled under --pad), shorter runs kept as real values")


@dataclass
class PaddingFacts:
    """What was found: padding runs, samples cropped at the ends, samples in gaps (zero-filled under --pad)."""

    runs: int
    cropped: int
    gap_samples: int

    def as_dict(self) -> dict[str, int]:
        return {"runs": self.runs, "cropped_samples": self.cropped, "gap_samples": self.gap_samples}


def resolve_padding(signal: np.ndarray, padding: np.ndarray, fs: float,
                    pad: bool) -> tuple[np.ndarray, PaddingFacts, np.ndarray | None]:
    """(`signal` cropped to the span all leads cover, what was found, the gap mask over that span or None).

    Runs at a lead's ends shorter than `MIN_GAP_S` are signal (a trace at baseline on a padding value of 0).
    BadRecord (gap in signal) for a record with a gap unless `pad`, which zero-fills the gap instead.
    """
    samples = signal.shape[-1]
    mask = np.asarray(padding, dtype=bool)
    if mask.shape != signal.shape or not mask.any():
        return signal, PaddingFacts(0, 0, 0), None
    min_run = max(2, int(round(MIN_GAP_S * fs)))
    leading = _end_runs(mask, min_run)
    trailing = _end_runs(mask[:, ::-1], min_run)
    start, stop = int(leading.max()), samples - int(trailing.max())
    runs = int((leading > 0).sum() + (trailing > 0).sum())
    if stop <= start:
        return signal[:, :0], PaddingFacts(runs, samples, 0), None
    signal, mask = signal[:, start:stop], mask[:, start:stop]
    gap = _gap_samples(mask, min_run)
    facts = PaddingFacts(runs + _run_count(gap), samples - (stop - start), int(gap.any(axis=0).sum()))
    if not gap.any():
        return signal, facts, None
    if not pad:
        where = np.flatnonzero(gap.any(axis=0))
        raise BadRecord(SIGNAL_GAP, f"{facts.gap_samples} padding samples inside the signal from "
                                    f"{where[0] / fs:.3g} s (use --pad to zero-fill gaps)")
    return np.where(gap, 0, signal).astype(signal.dtype, copy=False), facts, gap.any(axis=0)


def _end_runs(mask: np.ndarray, min_run: int) -> np.ndarray:
    """Per lead, the padding samples at the start of `mask` (leads, samples): its leading run of True when that
    run is at least `min_run` long (the whole lead when it is all True), else 0 (a shorter run is signal)."""
    run = np.where(mask.all(axis=1), mask.shape[-1], np.argmax(~mask, axis=1))
    return np.where(run >= min_run, run, 0)


def _gap_samples(mask: np.ndarray, min_run: int) -> np.ndarray:
    """Samples of `mask` (leads, samples) inside a run of at least `min_run` True values along each lead."""
    if mask.shape[-1] < min_run:
        return np.zeros_like(mask)
    total = np.concatenate([np.zeros((mask.shape[0], 1), np.int64), np.cumsum(mask, axis=1)], axis=1)
    full = (total[:, min_run:] - total[:, :-min_run]) == min_run  # window starting at i is all padding
    starts = np.zeros_like(mask, dtype=np.int64)
    starts[:, : full.shape[1]] = full
    spread = np.cumsum(starts, axis=1)
    shifted = np.concatenate([np.zeros((mask.shape[0], min_run), np.int64), spread[:, :-min_run]], axis=1)
    return (spread - shifted) > 0


def _run_count(gap: np.ndarray) -> int:
    """Number of separate runs of True along each lead, summed over leads."""
    edges = np.diff(np.concatenate([np.zeros((gap.shape[0], 1), bool), gap], axis=1).astype(np.int8), axis=1)
    return int((edges == 1).sum())
