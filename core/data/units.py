"""Physical units of ECG leads: every store holds millivolts, so each lead's unit is converted at ingest.

WFDB headers name a unit per lead (`1000.0(0)/mV`, `/uV`, `/V`; an empty unit means mV by the WFDB spec).
Units are matched case-insensitively with the micro sign written `u`, `μ` (Greek mu) or `µ` (micro sign).
A lead in any other unit (`mmHg` of a blood-pressure channel, `NU` ...) cannot be an ECG lead in mV, so the
record is refused with the unit and the lead named, rather than stored at the wrong scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgcl.data.records import UNKNOWN_UNIT, BadRecord

#: unit (lower case, micro signs written `u`) -> factor that turns a value in that unit into mV
UNIT_TO_MV: dict[str, float] = {
    "": 1.0, "mv": 1.0, "millivolt": 1.0, "millivolts": 1.0,
    "uv": 1e-3, "microvolt": 1e-3, "microvolts": 1e-3,
    "nv": 1e-6,
    "v": 1e3, "volt": 1e3, "volts": 1e3,
}


def unit_key(unit: str | None) -> str:
    """The lookup key of a unit text: lower case, micro signs as `u`, no spaces."""
    return str(unit or "").strip().replace("μ", "u").replace("µ", "u").replace(" ", "").lower()


def mv_factors(units: Sequence[str | None], leads: Sequence[str]) -> np.ndarray:
    """Per-lead factors to mV for `units` of `leads`; BadRecord naming the first unknown unit and its lead."""
    factors = np.empty(len(units), dtype=np.float64)
    for i, (unit, lead) in enumerate(zip(units, leads)):
        factor = UNIT_TO_MV.get(unit_key(unit))
        if factor is None:
            raise BadRecord(UNKNOWN_UNIT, f"unit {str(unit)!r} on lead {lead} (expected mV, uV or V)")
        factors[i] = factor
    return factors
