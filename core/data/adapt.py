"""A store seen at another sampling rate and record length: how a pretrained encoder meets a downstream store.

`ecgcl finetune --checkpoint` and `ecgcl run --pretrained` both call `adapt_to_encoder` when they open the
store, so a store ingested at another rate or length is mapped onto the encoder's, never refused (leads are
mapped by name separately, `ecgcl.engine.lead_mapping`):

- rate: the signals are resampled once to the encoder's rate with `scipy.signal.resample_poly` (the rational
  ratio of the two rates, as ingest resamples; `ecgcl.data.preprocess.resample`), one vectorised call per chunk
  of records over all leads;
- length: the classifier never needs the pretraining length. `ecgcl.engine.model.embed` cuts every record into
  `len // window` consecutive windows of the encoder's `window` samples and averages their embeddings (the
  remainder is dropped, as for a store of the pretraining length), so records of any length >= window are taken
  as they are and not cropped; only records shorter than one window are zero-padded at the end to `window`.

The adapted signals are an in-memory copy (downstream labelled sets are small); the copy is an `ECGStore` with
the same path, hash, metadata and leads, whose `fs` and manifest report the new rate and length.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

import numpy as np

from ecgcl.errors import EcgclError

CHUNK_BYTES = 64 << 20  # float32 input resampled per call: bounds the float64 temporaries of resample_poly


def resampled_length(samples: int, fs_in: float, fs_out: float) -> int:
    """The length `scipy.signal.resample_poly` gives `samples` samples resampled from `fs_in` to `fs_out`."""
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    return -(-samples * ratio.numerator // ratio.denominator)


def adapted_signals(signals: np.ndarray, fs_in: float, fs_out: float, window: int) -> np.ndarray:
    """(records, leads, samples) resampled from `fs_in` to `fs_out` in chunks of records, then zero-padded at the
    end to `window` samples when shorter; float32."""
    from ecgcl.data.preprocess import resample

    n, leads, samples = signals.shape
    length = resampled_length(samples, fs_in, fs_out)
    out = np.zeros((n, leads, max(length, window)), dtype=np.float32)
    step = max(1, CHUNK_BYTES // max(1, leads * samples * 4))
    for start in range(0, n, step):
        block = np.asarray(signals[start:start + step], dtype=np.float32)
        out[start:start + step, :, :length] = resample(block, fs_in, fs_out)
    return out


def adapt_to_encoder(store: Any, meta: dict[str, Any], *, source: str) -> tuple[Any, str | None]:
    """`store` as the encoder of checkpoint metadata `meta` (its `fs`, `window`) takes it, and a one-line note of
    what was mapped (None, and the store itself, when nothing needed mapping). `source` names the checkpoint."""
    fs_in, fs_out = float(store.fs), float(meta["fs"])
    window = int(meta.get("window", meta["length"]))
    samples = int(store.signals.shape[2])
    if fs_in <= 0 or fs_out <= 0:
        raise EcgclError(f"store {store.path} ({fs_in:g} Hz) cannot be resampled for {source} ({fs_out:g} Hz): "
                         "sampling rates must be positive")
    length = samples if fs_in == fs_out else resampled_length(samples, fs_in, fs_out)
    if length < 2:
        raise EcgclError(f"store {store.path} has {samples} samples at {fs_in:g} Hz: {length} sample(s) at the "
                         f"{fs_out:g} Hz of {source}; at least 2 are needed")
    if fs_in == fs_out and samples >= window:
        return store, None
    signals = adapted_signals(store.signals, fs_in, fs_out, window)
    steps = [f"resampled to {fs_out:g} Hz ({length} samples)"] if fs_in != fs_out else []
    if length < window:
        steps.append(f"zero-padded at the end to {window} samples")
    manifest = {**store.manifest, "fs": fs_out, "length": int(signals.shape[2]),
                "adapted": {"from_fs": fs_in, "from_length": samples, "for": source}}
    metadata = store.metadata.assign(fs=fs_out) if "fs" in store.metadata.columns else store.metadata
    adapted = dataclasses.replace(store, signals=signals, metadata=metadata, manifest=manifest)
    note = (f"store {store.path} is {fs_in:g} Hz x {samples} samples; {' and '.join(steps)} for {source} "
            f"({fs_out:g} Hz, {window}-sample windows)")
    return adapted, note


__all__ = ["adapt_to_encoder", "adapted_signals", "resampled_length"]
