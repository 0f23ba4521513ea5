"""Lead names: one alias table for every dataset's spelling, the standard 12-lead order, and user lead maps.

Datasets spell the same lead many ways: `I`, `DI`, `D1`, `Lead I`, `ECG I`, `MLI` (CODE-15 and some Holter
exports use the Einthoven `D` names), `aVR`, `AVR`, `avr`, `Lead aVR`, and the precordial leads `V1..V6` or
`C1..C6` (the IEC names). Matching is case-insensitive and ignores `Lead`/`ECG` prefixes and separators, so
`ecg_lead_avr` is `aVR`. Anything the table does not know can be named with a user lead map
(`--lead-map 'X1=I,X2=II'`). Stores always hold canonical names, so checkpoints work across datasets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from ecgcl.errors import EcgclError

STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _alias_table() -> dict[str, str]:
    """Upper-case key (prefixes and separators removed) -> canonical lead name."""
    table = {name.upper(): name for name in STANDARD_LEADS}
    for number, limb in enumerate(("I", "II", "III"), start=1):
        table.update({f"D{limb}": limb, f"D{number}": limb, f"ML{limb}": limb})
    for limb in ("R", "L", "F"):
        table[f"V{limb}"] = f"aV{limb}"  # some exports drop the `a` of the augmented leads
    for number in range(1, 7):
        table[f"C{number}"] = f"V{number}"
    return table


LEAD_ALIASES: dict[str, str] = _alias_table()
_PREFIX = re.compile(r"^(?:ECG|EKG)?[\s_\-.:]*(?:LEAD)?[\s_\-.:]*")


@lru_cache(maxsize=4096)
def _canonical(text: str) -> str:
    key = _PREFIX.sub("", re.sub(r"[\s_\-.:]+", " ", text.upper())).replace(" ", "")
    return LEAD_ALIASES.get(key, LEAD_ALIASES.get(text.upper(), text))


def normalise_lead_name(name: str, lead_map: Mapping[str, str] | None = None) -> str:
    """The canonical name of a lead (`avr`, `Lead aVR` -> `aVR`; `DI`, `ECG I` -> `I`; `C1` -> `V1`).

    `lead_map` (from `parse_lead_map`) is consulted first, on the name as written (case-insensitive); names
    neither knows are returned stripped, unchanged.
    """
    text = str(name).strip()
    if lead_map:
        mapped = lead_map.get(text.upper())
        if mapped is not None:
            return mapped
    return _canonical(text)


def parse_lead_map(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """`'DI=I,DII=II'` -> {'DI': 'I', 'DII': 'II'} (keys upper-cased, targets canonical); EcgclError when malformed."""
    if not spec:
        return {}
    pairs = list(spec.items()) if isinstance(spec, Mapping) else [part.partition("=")[::2] for part in
                                                                    str(spec).split(",") if part.strip()]
    mapping: dict[str, str] = {}
    for source, target in pairs:
        source, target = str(source).strip(), str(target).strip()
        if not source or not target:
            raise EcgclError(f"--lead-map {spec!r}: expected NAME=LEAD pairs separated by commas, e.g. 'DI=I,DII=II'")
        mapping[source.upper()] = normalise_lead_name(target)
    return mapping


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


def lead_indices(available: Sequence[str], wanted: Sequence[str],
                 lead_map: Mapping[str, str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Positions of `wanted` leads among a record's `available` names, and the wanted names that are absent.

    When two of a record's channels map to the same lead, the first one is used.
    """
    position: dict[str, int] = {}
    for i, name in enumerate(available):
        position.setdefault(normalise_lead_name(name, lead_map), i)
    missing = [n for n in wanted if n not in position]
    return np.array([position.get(n, -1) for n in wanted], dtype=np.int64), missing


# The limb leads Einthoven's and Goldberger's relations give from I and II (many carts store I, II, V1-V6 only).
LIMB_DERIVATIONS: dict[str, tuple[float, float]] = {  # lead -> (weight of I, weight of II)
    "III": (-1.0, 1.0), "aVR": (-0.5, -0.5), "aVL": (1.0, -0.5), "aVF": (-0.5, 1.0)}


def derivable(missing: Sequence[str], available: Sequence[str], lead_map: Mapping[str, str] | None = None) -> bool:
    """Whether every `missing` lead is a limb lead that I and II (both among `available`) give."""
    names = {normalise_lead_name(n, lead_map) for n in available}
    return bool(missing) and {"I", "II"} <= names and all(n in LIMB_DERIVATIONS for n in missing)


def derive_limb_leads(lead_i: np.ndarray, lead_ii: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The limb leads `names` (each a key of LIMB_DERIVATIONS) from leads I and II (same units), stacked:
    III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2."""
    weights = np.array([LIMB_DERIVATIONS[n] for n in names], dtype=np.float32)  # (derived, 2)
    return weights @ np.stack([lead_i, lead_ii]).astype(np.float32)
