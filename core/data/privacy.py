"""Identifiers of clinical files, replaced by keyed hashes so a store does not reveal who its patients are.

Hospital exports carry medical record numbers as patient ids and often as file names. For records a clinical
reader found (`RecordRef.identifying`), ingest replaces the record id, source path and patient id with
HMAC-SHA256 tokens keyed by a salt: the same patient always gets the same token, so patient-level splits
still group their records, but without the salt no one can test a guess. The salt is `--patient-salt`, or a
random one kept in `<store>.salt` beside the store (created once, owner-only, reused by later ingests so stores
of one archive agree); share the store, never the salt. `--keep-patient-ids` keeps the raw ids.

Skipped and unrecognised clinical files are named by their tokens in the store too, so whoever ran the ingest is
told their real paths in memory (`HiddenFile`, for the terminal) and in `<store>.files.csv` (owner-only, beside the
salt, never inside the store) to map a token back later.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ecgcl.errors import EcgclError
from ecgcl.files import atomic_write

TOKEN_HEX = 20  # 80 bits: no collisions among billions of ids
DROPPED = ("patient names", "birth dates", "every other field of the file (address, physician, device serial)",
           "statement text naming people, dates or numbers")


FILES_COLUMNS = ("token", "relative_path", "reason")


def salt_path(out: str | os.PathLike) -> Path:
    """Where a store's salt is kept: `<store>.salt` beside it."""
    return Path(out).with_name(Path(out).name + ".salt")


def files_path(out: str | os.PathLike) -> Path:
    """Where a store's token -> file map is kept: `<store>.files.csv` beside it (and its salt)."""
    return Path(out).with_name(Path(out).name + ".files.csv")


@dataclass(frozen=True)
class HiddenFile:
    """A clinical file that the store names only by `token`: its path relative to the source and why it is not
    in the store (a skip's reason, or unrecognised). Held in memory and in `<store>.files.csv`, never stored."""

    token: str
    relative_path: str
    reason: str


class Pseudonymiser:
    """Replaces identifying ids by tokens (see the module docstring); `key` None keeps them raw."""

    def __init__(self, key: bytes | None, origin: str = "") -> None:
        self.key, self.origin = key, origin

    @classmethod
    def for_store(cls, out: str | os.PathLike, *, salt: str | None, keep: bool, needed: bool) -> Pseudonymiser:
        """The pseudonymiser of an ingest into `out`: none when ids are kept or no record is identifying."""
        if keep or not needed:
            return cls(None, "kept (--keep-patient-ids)" if keep and needed else "")
        if salt:
            return cls(salt.encode(), "--patient-salt")
        path = salt_path(out)
        try:
            if not path.is_file():
                atomic_write(path, lambda handle: handle.write(secrets.token_hex(32).encode()), mode=0o600,
                             what="patient salt")
            key = path.read_bytes().strip()
        except OSError as error:
            raise EcgclError(f"cannot keep the patient salt at {path}: {error.strerror or error}") from None
        if len(key) < 16:
            raise EcgclError(f"salt file {path} holds {len(key)} bytes; remove it (a new one is made) or give "
                             "--patient-salt")
        return cls(key, str(path.resolve()))

    @property
    def active(self) -> bool:
        return self.key is not None

    def token(self, value: Any, prefix: str = "") -> str:
        """The keyed hash of `value`, or `value` itself when ids are kept."""
        if self.key is None:
            return str(value)
        return prefix + hmac.new(self.key, str(value).encode(), hashlib.sha256).hexdigest()[:TOKEN_HEX]

    def table(self, metadata: pd.DataFrame, identifying: pd.Series) -> pd.DataFrame:
        """`metadata` with record ids, source paths and patient ids of identifying rows replaced by tokens."""
        if self.key is None or not identifying.any():
            return metadata
        table = metadata.copy()
        rows = identifying.to_numpy()
        records = table.loc[rows, "record_id"].map(lambda r: self.token(r, "r"))
        patients = [f"record:{new}" if str(old).startswith("record:") else self.token(old, "p")
                    for old, new in zip(table.loc[rows, "patient_id"], records)]
        table.loc[rows, "patient_id"] = patients
        table.loc[rows, "source_path"] = records.to_numpy()
        table.loc[rows, "record_id"] = records.to_numpy()
        return table

    def hidden(self, value: Any, prefix: str, relative_path: str, reason: str, suffix: str = "") -> HiddenFile:
        """The token of `value` (plus `suffix`) with the real path it hides and why that file is not stored."""
        return HiddenFile(self.token(value, prefix) + suffix, relative_path, reason)

    def write_files(self, out: str | os.PathLike, files: list[HiddenFile]) -> Path | None:
        """Write `<store>.files.csv` (columns FILES_COLUMNS, owner-only like the salt) when ids are hashed and
        some file is hidden; otherwise remove a map an earlier store at `out` left, so the map always describes
        the latest store. Returns the map written, or None."""
        path = files_path(out)
        if not self.active or not files:
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise EcgclError(f"cannot remove the stale file map {path}: {error.strerror or error}") from None
            return None
        table = pd.DataFrame([astuple(file) for file in files], columns=list(FILES_COLUMNS))
        return atomic_write(path, lambda handle: table.to_csv(handle, index=False), mode=0o600,
                            what="token -> file map")

    def manifest(self, identifying: int) -> dict[str, Any]:
        """The manifest's `privacy` section: what was hashed, what was never read, where the key lives."""
        hashed = ["record_id", "source_path", "patient_id"] if self.active else []
        return {"identifying_records": identifying, "hashed": hashed,
                "method": "HMAC-SHA256, first 80 bits" if self.active else None,
                "key": self.origin or None, "dropped": list(DROPPED)}
