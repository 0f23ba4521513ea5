"""Ingest: discover records in a source, check and preprocess them in parallel, write a store atomically.

Every record goes through the same steps: load (reader) -> check (leads present, no NaN, no flat lead, long
enough) -> select/reorder leads -> resample -> band-pass -> crop/pad. Records are processed in chunks so the
scipy calls run on whole (records, leads, samples) arrays. A bad record is skipped with its reason (or, with
`strict=True`, stops the ingest with an EcgclError); the store is only renamed into place when all went well.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from contextlib import ExitStack, closing
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcl.data.leads import lead_indices, parse_leads
from ecgcl.data.preprocess import BandPass, bandpass, check_band, crop_or_pad, parse_band, resample
from ecgcl.data.records import (FLAT_LEADS, MISSING_LEADS, NAN_VALUES, SKIP_CATEGORIES, TOO_SHORT, BadRecord,
                                Reader, RecordRef, Skip)
from ecgcl.data.store import StoreWriter, check_apart
from ecgcl.errors import EcgclError

FLAT_PTP_MV = 0.005  # a lead whose peak-to-peak range stays below 5 uV over the whole record carries no signal
BASE_COLUMNS = ("record_id", "patient_id", "labels", "fs", "original_fs", "source_path")


@dataclass(frozen=True)
class Plan:
    """What every record becomes: these leads, at `fs` Hz, `samples` long, optionally band-passed."""

    leads: tuple[str, ...]
    fs: float
    samples: int
    band: BandPass | None = None
    pad: bool = False

    @property
    def length(self) -> float:
        return self.samples / self.fs


@dataclass
class ChunkResult:
    positions: list[int]
    signals: np.ndarray
    original_fs: list[float]
    meta: list[dict[str, Any]]
    skips: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class IngestResult:
    """The written store and what happened: counts and every skipped record with its reason."""

    path: Path
    found: int
    written: int
    skipped: list[Skip]
    manifest: dict[str, Any]

    @property
    def skip_counts(self) -> dict[str, int]:
        return dict(self.manifest["skip_reasons"])


def open_source(source: str | os.PathLike, *, fs: float | None = None, ptbxl_resolution: str | None = None,
                min_likelihood: float = 0.0) -> Reader:
    """The reader for a path: a PTB-XL folder, a WFDB folder or header, a numpy file or a parquet table."""
    from ecgcl.data.array_readers import ARRAY_SUFFIXES, PARQUET_SUFFIXES, NumpyReader, ParquetReader
    from ecgcl.data.ptbxl import PtbxlReader, is_ptbxl
    from ecgcl.data.wfdb_reader import WfdbReader

    path = Path(source)
    if not path.exists():
        raise EcgclError(f"source {path} does not exist")
    if is_ptbxl(path):
        resolution = ptbxl_resolution or ("hr" if fs is not None and fs > 100 else "lr")
        return PtbxlReader(path, resolution, min_likelihood)
    if path.is_file() and path.suffix in ARRAY_SUFFIXES:
        return NumpyReader(path)
    if path.is_file() and path.suffix in PARQUET_SUFFIXES:
        return ParquetReader(path)
    if path.is_dir() or path.suffix == ".hea":
        return WfdbReader(path)
    raise EcgclError(f"source {path}: unknown kind; expected a PTB-XL or WFDB folder, a .hea, .npy, .npz or .parquet file")


def check_record(signal: np.ndarray, fs: float, names: Sequence[str], plan: Plan) -> np.ndarray:
    """The plan's leads of one record, in the plan's order; BadRecord for missing leads, NaNs, flat leads, too short."""
    index, missing = lead_indices(names, plan.leads)
    if missing:
        raise BadRecord(MISSING_LEADS, f"no lead(s) {', '.join(missing)} (record has {', '.join(names)})")
    selected = signal[index]
    if selected.shape[-1] == 0:
        raise BadRecord(TOO_SHORT, "no samples")
    bad = ~np.isfinite(selected).all(axis=-1)
    if bad.any():
        raise BadRecord(NAN_VALUES, f"non-finite values in lead(s) {', '.join(np.asarray(plan.leads)[bad])}")
    flat = np.ptp(selected, axis=-1) < FLAT_PTP_MV
    if flat.any():
        raise BadRecord(FLAT_LEADS, f"lead(s) {', '.join(np.asarray(plan.leads)[flat])} are flat")
    duration = selected.shape[-1] / fs
    if not plan.pad and duration + 0.5 / fs < plan.length:
        raise BadRecord(TOO_SHORT, f"{duration:g} s long, {plan.length:g} s asked (use --pad to zero-pad)")
    return selected


def process_chunk(reader: Reader, refs: Sequence[RecordRef], start: int, plan: Plan) -> ChunkResult:
    """Load, check and preprocess a run of records; records with the same rate and length share scipy calls."""
    groups: dict[tuple[float, int], list[tuple[int, np.ndarray]]] = {}
    meta: dict[int, dict[str, Any]] = {}
    skips = []
    for offset, ref in enumerate(refs):
        position = start + offset
        try:
            record = reader.load(ref)
            selected = check_record(record.signal, record.fs, record.leads, plan)
        except BadRecord as bad:
            skips.append((position, bad.category, bad.detail))
            continue
        meta[position] = record.meta
        groups.setdefault((record.fs, selected.shape[-1]), []).append((position, selected))
    positions, blocks, rates = [], [], []
    for (fs, _), members in groups.items():
        batch = np.stack([signal for _, signal in members]).astype(np.float32, copy=False)
        batch = resample(batch, fs, plan.fs)
        if plan.band is not None:
            batch = bandpass(batch, plan.fs, plan.band)
        blocks.append(crop_or_pad(batch, plan.samples))
        positions += [p for p, _ in members]
        rates += [fs] * len(members)
    signals = np.concatenate(blocks) if blocks else np.empty((0, len(plan.leads), plan.samples), np.float32)
    return ChunkResult(positions, signals, rates, [meta[p] for p in positions], skips)


def _first_record(reader: Reader, refs: Sequence[RecordRef]):
    """The first record that loads, to fill in a rate or length the user did not give."""
    for ref in refs[:50]:
        try:
            return reader.load(ref)
        except BadRecord:
            continue
    raise EcgclError("could not read any of the first 50 records to infer --fs/--length; give both options")


def make_plan(reader: Reader, refs: Sequence[RecordRef], *, fs: float | None, length: float | None,
              leads: str | Sequence[str] | None, band: str | BandPass | None, pad: bool) -> Plan:
    """Resolve the options into a Plan, inferring the rate and length from the first readable record if absent."""
    chosen_leads = parse_leads(leads)
    band = parse_band(band) if isinstance(band, str) or band is None else band
    if fs is not None and fs <= 0:
        raise EcgclError(f"--fs must be positive, got {fs:g}")
    if length is not None and length <= 0:
        raise EcgclError(f"--length must be positive, got {length:g} s")
    if fs is None or length is None:
        first = _first_record(reader, refs)
        fs = fs if fs is not None else first.fs
        length = length if length is not None else first.duration
    if band is not None:
        check_band(band, fs)
    return Plan(chosen_leads, float(fs), max(1, int(round(length * fs))), band, pad)


def _chunks(n: int, workers: int) -> list[tuple[int, int]]:
    size = max(8, min(64, math.ceil(n / max(1, workers * 4))))
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def _run_chunks(reader: Reader, refs: list[RecordRef], plan: Plan, workers: int) -> Iterator[ChunkResult]:
    """Chunk results in source order (so `strict` stops at the first bad record), computed by `workers`."""
    spans = _chunks(len(refs), workers)
    if workers <= 1:
        for start, stop in spans:
            yield process_chunk(reader, refs[start:stop], start, plan)
        return
    pool: Executor = (ProcessPoolExecutor(workers) if reader.parallel == "process" else ThreadPoolExecutor(workers))
    try:
        futures = [pool.submit(process_chunk, reader, refs[start:stop], start, plan) for start, stop in spans]
        for future in futures:
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _progress(enabled: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]} rec/s"), TextColumn("[red]{task.fields[skipped]} skipped"),
                    TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled, transient=False)


def ingest(source: str | os.PathLike, out: str | os.PathLike, *, fs: float | None = None,
           length: float | None = None, leads: str | Sequence[str] | None = None, band: str | None = None,
           pad: bool = False, strict: bool = False, workers: int | None = None, overwrite: bool = False,
           limit: int | None = None, ptbxl_resolution: str | None = None, min_likelihood: float = 0.0,
           progress: bool = False) -> IngestResult:
    """Ingest `source` into a new store at `out`; see the module docstring for the steps."""
    import time

    check_apart(source, out)
    reader = open_source(source, fs=fs, ptbxl_resolution=ptbxl_resolution, min_likelihood=min_likelihood)
    refs = reader.discover()
    if limit is not None:
        if limit <= 0:
            raise EcgclError(f"--limit must be positive, got {limit}")
        refs = refs[:limit]
    if not refs:
        raise EcgclError(f"no records found in {reader.describe()}")
    plan = make_plan(reader, refs, fs=fs, length=length, leads=leads, band=band, pad=pad)
    workers = max(1, workers if workers is not None else min(os.cpu_count() or 1, 8))
    workers = min(workers, len(_chunks(len(refs), workers)))

    n = len(refs)
    keep = np.zeros(n, dtype=bool)
    original_fs = np.full(n, np.nan)
    meta: list[dict[str, Any]] = [dict(r.meta) for r in refs]
    skipped: list[Skip] = []
    started = time.perf_counter()
    with ExitStack() as stack:
        writer = stack.enter_context(StoreWriter(out, n, len(plan.leads), plan.samples, overwrite=overwrite))
        bar = stack.enter_context(_progress(progress))
        task = bar.add_task("ingest", total=n, rate="-", skipped=0)
        done = 0
        chunks = stack.enter_context(closing(_run_chunks(reader, refs, plan, workers)))  # stops workers on errors
        for chunk in chunks:
            for position, category, detail in chunk.skips:
                ref = refs[position]
                if strict:
                    raise EcgclError(f"record {ref.record_id} ({ref.source_path}) is bad: {category}: {detail} "
                                     "(run without --strict to skip bad records)")
                skipped.append(Skip(ref.record_id, ref.source_path, category, detail))
            if chunk.positions:
                writer.signals[chunk.positions] = chunk.signals
                keep[chunk.positions] = True
                original_fs[chunk.positions] = chunk.original_fs
                for position, record_meta in zip(chunk.positions, chunk.meta):
                    meta[position].update(record_meta)
            done += len(chunk.positions) + len(chunk.skips)
            bar.update(task, completed=done, skipped=len(skipped),
                       rate=f"{done / max(time.perf_counter() - started, 1e-9):,.0f}")
        if not keep.any():
            raise EcgclError(f"every record of {reader.describe()} was skipped: "
                             + "; ".join(f"{c} x{k}" for c, k in _count(skipped).items()))
        metadata = _metadata(refs, meta, original_fs, plan)
        manifest = _manifest(reader, source, plan, refs, keep, skipped, metadata, dict(
            fs=fs, length=length, leads=list(plan.leads), filter=None if plan.band is None else str(plan.band),
            pad=pad, strict=strict, limit=limit, min_likelihood=min_likelihood,
            resolution=getattr(reader, "resolution", None)))
        path = writer.finish(metadata, manifest, keep=keep)
    return IngestResult(path, n, int(keep.sum()), skipped, {**manifest, "hash": _read_hash(path)})


def _count(skipped: Sequence[Skip]) -> dict[str, int]:
    counts = Counter(s.category for s in skipped)
    return {c: counts[c] for c in SKIP_CATEGORIES if counts[c]}


def _metadata(refs: Sequence[RecordRef], meta: list[dict[str, Any]], original_fs: np.ndarray, plan: Plan) -> pd.DataFrame:
    table = pd.DataFrame(meta)
    table.insert(0, "record_id", [r.record_id for r in refs])
    for column, default in (("patient_id", None), ("labels", "")):
        if column not in table:
            table[column] = default
    table["patient_id"] = [p if isinstance(p, str) and p else f"record:{r.record_id}"
                           for p, r in zip(table["patient_id"], refs)]
    table["labels"] = table["labels"].fillna("").astype(str)
    table["fs"] = plan.fs
    table["original_fs"] = original_fs
    table["source_path"] = [r.source_path for r in refs]
    extras = [c for c in table.columns if c not in BASE_COLUMNS]
    return table[list(BASE_COLUMNS) + extras]


def _manifest(reader: Reader, source, plan: Plan, refs, keep, skipped, metadata, options) -> dict[str, Any]:
    import wfdb

    from ecgcl import __version__

    kept = metadata.iloc[np.flatnonzero(keep)]
    labelled = int((kept["labels"] != "").sum())
    return {
        "source": str(Path(source).resolve()),
        "source_kind": reader.kind,
        "options": options,
        "fs": plan.fs,
        "length": plan.length,
        "samples": plan.samples,
        "leads": list(plan.leads),
        "units": "mV",
        "preprocessing": {"resample": "scipy.signal.resample_poly", "filter": None if plan.band is None else
                          f"butterworth order {plan.band.order} zero-phase (sosfiltfilt) {plan.band} Hz",
                          "crop": "first samples", "pad": "zeros at the end" if plan.pad else "not allowed"},
        "counts": {"found": len(refs), "written": int(keep.sum()), "skipped": len(skipped), "labelled": labelled,
                   "unlabelled": int(keep.sum()) - labelled, "patients": int(kept["patient_id"].nunique())},
        "skip_reasons": _count(skipped),
        "skipped": [s.as_dict() for s in skipped],
        "versions": {"ecgcl": __version__, "wfdb": wfdb.__version__},
    }


def _read_hash(path: Path) -> str:
    import json

    return json.loads((path / "manifest.json").read_text())["hash"]
