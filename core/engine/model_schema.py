"""The declared schema of a model's metadata (a checkpoint's `meta`, an export folder's `config.json`).

A model folder may come from anywhere (a colleague, a download, the Hub), so every field that rebuilds the
model is checked before anything is built: types, ranges (fs > 0, sizes positive and bounded), lead names
named and distinct, a known input representation, an encoder name a registry could hold. A violation is one
`EcgclError` line naming the file, the field and what was expected. The bounds are generous (a 24-hour Holter
at 1 kHz, a 64k-wide embedding) and only keep a typo from sizing tensors; whether the weights fit the model
is `ecgcl.engine.weights_fit`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecgcl.config import INPUTS
from ecgcl.data.leads import normalise_lead_name
from ecgcl.errors import EcgclError
from ecgcl.interfaces import TARGET_KINDS
from ecgcl.registry import NAME_PATTERN

MAX_FS = 1e6  # Hz
MAX_SAMPLES = 100_000_000  # a 24-hour recording at 1 kHz is 86.4 million
MAX_LEADS = 256
MAX_SIZE = 65_536  # embedding size, outputs
MAX_LEAD_NAME = 64


@dataclass(frozen=True)
class Field:
    """One metadata field: whether a model needs it, the check of its value, and what that check expects."""

    name: str
    check: Callable[[Any], bool]
    expected: str
    required: bool = True


def _integer(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _number(low: float, high: float, *, open_low: bool = False) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return False
        return (low < v if open_low else low <= v) and v <= high
    return check


def _lead_names(v: Any) -> bool:
    return (isinstance(v, list) and 0 < len(v) <= MAX_LEADS
            and all(isinstance(n, str) and 0 < len(n.strip()) <= MAX_LEAD_NAME for n in v)
            and len({normalise_lead_name(n) for n in v}) == len(v))


def _options(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and k.isidentifier() for k in v) and \
        all(_plain_value(x) for x in v.values())


def _plain_value(v: Any) -> bool:
    if isinstance(v, (list, tuple)):
        return len(v) <= 1024 and all(_plain_value(x) for x in v)
    return v is None or isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v))


def _preprocessing(v: Any) -> bool:
    """A table whose `options.filter`, the band-pass embedding repeats on new records, is a band or none."""
    from ecgcl.data.preprocess import parse_band

    if not isinstance(v, dict) or not isinstance(v.get("options", {}), dict):
        return False
    band = v.get("options", {}).get("filter")
    if band is None:
        return True
    try:
        return isinstance(band, str) and (parse_band(band) is None or True)
    except EcgclError:
        return False


ENCODER_FIELDS: tuple[Field, ...] = (
    Field("encoder", lambda v: isinstance(v, str) and bool(NAME_PATTERN.match(v)),
          "a component name such as 'cnn' (lower case letters, digits and _)"),
    Field("encoder_args", _options, "a table of option names to numbers, strings or lists"),
    Field("embed_dim", _integer(1, MAX_SIZE), f"a whole number from 1 to {MAX_SIZE}"),
    Field("fs", _number(0.0, MAX_FS, open_low=True), f"a sampling rate in Hz above 0 and at most {MAX_FS:g}"),
    Field("leads", _lead_names, "a non-empty list of distinct lead names such as ['I', 'II', 'V1']"),
    Field("num_leads", _integer(1, MAX_LEADS), f"a whole number from 1 to {MAX_LEADS}"),
    Field("length", _integer(1, MAX_SAMPLES), f"a number of samples from 1 to {MAX_SAMPLES:,}"),
    Field("window", _integer(1, MAX_SAMPLES), f"a number of samples from 1 to {MAX_SAMPLES:,}"),
    Field("representation", lambda v: v in INPUTS, f"one of {', '.join(INPUTS)}"),
    Field("encoder_leads", lambda v: v is None or _lead_names(v), "a list of distinct lead names",
          required=False),
    Field("preprocessing", _preprocessing, "a table whose options.filter is a band such as '0.5-40', or none",
          required=False),
)
CLASSIFIER_FIELDS: tuple[Field, ...] = (
    Field("num_outputs", _integer(1, MAX_SIZE), f"a whole number from 1 to {MAX_SIZE}"),
    Field("target_kind", lambda v: v in TARGET_KINDS, f"one of {', '.join(TARGET_KINDS)}"),
    Field("dropout", _number(0.0, 1.0), "a number from 0 to 1", required=False),
    Field("class_names", lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v), "a list of class names",
          required=False),
)
MODEL_KINDS = {"encoder": ENCODER_FIELDS, "pretrain": ENCODER_FIELDS,
               "classifier": ENCODER_FIELDS + CLASSIFIER_FIELDS, "classifier-last": ENCODER_FIELDS + CLASSIFIER_FIELDS}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def validate_meta(meta: Any, *, kind: str, source: str, prefix: str = "meta.") -> dict[str, Any]:
    """`meta` itself when every field a `kind` model is rebuilt from holds what the schema expects; else one
    EcgclError line: `SOURCE: field meta.fs is 0; expected a sampling rate in Hz above 0 ...`."""
    if not isinstance(meta, dict):
        raise EcgclError(f"{source}: {prefix.rstrip('.') or 'meta'} is {type(meta).__name__}, expected a table of "
                         "model fields")
    for field in MODEL_KINDS.get(kind, ENCODER_FIELDS):
        if field.name not in meta:
            if field.required:
                raise EcgclError(f"{source}: field {prefix}{field.name} is missing; expected {field.expected}")
            continue
        if not field.check(meta[field.name]):
            raise EcgclError(f"{source}: field {prefix}{field.name} is {_show(meta[field.name])}; "
                             f"expected {field.expected}")
    _check_agreement(meta, kind=kind, source=source, prefix=prefix)
    return meta


def _check_agreement(meta: dict[str, Any], *, kind: str, source: str, prefix: str) -> None:
    """Fields that must agree with each other (leads and their count, window within the record)."""
    if len(meta["leads"]) != meta["num_leads"]:
        raise EcgclError(f"{source}: field {prefix}num_leads is {meta['num_leads']}, but {prefix}leads names "
                         f"{len(meta['leads'])} leads; expected the two to agree")
    if meta["window"] > meta["length"]:
        raise EcgclError(f"{source}: field {prefix}window is {meta['window']}, longer than {prefix}length "
                         f"{meta['length']}; expected a window within the record")
    names = meta.get("class_names")
    if kind in ("classifier", "classifier-last") and names and meta["target_kind"] != "binary" \
            and len(names) != meta["num_outputs"]:
        raise EcgclError(f"{source}: field {prefix}class_names lists {len(names)} classes, but {prefix}num_outputs "
                         f"is {meta['num_outputs']}; expected one name per output")


__all__ = ["CLASSIFIER_FIELDS", "ENCODER_FIELDS", "Field", "MODEL_KINDS", "validate_meta"]
