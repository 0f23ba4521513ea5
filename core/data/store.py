"""The memory-mapped ECG store: one signal array, a metadata table and a manifest, written atomically.

Layout of a store folder:
- `signals.npy`   float32 or float16 array (records, leads, samples) in mV, opened with `np.load(mmap_mode="r")`;
                  `ECGStore.read` always hands out float32 (see STORE_DTYPES);
- `metadata.csv`  one row per record: record_id, patient_id, labels (';'-joined, empty when unlabelled),
                  fs, original_fs, source_path and any extra columns (strat_fold, age, sex ...);
- `manifest.json` source, options, fs, length, leads, `dtype`, counts, skipped records with reasons, content hash
                  (over the whole of `signals.npy`, its header and so its dtype included, and `metadata.csv`).

A store is written to a hidden temporary folder beside its destination and renamed into place at the end,
so an interrupted write never leaves a half store; it is named `.OUT.tmp-PID-*` after the writing process, and
a later ingest removes those of processes that died. The lock `.OUT.lock` beside OUT keeps a second writer out
while one writes. Rows are appended in order; with `ingest --windows` a row is
one window of a record (`record_id`, `window`, `window_start` say which), otherwise one record.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcl.data.dtypes import STORE_DTYPES, check_store_dtype
from ecgcl.errors import EcgclError
from ecgcl.files import atomic_write, write_csv, write_error, writing

SIGNALS_FILE = "signals.npy"
METADATA_FILE = "metadata.csv"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1
REQUIRED_COLUMNS = ("record_id", "patient_id", "labels")

# The value types a store's signals may have. float16 halves the disk, page cache and read bandwidth of float32;
# it rounds each value to within 2^-11 of itself (at most 0.5 uV at 1 mV, 2.4 uV at 5 mV: steps of 1 uV below
# 2 mV, where most samples lie, and 4 uV at 5 mV), about the digital step of ECG carts (1 uV in PTB-XL, ~5 uV in
# many), and readers hand out float32 whichever it is. Stores written before the choice existed are float32
# and their manifests have no `dtype`.
FLOAT16_MAX_MV = float(np.finfo(np.float16).max)  # 65504: larger values would be stored as inf


def store_dtype(dtype: str | np.dtype) -> np.dtype:
    """The little-endian numpy dtype of a store value type (`STORE_DTYPES`); one clear line for any other."""
    name = check_store_dtype(dtype.name if isinstance(dtype, np.dtype) else str(dtype))
    return np.dtype(name).newbyteorder("<")


def npy_header(shape: tuple[int, ...], size: int | None = None, dtype: str | np.dtype = "float32") -> bytes:
    """A `.npy` (version 1.0) header for a C-order `dtype` (a store dtype) array of `shape`, space-padded to `size`
    bytes if given."""
    descr = np.lib.format.dtype_to_descr(store_dtype(dtype))
    text = repr({"descr": descr, "fortran_order": False, "shape": tuple(int(n) for n in shape)})
    prefix = len(np.lib.format.MAGIC_PREFIX) + 2 + 2  # magic, version, uint16 header length
    total = size if size is not None else -(-(prefix + len(text) + 1) // 64) * 64
    if prefix + len(text) + 1 > total:
        raise ValueError(f"shape {shape} does not fit a {total}-byte header")
    body = (text + " " * (total - prefix - len(text) - 1) + "\n").encode("latin1")
    return np.lib.format.MAGIC_PREFIX + bytes([1, 0]) + len(body).to_bytes(2, "little") + body


_RESERVED_ROWS = 10**15  # the header is written for this many rows first, then rewritten (same size) at the end


class StoreWriter:
    """Append rows to a new store (`writer.append(block)`, source order), then `finish` renames it into place.

    Rows stream to `signals.npy` behind a header sized for any row count, which `finish` rewrites with the final
    count: the number of rows (records, or windows of records) need not be known in advance and nothing is
    copied. Use as a context manager: leaving it with an exception (or without `finish`) deletes the temporary
    folder, so an interrupted write never leaves a half store.

    `dtype` (one of STORE_DTYPES) is the value type on disk; rows are rounded to it as they are appended, and
    `finish` records it as the manifest's `dtype`. A float16 store refuses (one clear error) values beyond
    float16's range instead of writing inf.
    """

    def __init__(self, out: str | os.PathLike, leads: int, samples: int, *, overwrite: bool = False,
                 dtype: str = "float32"):
        from ecgcl.locks import hold_lock

        self.dtype = store_dtype(dtype)  # before the lock: a bad dtype leaves nothing behind
        self.out = Path(out)
        self.tmp: Path | None = None
        self.handle = None
        self.stale: list[Path] = []
        lock = self.out.parent / f".{self.out.name}.lock"
        self._lock = hold_lock(lock, what=f"store {self.out}", notify=lambda _: self.stale.append(lock))
        try:
            _make_parent(self.out)
            self._lock.__enter__()
        except BaseException:
            self._lock = None
            raise
        try:
            if self.out.exists() or self.out.is_symlink():
                if not overwrite:
                    raise EcgclError(f"output {self.out} already exists (choose another path or pass --overwrite)")
                check_replaceable(self.out)
            self.stale += remove_stale_temporaries(self.out.parent)
            self.tmp = _private_folder(self.out, "tmp")
            self.overwrite = overwrite
            self.row_shape = (int(leads), int(samples))
            self.rows = 0
            self.header_size = len(npy_header((_RESERVED_ROWS, *self.row_shape), dtype=self.dtype))
            self.handle = open(self.tmp / SIGNALS_FILE, "wb")
            self.handle.write(npy_header((_RESERVED_ROWS, *self.row_shape), dtype=self.dtype))
        except OSError as error:
            self.abort()
            raise EcgclError(f"cannot write the store {self.out}: {error.strerror or error}") from None
        except BaseException:
            self.abort()
            raise

    def append(self, block: np.ndarray) -> None:
        """Write `block` (rows, leads, samples) after the rows written so far, rounded to the store's dtype."""
        block = np.asarray(block)
        if block.ndim != 3 or block.shape[1:] != self.row_shape:
            raise ValueError(f"rows of shape {block.shape[1:]} appended to a store of rows {self.row_shape}")
        with np.errstate(over="ignore"):  # an overflow is found and reported below
            stored = np.ascontiguousarray(block, dtype=self.dtype)
        if stored.dtype != block.dtype and stored.size:
            overflow = np.isinf(stored) & ~np.isinf(block)
            if overflow.any():
                row = int(np.argwhere(overflow)[0][0])
                peak = float(np.nanmax(np.abs(block[row])))
                raise EcgclError(
                    f"cannot write the store {self.out}: row {self.rows + row} has values up to {peak:.4g} mV, "
                    f"beyond {self.dtype.name}'s range (+-{float(np.finfo(self.dtype).max):g} mV) and any ECG's (a "
                    "unit is likely wrong); skip such records with --max-amplitude MV, or keep them with --dtype "
                    "float32 (the manifest flags them)")
        block = stored
        if block.size:
            try:
                self.handle.write(memoryview(block.reshape(-1)).cast("B"))
            except OSError as error:  # a full disk, a quota
                raise EcgclError(f"cannot write the store {self.out}: {error.strerror or error}") from None
        self.rows += block.shape[0]

    def finish(self, metadata: pd.DataFrame, manifest: dict[str, Any]) -> Path:
        """Write the final header, metadata and manifest (with the content hash), rename into place."""
        missing = [c for c in REQUIRED_COLUMNS if c not in metadata.columns]
        if missing:
            raise ValueError(f"store metadata lacks column(s) {missing}")
        if len(metadata) != self.rows:
            raise ValueError(f"store metadata has {len(metadata)} rows for {self.rows} signal rows")
        if manifest.get("dtype", self.dtype.name) != self.dtype.name:
            raise ValueError(f"manifest dtype {manifest['dtype']!r} for a store written as {self.dtype.name}")
        with writing(self.out / SIGNALS_FILE, "store signals"):  # closing flushes the last rows
            self.handle.seek(0)
            self.handle.write(npy_header((self.rows, *self.row_shape), self.header_size, self.dtype))
            self.handle.close()
        write_store_files(self.tmp, self.out, metadata,
                          {"format_version": FORMAT_VERSION, **manifest, "dtype": self.dtype.name,
                           "records": len(metadata)})
        move_into_place(self.tmp, self.out)
        self._release()
        return self.out

    def abort(self) -> None:
        if self.handle is not None:
            self.handle.close()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            lock, self._lock = self._lock, None
            lock.__exit__(None, None, None)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.tmp is not None and self.tmp.exists():  # not finished: an error or an interrupt
            self.abort()
        self._release()


OWNER_FILE = ".owner.json"
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-[^/]+$")
_STORE_FILES = {SIGNALS_FILE, METADATA_FILE, MANIFEST_FILE, OWNER_FILE, "store"}


def _make_parent(out: Path) -> None:
    """Create OUT's parent folders; one clear line when that is impossible (a file on the path, no permission)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise EcgclError(f"output {out} cannot be created: a part of its path is a file") from None
    except OSError as error:
        raise EcgclError(f"output {out} cannot be created: {error.strerror or error}") from None
    if not out.parent.is_dir():
        raise EcgclError(f"output {out} cannot be created: {out.parent} is not a folder")


def _private_folder(out: Path, kind: str) -> Path:
    """A hidden folder `.OUT.<kind>-PID-*` beside OUT, recording its owner so a later ingest can tell it is stale."""
    from ecgcl.locks import process_start_time

    with writing(out, "store"):
        folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.{kind}-{os.getpid()}-", dir=out.parent))
    owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                        "start_time": process_start_time(os.getpid())}).encode()
    try:
        with in_store(out, None, "store"):
            atomic_write(folder / OWNER_FILE, lambda handle: handle.write(owner), what="store")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


@contextmanager
def in_store(out: Path, name: str | None, what: str, *, kept: str | None = None) -> Iterator[None]:
    """A failed write in the block (an `OSError`, or `ecgcl.files`' one line for it), on a file of a store's
    temporary folder, as one line naming the file's place in the finished store `out` instead:
    `cannot write the store manifest /data/store/manifest.json: No space left on device (free space and run the
    same command again)`. `name` is the file's (None: the store itself)."""
    try:
        yield
    except (OSError, EcgclError) as error:
        cause = error.__cause__ if isinstance(error, EcgclError) else error
        if not isinstance(cause, OSError):
            raise
        raise write_error(out if name is None else out / name, what, cause, kept=kept) from cause


def write_store_files(tmp: Path, out: Path, metadata: pd.DataFrame, manifest: dict[str, Any], *,
                      kept: str | None = None) -> dict[str, Any]:
    """Write `metadata.csv`, then `manifest.json` with the content hash, into the temporary folder `tmp` of the
    store `out` (each through a temporary file and a rename); a failed write is one line naming the file in `out`
    (`kept`: what a rerun keeps). Returns the manifest written."""
    with in_store(out, METADATA_FILE, "store metadata", kept=kept):
        write_csv(tmp / METADATA_FILE, metadata)  # line breaks in cells as \n, so every row reads back
    manifest = {**manifest, "hash": content_hash(tmp)}
    text = (json.dumps(manifest, indent=2, default=str)).encode("utf-8")
    with in_store(out, MANIFEST_FILE, "store manifest", kept=kept):
        atomic_write(tmp / MANIFEST_FILE, lambda handle: handle.write(text))
    return manifest


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the `.NAME.tmp-PID-*` / `.NAME.old-PID-*` folders in `folder` whose writer is no longer running.

    Only folders holding nothing but store files are touched, and only those of this host's processes.
    """
    from ecgcl.locks import process_alive

    removed = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = _TEMPORARY.match(path.name)
        if not match or path.is_symlink() or not path.is_dir():
            continue
        try:
            owner = json.loads((path / OWNER_FILE).read_text())
            if not isinstance(owner, dict):
                continue
        except FileNotFoundError:
            owner = {}
        except (OSError, ValueError):
            continue
        pid = int(match["pid"])
        if owner.get("host", socket.gethostname()) != socket.gethostname() or owner.get("pid", pid) != pid:
            continue
        if process_alive(pid, owner.get("start_time")):
            continue
        if not {p.name for p in path.iterdir()} <= _STORE_FILES:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def move_into_place(tmp: Path, out: Path) -> Path:
    """Rename a finished temporary store folder to `out`, replacing the ecgcl store there (if any) by renames."""
    with writing(out, "store"):
        (tmp / OWNER_FILE).unlink(missing_ok=True)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a store is shared like any folder
    if out.exists() or out.is_symlink():  # only reachable with overwrite=True, or for `ecgcl relabel`
        check_replaceable(out)  # again: it may have changed while records were read
        retired = _private_folder(out, "old")
        try:
            with writing(out, "store"):
                os.replace(out, retired / "store")
        except BaseException:
            shutil.rmtree(retired, ignore_errors=True)
            raise
        try:
            with writing(out, "store"):
                os.replace(tmp, out)
        except BaseException:
            os.replace(retired / "store", out)  # the old store back where it was
            shutil.rmtree(retired, ignore_errors=True)
            raise
        shutil.rmtree(retired, ignore_errors=True)
    else:
        with writing(out, "store"):
            os.replace(tmp, out)
    return out


def is_store(path: str | os.PathLike) -> bool:
    """Whether `path` is a real folder (not a symlink) holding an ecgcl store with a valid manifest."""
    path = Path(path)
    if path.is_symlink() or not path.is_dir():
        return False
    if not all((path / name).is_file() and not (path / name).is_symlink()
               for name in (SIGNALS_FILE, METADATA_FILE, MANIFEST_FILE)):
        return False
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "format_version" in manifest and isinstance(manifest.get("hash"), str)


def check_replaceable(out: Path) -> None:
    """`--overwrite` only ever replaces an ecgcl store: refuse a symlink, a file, or a folder of anything else."""
    if out.is_symlink():
        raise EcgclError(f"output {out} is a symbolic link; --overwrite never follows one (remove it yourself)")
    if not is_store(out):
        kind = "a file" if out.is_file() else "a folder that is not an ecgcl store"
        raise EcgclError(f"output {out} is {kind}; --overwrite only replaces an ecgcl store "
                         "(choose another path)")


def check_apart(source: str | os.PathLike, out: str | os.PathLike) -> None:
    """Refuse an output that is, lies inside, or contains the source it is built from."""
    src, dst = Path(source).resolve(), Path(out).resolve()
    if src == dst:
        raise EcgclError(f"output {out} is the source itself; choose another path")
    if src in dst.parents:
        raise EcgclError(f"output {out} lies inside the source {source}; choose a path outside it")
    if dst in src.parents:
        raise EcgclError(f"output {out} contains the source {source}; choose a path outside it")


def content_hash(folder: Path) -> str:
    """sha256 over the signal and metadata files: two stores with the same content share a hash."""
    digest = hashlib.sha256()
    for name in (SIGNALS_FILE, METADATA_FILE):
        with open(folder / name, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def write_store(out: str | os.PathLike, signals: np.ndarray, metadata: pd.DataFrame, manifest: dict[str, Any],
                *, overwrite: bool = False, dtype: str = "float32") -> Path:
    """Write an in-memory (records, leads, samples) array and its metadata as a store of `dtype` values."""
    with StoreWriter(out, *signals.shape[1:], overwrite=overwrite, dtype=dtype) as writer:
        writer.append(signals)
        return writer.finish(metadata, manifest)


@dataclass
class ECGStore:
    """A store opened for reading: signals stay on disk (memory-mapped) and are read by index."""

    path: Path
    signals: np.ndarray
    metadata: pd.DataFrame
    manifest: dict[str, Any]

    def __len__(self) -> int:
        return self.signals.shape[0]

    @property
    def fs(self) -> float:
        return float(self.manifest["fs"])

    @property
    def leads(self) -> list[str]:
        return list(self.manifest["leads"])

    @property
    def hash(self) -> str:
        return str(self.manifest["hash"])

    @property
    def dtype(self) -> str:
        """The value type on disk, one of STORE_DTYPES (`read` hands out float32 either way)."""
        return self.signals.dtype.name

    @cached_property
    def patient_codes(self) -> np.ndarray:
        """Patient ids as integers 0..P-1 (what the patient-aware loss and the splits use)."""
        codes, _ = pd.factorize(self.metadata["patient_id"].astype(str))
        return codes.astype(np.int64)

    @cached_property
    def record_codes(self) -> np.ndarray:
        """Source records as integers 0..R-1: the windows of one record share a code (`ingest --windows`)."""
        codes, _ = pd.factorize(self.metadata["record_id"].astype(str))
        return codes.astype(np.int64)

    @cached_property
    def window_partners(self) -> np.ndarray:
        """For each row, the row of the next window of the same record (the previous one for a record's last
        window), -1 for a record stored as a single row: the pairs of CLOCS' contrastive multi-segment coding
        (Kiyasseh et al., ICML 2021), two views of one record that are distinct in time."""
        order = np.lexsort((self.window_numbers, self.record_codes))
        codes = self.record_codes[order]
        partners = np.full(len(order), -1, dtype=np.int64)
        same_next = np.flatnonzero(codes[1:] == codes[:-1])           # sorted position i pairs with i + 1
        partners[order[same_next]] = order[same_next + 1]
        last = np.flatnonzero((codes[1:] != codes[:-1]))              # a record's last row, if it has a partner
        last = np.append(last, len(order) - 1)
        has_previous = last[(last > 0) & (codes[np.maximum(last - 1, 0)] == codes[last])]
        partners[order[has_previous]] = order[has_previous - 1]
        return partners

    @property
    def window_numbers(self) -> np.ndarray:
        """Each row's window index within its record (0 for stores of one row per record)."""
        if "window" not in self.metadata.columns:
            return np.zeros(len(self.metadata), dtype=np.int64)
        return self.metadata["window"].fillna(0).to_numpy(dtype=np.int64)

    @cached_property
    def group_codes(self) -> np.ndarray:
        """Split groups 0..G-1: patients, joined where they share a byte-identical record (see `duplicates`)."""
        from ecgcl.data.duplicates import split_groups

        return split_groups(self.metadata)

    @cached_property
    def label_sets(self) -> list[frozenset[str]]:
        """Each record's labels as a set; an empty set means unlabelled."""
        from ecgcl.tasks import label_sets

        return label_sets(self.metadata)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the signals: a DataLoader worker started by spawn re-opens the memory map by path."""
        state = self.__dict__.copy()
        if isinstance(self.signals, np.memmap):
            state["signals"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.signals is None:
            self.signals = np.load(self.path / SIGNALS_FILE, mmap_mode="r")

    def read(self, indices: np.ndarray) -> np.ndarray:
        """A (len(indices), leads, samples) float32 array, read in sorted order for locality.

        The rows are copied one by one, in file order, into a single array of the store's dtype, which a float16
        store then converts to float32 (`as_float32`): only the rows asked for are read and converted, never
        the whole memory map, and no batch-sized temporary is made (two would cost the allocator a fresh,
        page-faulted buffer per batch).
        """
        indices = np.asarray(indices)
        order = np.argsort(indices, kind="stable")
        self._read_ahead(indices)
        rows = self.signals.view(np.ndarray)  # item access without np.memmap's per-item wrapping
        out = np.empty((len(indices), *rows.shape[1:]), dtype=np.float16 if rows.dtype == np.float16 else np.float32)
        wanted = indices.tolist()
        for position in order.tolist():
            out[position] = rows[wanted[position]]
        return out if out.dtype == np.float32 else as_float32(out)

    def _read_ahead(self, indices: np.ndarray) -> None:
        _read_ahead_rows(self.signals, indices)


def _read_ahead_rows(signals: np.ndarray, indices: np.ndarray) -> None:
    """Ask the kernel for every row of a batch at once (`madvise(MADV_WILLNEED)`, asynchronous) before they are
    copied one by one: on a store larger than the page cache a random batch then costs about one disk round trip,
    not one per row (measured at 1M records, 24 GB: 0.34-0.41 s a batch of 64 without, 0.03 s with)."""
    import mmap

    mapping = getattr(signals, "_mmap", None)
    if mapping is None or len(indices) < 2 or not hasattr(mmap, "MADV_WILLNEED"):
        return
    row_bytes = signals.strides[0]
    head = signals.offset % mmap.ALLOCATIONGRANULARITY  # where row 0 starts in the mapping
    for row in np.unique(indices).tolist():
        start = head + row * row_bytes
        aligned = start - start % mmap.PAGESIZE
        mapping.madvise(mmap.MADV_WILLNEED, aligned, start + row_bytes - aligned)


def as_float32(values: np.ndarray) -> np.ndarray:
    """`values` (any store dtype) as a new float32 array, exactly.

    float16 goes through torch, whose conversion is vectorised (F16C): numpy's float16 cast is an element loop,
    several times slower than reading the rows, which would give back what the smaller store saves.
    """
    if values.dtype == np.float16:
        import torch

        return torch.from_numpy(np.ascontiguousarray(values)).float().numpy()
    return np.array(values, dtype=np.float32)


def open_store(path: str | os.PathLike) -> ECGStore:
    """Open a store folder, with a clear error when it is not one."""
    path = Path(path)
    for name in (SIGNALS_FILE, METADATA_FILE, MANIFEST_FILE):
        if not (path / name).is_file():
            raise EcgclError(f"{path} is not an ecgcl store: {name} is missing (create one with `ecgcl ingest`)")
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        signals = np.load(path / SIGNALS_FILE, mmap_mode="r")
        metadata = pd.read_csv(path / METADATA_FILE, dtype={"record_id": str, "patient_id": str, "labels": str},
                               keep_default_na=False, na_values={"strat_fold": [""], "age": [""], "sex": [""]})
    except (ValueError, OSError, EOFError) as error:
        raise EcgclError(f"store {path} is damaged: {error}") from None
    if signals.ndim != 3 or len(metadata) != signals.shape[0]:
        raise EcgclError(f"store {path} is damaged: {signals.shape[0]} signals but {len(metadata)} metadata rows")
    if signals.dtype.name not in STORE_DTYPES:
        raise EcgclError(f"store {path} is damaged: {SIGNALS_FILE} holds {signals.dtype} values, not "
                         f"{' or '.join(STORE_DTYPES)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in metadata.columns]
    if missing:
        raise EcgclError(f"store {path} is damaged: {METADATA_FILE} has no column(s) {', '.join(missing)}")
    check_manifest(manifest, signals.shape, where=path / MANIFEST_FILE, dtype=signals.dtype.name)
    return ECGStore(path, signals, metadata, manifest)


def check_manifest(manifest: Any, shape: tuple[int, ...], *, where: Path, dtype: str | None = None) -> None:
    """The manifest fields readers rely on: a positive `fs`, one lead name per lead (if listed), a `hash`, and
    a `dtype` naming the signals' value type (if given: stores written before it existed have none)."""
    if not isinstance(manifest, dict):
        raise EcgclError(f"{where} is damaged: expected a JSON object, got {type(manifest).__name__}")
    fs = manifest.get("fs")
    if isinstance(fs, bool) or not isinstance(fs, (int, float)) or not (math.isfinite(fs) and fs > 0):
        raise EcgclError(f"{where} is damaged: `fs` must be a positive number of Hz, got {fs!r}")
    leads = manifest.get("leads")
    if leads is not None and (not isinstance(leads, list) or len(leads) != shape[1]
                              or not all(isinstance(n, str) for n in leads)):
        raise EcgclError(f"{where} is damaged: `leads` must list the {shape[1]} lead names, got {leads!r}")
    if dtype is not None and manifest.get("dtype", dtype) != dtype:
        raise EcgclError(f"{where} is damaged: `dtype` says {manifest['dtype']!r} but the signals are {dtype}")
    if not isinstance(manifest.get("hash"), str):
        raise EcgclError(f"{where} is damaged: no content `hash` (write stores with `ecgcl ingest`)")
