"""What every record becomes (the ingest Plan), and the rate and length chosen when the user gives none.

Without `--fs`/`--length`, the most common sampling rate and record length among the records are used, not
those of whichever record sorts first: a folder of 500 Hz / 10 s records with one 257 Hz / 60 s record is
stored at 500 Hz / 10 s. Rates and lengths come from the readers' cheap `probe` (a header line for WFDB) of up
to `PROBE_LIMIT` records spread evenly over the source; the manifest then counts, over every record written,
how many differed (resampled, cropped, padded).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecgcl.data.leads import parse_lead_map, parse_leads
from ecgcl.data.preprocess import BandPass, check_band, parse_band
from ecgcl.data.records import BadRecord, Reader, RecordRef, load_records
from ecgcl.errors import EcgclError

PROBE_LIMIT = 2000       # records probed for the most common rate and length (evenly spread over the source)
LOAD_PROBE_LIMIT = 200   # as many when the reader has no cheap probe and records must be loaded
MAX_RECORD_VALUES = 2**31  # leads x samples of one store row: 8 GiB as float32
AMPLITUDE_FLAG_MV = 20.0  # a median lead peak-to-peak above this is implausible for mV (a unit is likely wrong)


@dataclass(frozen=True)
class Plan:
    """What every record becomes: these leads, at `fs` Hz, `samples` long (or windows of it every `stride`
    samples), optionally band-passed; lead names mapped by `lead_map`; records whose median peak-to-peak
    exceeds `max_amplitude` mV skipped."""

    leads: tuple[str, ...]
    fs: float
    samples: int
    band: BandPass | None = None
    pad: bool = False
    stride: int | None = None
    lead_map: Mapping[str, str] = field(default_factory=dict)
    max_amplitude: float | None = None

    @property
    def length(self) -> float:
        return self.samples / self.fs


def _spread(refs: Sequence[RecordRef], limit: int) -> list[RecordRef]:
    picks = np.unique(np.linspace(0, len(refs) - 1, min(len(refs), limit)).round().astype(int))
    return [refs[i] for i in picks]


def probe_shapes(reader: Reader, refs: Sequence[RecordRef]) -> list[tuple[float, int]]:
    """(fs, samples) of records spread evenly over `refs`: a cheap `probe` of up to PROBE_LIMIT of them, else
    loading up to LOAD_PROBE_LIMIT (in runs, through `load_many` when the reader has it); bad records left out."""
    if hasattr(reader, "probe"):
        shapes = [_probe(reader, ref) for ref in _spread(refs, PROBE_LIMIT)]
        if all(shape is not None for shape in shapes):
            return [shape for shape in shapes if _plausible(*shape)]
    picked = _spread(refs, LOAD_PROBE_LIMIT)
    loaded = [r for start in range(0, len(picked), 64) for r in load_records(reader, picked[start:start + 64])]
    return [(r.fs, r.signal.shape[-1]) for r in loaded if not isinstance(r, BadRecord)]


def _probe(reader: Reader, ref: RecordRef) -> tuple[float, int] | None:
    try:
        return reader.probe(ref)
    except Exception:  # noqa: BLE001  (a header too broken to probe is left to `load`, which skips it)
        return (math.nan, 0)


def _plausible(fs: float, samples: int) -> bool:
    """A probed shape worth counting: a positive finite rate and at least one sample (bad headers say anything)."""
    return math.isfinite(fs) and fs > 0 and samples > 0


def most_common(values: Sequence[float]) -> tuple[float, int]:
    """The most frequent value (the first seen among ties) and how many values differ from it."""
    value, count = Counter(values).most_common(1)[0]
    return value, len(values) - count


def infer_rate_and_length(reader: Reader, refs: Sequence[RecordRef], fs: float | None,
                          length: float | None) -> tuple[float, float, dict[str, Any]]:
    """Fill in a rate and length the user did not give with the most common among the records."""
    chosen: dict[str, Any] = {}
    if fs is not None and length is not None:
        return fs, length, chosen
    shapes = probe_shapes(reader, refs)
    if not shapes:
        first = load_records(reader, list(refs[:1]))[0]
        why = f" (the first: {first.category}: {first.detail})" if isinstance(first, BadRecord) else ""
        raise EcgclError(f"could not read any record of {reader.describe()} to infer --fs/--length{why}; give both "
                         "options")
    if fs is None:
        fs, differ = most_common([float(f) for f, _ in shapes])
        chosen["fs"] = {"value": fs, "rule": "most common sampling rate", "probed": len(shapes), "differ": differ}
    if length is None:
        length, differ = most_common([round(n / f, 3) for f, n in shapes])
        chosen["length"] = {"value": length, "rule": "most common record length (s)", "probed": len(shapes),
                            "differ": differ}
    return fs, length, chosen


def make_plan(reader: Reader, refs: Sequence[RecordRef], *, fs: float | None, length: float | None,
              leads: str | Sequence[str] | None, band: str | BandPass | None, pad: bool,
              windows: bool = False, window_stride: float | None = None, lead_map: str | Mapping | None = None,
              max_amplitude: float | None = None) -> tuple[Plan, dict[str, Any]]:
    """Resolve the options into a Plan, plus what was chosen for options left out (see the module docstring)."""
    chosen_leads = parse_leads(leads)
    mapping = parse_lead_map(lead_map)
    band = parse_band(band) if isinstance(band, str) or band is None else band
    for option, value, unit in (("--fs", fs, "Hz"), ("--length", length, "s"), ("--window-stride", window_stride, "s"),
                                ("--max-amplitude", max_amplitude, "mV")):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise EcgclError(f"{option} must be positive, got {value:g} {unit}")
    if (windows or window_stride is not None) and length is None:
        raise EcgclError("--windows/--window-stride need --length, the window length in seconds")
    fs, length, chosen = infer_rate_and_length(reader, refs, fs, length)
    if band is not None:
        check_band(band, fs)
    if length * fs * len(chosen_leads) > MAX_RECORD_VALUES:
        raise EcgclError(f"--length {length:g} s at {fs:g} Hz makes {length * fs:.3g} samples per lead, more than a "
                         f"store row can hold ({MAX_RECORD_VALUES:.3g} values, 8 GiB); choose a shorter --length "
                         "(or --windows)")
    samples = max(1, int(round(length * fs)))
    stride = None
    if window_stride is not None:
        stride = max(1, int(round(window_stride * fs)))
    elif windows:
        stride = samples
    return Plan(chosen_leads, float(fs), samples, band, pad, stride, mapping, max_amplitude), chosen
