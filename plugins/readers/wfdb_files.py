"""WFDB record files read with `wfdb` (the MIT Laboratory for Computational Physiology's package): one record
as (leads, samples) in its header units, with the checks that keep a hostile header from hanging or exhausting
ingest (regular files only, signal files confined to the record's folder, sizes checked before allocating).

Values come back in each lead's header unit (`/mV`, `/uV` ...) with the names as written; ingest converts both.
A header that names a `.mat` file with a byte offset (`A0001.mat 16+24 ...`) is read by `wfdb` like any other
format-16 file, so the challenge layout needs no special code. Header comments such as `#Age: 54`, `#Sex: Male`
and `#Dx: 164889003` (the challenge convention) become metadata columns.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
import wfdb

from ecgcl.data.records import (CORRUPT_HEADER, TRUNCATED_SIGNAL, UNREADABLE, BadRecord, RawRecord, check_rate,
                                confined_file)
from ecgcl.errors import EcgclError
from ecgcl.plugins.readers.header_comments import parse_comments


def find_headers(root: Path) -> list[Path]:
    """Every `.hea` under `root` (or `root` itself when it is a header), sorted for a stable record order."""
    if root.is_file():
        if root.suffix != ".hea":
            raise EcgclError(f"{root} is not a WFDB header (.hea) file")
        return [root]
    return sorted(root.rglob("*.hea"))


def read_wfdb(record_path: str | os.PathLike) -> RawRecord:
    """One WFDB record (path without extension) as (leads, samples) float32 in its header units; BadRecord when bad.

    Plain single-file format-16 records (PTB-XL, the CinC `.mat` layout) take a fast path that gives the same
    values as `wfdb.rdrecord`: wfdb 4.3's header parser costs ~25 ms a record with pandas 3, ten times the
    signal read. Anything else, and every record the fast path rejects, goes through `wfdb.rdrecord` once its
    header passed the same checks: a positive sampling rate, signal files that are regular files in the
    record's own folder, and files large enough for the samples the header promises (checked before anything
    is allocated, so a header claiming 1e11 samples is a skip, not a 2 TiB allocation).
    """
    record_path = str(record_path)
    _check_regular(Path(record_path + ".hea"))
    fast = _read_format16(record_path)
    if fast is not None:
        return fast
    header = _read_header(record_path)
    check_rate(header.fs)
    _check_signal_files(header, Path(record_path).parent)
    try:
        record = wfdb.rdrecord(record_path, return_res=32)
    except Exception as error:  # noqa: BLE001  (wfdb raises many types for bad files; we classify them)
        if isinstance(error, ValueError) and "reshape" in str(error):
            raise BadRecord(TRUNCATED_SIGNAL, f"signal file too small for {header.sig_len} samples") from None
        raise BadRecord(UNREADABLE, f"{type(error).__name__}: {error}") from None
    signal = record.p_signal
    if signal is None or signal.ndim != 2 or signal.shape[0] != record.sig_len:
        got = 0 if signal is None else signal.shape[0]
        raise BadRecord(TRUNCATED_SIGNAL, f"{got} of {record.sig_len} samples in the signal file")
    return RawRecord(np.ascontiguousarray(signal.T, dtype=np.float32), check_rate(record.fs), list(record.sig_name),
                     parse_comments(record.comments or []), list(record.units or [""] * len(record.sig_name)))


_SIGNAL_LINE = re.compile(
    r"^(?P<file>\S+)\s+16(?:\+(?P<offset>\d+))?\s+(?P<gain>[-+0-9.eE]+)(?:\((?P<baseline>-?\d+)\))?(?:/(?P<units>\S*))?"
    r"(?:\s+\d+(?:\s+(?P<zero>-?\d+))?)?")
# bits per sample of the uncompressed WFDB formats, to check a signal file's size against the header's length
_FORMAT_BITS = {"8": 8, "16": 16, "24": 24, "32": 32, "61": 16, "80": 8, "160": 16, "212": 12, "310": 10, "311": 32 / 3}
MAX_SAMPLES = 2**31  # samples x signals a compressed (FLAC) record may claim: 8 GiB as float32


def _check_regular(header: Path) -> None:
    """The header must be a regular file: opening a FIFO named `x.hea` would block ingest forever."""
    try:
        mode = header.stat().st_mode
    except OSError:
        raise BadRecord(UNREADABLE, f"header {header.name} is missing or unreadable") from None
    if not stat.S_ISREG(mode):
        raise BadRecord(UNREADABLE, f"header {header.name} is not a regular file")


def _read_header(record_path: str):
    try:
        return wfdb.rdheader(record_path)
    except Exception as error:  # noqa: BLE001  (wfdb raises many types for a bad header)
        raise BadRecord(CORRUPT_HEADER, f"{type(error).__name__}: {error}") from None


def _check_signal_files(header, folder: Path) -> None:
    """Every signal file is confined to `folder`, a regular file, and large enough for `sig_len` samples."""
    if not header.file_name:
        return
    formats = [str(f) for f in (header.fmt or [])]
    offsets = list(header.byte_offset or [])
    for name in dict.fromkeys(header.file_name):
        path = confined_file(folder, name)
        if not header.sig_len:
            continue  # wfdb derives the length from the file size
        bits = [_FORMAT_BITS.get(f) for f, n in zip(formats, header.file_name) if n == name]
        if None in bits or not bits:
            if header.sig_len * header.n_sig > MAX_SAMPLES:
                raise BadRecord(CORRUPT_HEADER, f"header claims {header.sig_len} samples x {header.n_sig} signals")
            continue
        offset = next((o or 0 for o, n in zip(offsets, header.file_name) if n == name), 0)
        needed = offset + int(header.sig_len * sum(bits) / 8)
        if path.stat().st_size < needed:
            raise BadRecord(TRUNCATED_SIGNAL, f"{name} holds {path.stat().st_size} bytes; the header's "
                                              f"{header.sig_len} samples need {needed}")


def _read_format16(record_path: str) -> RawRecord | None:
    """The fast path: None whenever the header is anything but plain single-file format 16."""
    try:
        with open(record_path + ".hea") as handle:
            lines = [line.strip() for line in handle]
    except (OSError, UnicodeDecodeError):
        return None
    comments = [line.lstrip("#").strip() for line in lines if line.startswith("#")]
    body = [line for line in lines if line and not line.startswith("#")]
    try:
        fields = body[0].split()
        if "/" in fields[0] or len(fields) < 4:  # multi-segment records, or no explicit length
            return None
        nsig, fs, sig_len = int(fields[1]), float(fields[2].split("/")[0].split("(")[0]), int(fields[3])
        matches = [_SIGNAL_LINE.match(line) for line in body[1 : nsig + 1]]
    except (IndexError, ValueError):
        return None
    if nsig < 1 or sig_len < 0 or len(matches) != nsig or not all(matches) or len({m["file"] for m in matches}) != 1:
        return None
    fs = check_rate(fs)
    gains = np.array([float(m["gain"]) for m in matches])
    if (gains <= 0).any():
        return None
    zeros = [int(m["zero"] or 0) for m in matches]
    baselines = np.array([int(m["baseline"]) if m["baseline"] is not None else z for m, z in zip(matches, zeros)])
    offset = int(matches[0]["offset"] or 0)
    names = [line.split(None, 8)[8] if len(line.split(None, 8)) > 8 else f"ch{i + 1}"
             for i, line in enumerate(body[1 : nsig + 1])]
    name = matches[0]["file"]
    data_path = confined_file(Path(record_path).parent, name)
    available = (data_path.stat().st_size - offset) // (2 * nsig)
    if available < sig_len:  # checked before reading, so an absurd sig_len never allocates anything
        raise BadRecord(TRUNCATED_SIGNAL, f"{max(available, 0)} of {sig_len} samples in {name}")
    try:
        with open(data_path, "rb") as handle:
            handle.seek(offset)
            digital = np.fromfile(handle, dtype="<i2", count=sig_len * nsig)
    except OSError:
        return None
    digital = digital.reshape(sig_len, nsig).T
    signal = ((digital - baselines[:, None]) / gains[:, None]).astype(np.float32)
    signal[digital == -32768] = np.nan  # the WFDB invalid-sample value of format 16
    return RawRecord(signal, fs, names, parse_comments(comments), [m["units"] or "" for m in matches])


def header_shape(record_path: str | os.PathLike) -> tuple[float, int] | None:
    """(sampling rate, samples) from a header's record line alone; None when it does not say both."""
    try:
        with open(str(record_path) + ".hea") as handle:
            for line in handle:
                if line.strip() and not line.startswith("#"):
                    fields = line.split()
                    return float(fields[2].split("/")[0].split("(")[0]), int(fields[3])
    except (OSError, UnicodeDecodeError, IndexError, ValueError):
        return None
    return None
