"""The options of an ingest, declared once: `ecgcl ingest`'s click options, `ingest()`'s keyword arguments and
the manifest's `options` record all come from the fields of `IngestOptions`.

Each field carries its command-line declaration in its metadata (help text, flag, metavar, value type, choices,
minimum) and how the manifest records it (under which key, or not at all; the given value, or the value the
ingest resolved it to). `ecgcl.cli.ingest` builds the click options from these fields, as `ecgcl.cli.config_options`
does for the training options of `ecgcl.config.RunConfig`. `ingest_option` is this module's own small
`ecgcl.config.option`: ingest options need a metavar, a minimum and a manifest key, and are taken by one
command only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from ecgcl.data.dtypes import STORE_DTYPES, check_store_dtype
from ecgcl.errors import EcgclError, did_you_mean

if TYPE_CHECKING:
    from ecgcl.data.label_table import LabelTable


def ingest_option(default: Any = None, help: str = "", *, type: type | None = None, flag: str | None = None,
                  metavar: str | None = None, choices: tuple[str, ...] | None = None, minimum: int | None = None,
                  cli: bool = True, record: str | bool = True, resolved: bool = False):
    """An ingest option and its command-line declaration.

    `type`: the command-line value type (`bool` makes a flag; default: the type of `default`, else `str`);
    `flag`: the option name (default `--field-name`); `choices`: the allowed values; `minimum`: the smallest
    integer allowed; `cli=False`: no option of its own (the CLI builds the value from other options).
    `record`: whether the manifest's `options` record it (`True`: under the field name; a string: under that
    key); `resolved=True`: the manifest records the value the ingest resolved it to (the leads chosen, the
    band-pass parsed), which `ingest` passes to `IngestOptions.recorded`.
    """
    value_type = type if type is not None else _value_type(default)
    metadata = {"help": help, "type": value_type, "flag": flag, "metavar": metavar, "choices": choices,
                "minimum": minimum, "cli": cli, "record": record, "resolved": resolved}
    return field(default=default, metadata=metadata)


def _value_type(default: Any) -> type:
    """The command-line type of a default value: bool, int, float, else str."""
    for candidate in (bool, int, float):
        if isinstance(default, candidate):
            return candidate
    return str


@dataclass
class IngestOptions:
    """Everything an ingest can be asked for besides its source and output folder.

    The field order is the order of `ecgcl ingest --help`. `labels` and `patient_from_name` are set on the
    command line through the label-table options that `ecgcl relabel` shares (`ecgcl.cli.label_options`).
    """

    format: str | None = ingest_option(
        None, "Read SOURCE with this reader (`ecgcl list-plugins --kind reader`) instead of recognising it from "
              "its content.", metavar="READER")
    fs: float | None = ingest_option(
        None, "Output sampling rate in Hz (default: the most common rate among the records).", type=float)
    length: float | None = ingest_option(
        None, "Output length (or window length) in seconds; longer records are cropped (default: the most common "
              "record length).", type=float)
    leads: str | Sequence[str] = ingest_option(
        "standard", "Comma-separated leads in output order, e.g. 'I,II,V1'; 'standard' = I, II, III, aVR, aVL, aVF, "
                    "V1-V6.", resolved=True)
    band: str | None = ingest_option(
        None, "Zero-phase Butterworth band-pass in Hz, e.g. 0.5-40 ('0.5-' high-pass).", flag="--filter",
        metavar="LOW-HIGH", record="filter", resolved=True)
    lead_map: str | Mapping[str, str] | None = ingest_option(
        None, "Extra lead names for this source, e.g. 'X1=I,X2=II' (DI/D1/Lead I/ECG I, C1-C6 ... are known).",
        metavar="NAME=LEAD,...", resolved=True)
    windows: bool = ingest_option(
        False, "Cut each record into consecutive --length windows (one row each) instead of keeping its first "
               "--length seconds.")
    window_stride: float | None = ingest_option(
        None, "Like --windows with a window every SECONDS (less than --length: overlapping windows).", type=float,
        metavar="SECONDS")
    pad: bool = ingest_option(
        False, "Zero-pad records (and last windows) shorter than --length instead of skipping them; valid_samples "
               "records the real length.")
    max_amplitude: float | None = ingest_option(
        None, "Skip records whose median lead peak-to-peak exceeds MV millivolts (those above 20 mV are flagged in "
              "the manifest either way).", type=float, metavar="MV")
    dtype: str = ingest_option(
        "float16", "Value type of the stored signals. float16 (the default) takes half the bytes of float32 on disk, "
                   "in the page cache and in read bandwidth, with values rounded to within 2^-11 of themselves (0.5 "
                   "uV at 1 mV, 2.4 uV at 5 mV), and skips records with values beyond +-65504 mV (a wrong unit); "
                   "float32 keeps exact copies of the source. Training reads float32 either way.",
        metavar="|".join(STORE_DTYPES))
    strict: bool = ingest_option(False, "Stop at the first bad record instead of skipping it.")
    workers: int | None = ingest_option(
        None, "Parallel workers (default: CPU count, at most 8).", type=int, minimum=1, record=False)
    overwrite: bool = ingest_option(False, "Replace OUT if it already exists.", record=False)
    limit: int | None = ingest_option(None, "Only the first N records (quick trials).", type=int, minimum=1)
    ptbxl_resolution: str | None = ingest_option(
        None, "PTB-XL: records100 (lr) or records500 (hr); default hr when --fs > 100, else lr.",
        choices=("lr", "hr"), record="resolution", resolved=True)
    min_likelihood: float = ingest_option(
        0.0, "PTB-XL: keep diagnostic statements with at least this likelihood when building labels.")
    labels: LabelTable | None = ingest_option(
        None, "A labels/patients table joined on record id (`ecgcl.data.label_table.read_label_table`).", cli=False,
        record=False)
    patient_from_name: str | None = ingest_option(
        None, r"Patient id = first group of REGEX searched in each record id, e.g. 'data_(\d+)_'.",
        metavar="REGEX")
    statements_as_labels: bool = ingest_option(
        False, "Clinical files: each record's labels are its interpretation statements (e.g. 'SINUS RHYTHM').")
    keep_patient_ids: bool = ingest_option(
        False, "Clinical files: keep patient and record ids as written instead of keyed hashes.")
    patient_salt: str | None = ingest_option(
        None, "Clinical files: the key of the patient/record id hashes (default: a random key kept in "
              "OUT.salt beside the store, reused by later ingests).", metavar="TEXT", record=False)

    def __post_init__(self) -> None:
        # checked here rather than as a click.Choice, whose usage error is three lines: `--dtype int8` is one
        check_store_dtype(self.dtype)

    @classmethod
    def from_values(cls, options: IngestOptions | None = None, **values: Any) -> IngestOptions:
        """`options` (default: all defaults) with `values` replacing fields; an unknown name is an EcgclError."""
        names = FIELD_NAMES
        for name in values:
            if name not in names:
                raise EcgclError(f"ingest has no option {name!r}{did_you_mean(name, names)}; the options are the "
                                 "fields of ecgcl.data.ingest_options.IngestOptions")
        return dataclasses.replace(options or cls(), **values)

    def recorded(self, resolved: Mapping[str, Any]) -> dict[str, Any]:
        """The manifest's `options`: every recorded field under its key, with the value the ingest resolved it to
        (`resolved`, by field name) for the fields declared `resolved`, else the value given."""
        record: dict[str, Any] = {}
        for f in fields(self):
            key = f.metadata["record"]
            if key is False:
                continue
            if f.metadata["resolved"] and f.name not in resolved:
                raise ValueError(f"ingest option {f.name} is recorded as resolved, but no resolved value was given")
            value = resolved[f.name] if f.metadata["resolved"] else getattr(self, f.name)
            record[f.name if key is True else key] = value
        return record


FIELD_NAMES = tuple(f.name for f in fields(IngestOptions))
RECORDED_KEYS = tuple(f.name if f.metadata["record"] is True else f.metadata["record"]
                      for f in fields(IngestOptions) if f.metadata["record"] is not False)


def declaration(name: str) -> Mapping[str, Any]:
    """The declaration (field metadata: help, flag, type ...) of the ingest option `name`."""
    return {f.name: f.metadata for f in fields(IngestOptions)}[name]


def option_flag(name: str) -> str:
    """The command-line flag of an ingest option (`band` -> `--filter`)."""
    return declaration(name)["flag"] or "--" + name.replace("_", "-")
