"""Explicit, recorded preprocessing: resample, band-pass filter, crop/pad and windows, vectorised over a batch.

All functions take arrays shaped (..., samples) so a whole chunk of records (records, leads, samples) is
processed in one scipy call. Resampling is polyphase (`scipy.signal.resample_poly`, exact for rational ratios);
filtering is a zero-phase Butterworth band-pass (`butter` + `sosfiltfilt`), the usual ECG choice because it
does not shift the waves in time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from scipy import signal as sps

from ecgcl.errors import EcgclError


@dataclass(frozen=True)
class BandPass:
    """A Butterworth filter: `low` Hz high-pass and/or `high` Hz low-pass (None leaves that side open)."""

    low: float | None
    high: float | None
    order: int = 4

    def __str__(self) -> str:
        return f"{'' if self.low is None else f'{self.low:g}'}-{'' if self.high is None else f'{self.high:g}'}"


def parse_band(spec: str | None) -> BandPass | None:
    """'0.5-40' -> band-pass, '0.5-' -> high-pass, '-40' -> low-pass, None/'none' -> no filter."""
    if spec is None or spec.strip().lower() in ("", "none", "off"):
        return None
    low_text, sep, high_text = spec.strip().partition("-")
    try:
        if not sep:
            raise ValueError
        low = float(low_text) if low_text.strip() else None
        high = float(high_text) if high_text.strip() else None
    except ValueError:
        raise EcgclError(f"--filter {spec!r} is not a band: expected LOW-HIGH in Hz, e.g. '0.5-40', '0.5-' or '-40'") from None
    if low is None and high is None:
        raise EcgclError(f"--filter {spec!r} gives neither a low nor a high cut-off")
    if any(v is not None and not (math.isfinite(v) and v > 0) for v in (low, high)) or (low and high and low >= high):
        raise EcgclError(f"--filter {spec!r}: cut-offs must be positive numbers of Hz with LOW < HIGH")
    return BandPass(low, high)


def check_band(band: BandPass, fs: float) -> None:
    """A clear error when the high cut-off is not below the Nyquist frequency of the output rate."""
    if band.high is not None and band.high >= fs / 2:
        raise EcgclError(f"--filter high cut-off {band.high:g} Hz must be below half the sampling rate ({fs / 2:g} Hz)")
    if band.low is not None and band.low >= fs / 2:
        raise EcgclError(f"--filter low cut-off {band.low:g} Hz must be below half the sampling rate ({fs / 2:g} Hz)")


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling along the last axis; a no-op when the rates agree."""
    if fs_in == fs_out:
        return x
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    y = sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    return y.astype(np.float32, copy=False)


def bandpass(x: np.ndarray, fs: float, band: BandPass) -> np.ndarray:
    """Zero-phase Butterworth filtering along the last axis."""
    check_band(band, fs)
    if band.low is not None and band.high is not None:
        sos = sps.butter(band.order, [band.low, band.high], btype="bandpass", fs=fs, output="sos")
    elif band.low is not None:
        sos = sps.butter(band.order, band.low, btype="highpass", fs=fs, output="sos")
    else:
        sos = sps.butter(band.order, band.high, btype="lowpass", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x, axis=-1).astype(np.float32, copy=False)


def crop_or_pad(x: np.ndarray, samples: int) -> np.ndarray:
    """The first `samples` samples; shorter signals are zero-padded at the end (callers decide if that is allowed)."""
    if x.shape[-1] >= samples:
        return x[..., :samples]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, samples - x.shape[-1])]
    return np.pad(x, pad)


def window_starts(length: int, samples: int, stride: int | None, pad: bool) -> np.ndarray:
    """Start samples of the rows cut from a `length`-sample record: one row (the first `samples`) without a
    stride, else consecutive windows every `stride` samples; a last partial window only when `pad` allows it."""
    if stride is None or length <= samples:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - samples + 1, stride, dtype=np.int64)
    tail = starts[-1] + stride
    if pad and tail < length and tail + samples > length:
        starts = np.append(starts, tail)
    return starts


def cut_windows(x: np.ndarray, samples: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (records x windows, leads, samples) from a (records, leads, length) batch and each row's valid
    sample count; windows running past the end are zero-padded. One gather, no loop over windows."""
    length = x.shape[-1]
    if len(starts) == 1 and starts[0] == 0:  # one row per record: a crop (or pad), no gather
        rows = crop_or_pad(x, samples)
        return np.ascontiguousarray(rows), np.full(x.shape[0], min(samples, length))
    need = int(starts[-1]) + samples
    if need > length:
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, need - length)])
    index = starts[:, None] + np.arange(samples)                   # (windows, samples)
    rows = x[:, :, index].transpose(0, 2, 1, 3).reshape(-1, x.shape[1], samples)
    valid = np.minimum(samples, length - starts)
    return np.ascontiguousarray(rows), np.tile(valid, x.shape[0])
