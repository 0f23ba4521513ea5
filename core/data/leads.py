"""Lead names: one spelling for every dataset, and the standard 12-lead order.

Datasets spell the augmented limb leads `aVR`, `AVR` or `avr` and sometimes write `MLII` for lead II; we
normalise case and these aliases so that lead selection never depends on a dataset's spelling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgcl.errors import EcgclError

STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_CANONICAL = {name.upper(): name for name in STANDARD_LEADS}
_ALIASES = {"MLI": "I", "MLII": "II", "MLIII": "III", "LEAD I": "I", "LEAD II": "II", "LEAD III": "III"}


def normalise_lead_name(name: str) -> str:
    """The canonical spelling of a lead name (`avr` -> `aVR`, `v1` -> `V1`); unknown names are stripped only."""
    key = str(name).strip().upper()
    key = _ALIASES.get(key, key)
    return _CANONICAL.get(key, str(name).strip())


def parse_leads(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """Leads asked for by the user: None/'standard'/'12' mean the standard 12, else a comma-separated list."""
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "standard", "12")):
        return STANDARD_LEADS
    names = [s for s in (spec.split(",") if isinstance(spec, str) else spec)]
    leads = tuple(normalise_lead_name(n) for n in names if str(n).strip())
    if not leads:
        raise EcgclError(f"--leads {spec!r} names no lead; give e.g. 'I,II,V1' or 'standard'")
    duplicates = sorted({n for n in leads if leads.count(n) > 1})
    if duplicates:
        raise EcgclError(f"--leads names {', '.join(duplicates)} more than once")
    return leads


def lead_indices(available: Sequence[str], wanted: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Positions of `wanted` leads among a record's `available` names, and the wanted names that are absent."""
    position = {normalise_lead_name(n): i for i, n in enumerate(available)}
    missing = [n for n in wanted if n not in position]
    return np.array([position.get(n, -1) for n in wanted], dtype=np.int64), missing
