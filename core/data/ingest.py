"""Ingest: discover records in a source, check and preprocess them in parallel, write a store atomically.

Every record goes through the same steps: load (reader) -> check (leads present under any alias, units known
and converted to mV, no NaN, no flat lead, long enough, plausible amplitude) -> select/reorder leads ->
resample -> band-pass -> crop/pad, or cut into windows. Records are processed in chunks so the scipy calls run
on whole (records, leads, samples) arrays. A bad record is skipped with its reason (or, with `strict=True`,
stops the ingest with an EcgclError); the store is only renamed into place when all went well. The options
are declared once, in `ecgcl.data.ingest_options.IngestOptions`; progress goes to an `ecgcl.reporting.Reporter`.
"""

from __future__ import annotations

import math
import os
from collections import Counter, deque
from contextlib import ExitStack, closing, contextmanager
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgcl.data.duplicates import record_hashes
from ecgcl.data.ingest_columns import MetaColumns, RecordColumns, RefTable, merged_meta
from ecgcl.data.ingest_options import IngestOptions
from ecgcl.data.label_table import annotate, compile_pattern
from ecgcl.data.leads import derivable, derive_limb_leads, lead_indices
from ecgcl.data.padding import RULE as PADDING_RULE
from ecgcl.data.padding import resolve_padding
from ecgcl.data.plan import AMPLITUDE_FLAG_MV, Plan, make_plan
from ecgcl.data.privacy import HiddenFile, Pseudonymiser
from ecgcl.data.preprocess import bandpass, cut_windows, resample, window_starts
from ecgcl.data.records import (FLAT_LEADS, IMPLAUSIBLE_AMPLITUDE, MISSING_LEADS, NAN_VALUES, SKIP_CATEGORIES,
                                TOO_SHORT, UNREADABLE, BadRecord, RawRecord, Reader, RecordRef, Skip, load_records)
from ecgcl.data.folder_walk import LINK_RULE, SkippedLink
from ecgcl.data.sources import open_source
from ecgcl.data.store import FLOAT16_MAX_MV, StoreWriter, check_apart
from ecgcl.data.units import mv_factors
from ecgcl.errors import EcgclError
from ecgcl.reporting import Reporter

FLAT_PTP_MV = 0.005  # a lead whose peak-to-peak range stays below 5 uV over the whole record carries no signal
BASE_COLUMNS = ("record_id", "patient_id", "labels", "fs", "original_fs", "source_path")
ROW_COLUMNS = ("window", "window_start", "valid_samples", "original_length", "amplitude_mv")


@dataclass
class ChunkResult:
    """A run of records as store rows, in source order: `signals[i]` is window `window[i]` (starting at sample
    `start[i]`, `valid[i]` samples of real signal) of the record at `positions[i]`; `records` holds what is kept
    of each record written, as columns (no dict per record: a large ingest holds every chunk's until the end)."""

    signals: np.ndarray
    positions: np.ndarray
    window: np.ndarray
    start: np.ndarray
    valid: np.ndarray
    records: RecordColumns
    skips: list[tuple[int, str, str]] = field(default_factory=list)


@dataclass
class IngestResult:
    """The written store and what happened: counts and every skipped record with its reason. When clinical ids
    are hashed, `hidden_files` gives the real paths of the skipped and unrecognised files behind their tokens (in
    memory, for the caller to show; never in the store) and `files_map` the `<store>.files.csv` that keeps them."""

    path: Path
    found: int
    written: int
    skipped: list[Skip]
    manifest: dict[str, Any]
    stale: list[Path] = field(default_factory=list)  # leftovers of killed ingests (temporary folders, locks) removed
    hidden_files: list[HiddenFile] = field(default_factory=list)
    files_map: Path | None = None

    @property
    def skip_counts(self) -> dict[str, int]:
        return dict(self.manifest["skip_reasons"])


@dataclass
class CheckedRecord:
    """A record's plan leads in mV, its median lead peak-to-peak (mV), what the manifest records about it
    (`facts`: derived leads, padding, ignored groups) and, under --pad, where a gap was zero-filled."""

    signal: np.ndarray
    amplitude: float
    facts: dict[str, Any]
    gap: np.ndarray | None = None


def check_record(record: RawRecord, plan: Plan) -> CheckedRecord:
    """The plan's leads of one record in mV, in the plan's order (see CheckedRecord).

    Declared padding is resolved first (`ecgcl.data.padding`); limb leads a record lacks are derived from I and
    II. BadRecord for missing leads, unknown units, a gap, NaNs, flat leads, too short, or an amplitude above the
    plan's `max_amplitude`.
    """
    facts: dict[str, Any] = dict(record.notes)
    signal, gap, cropped = record.signal, None, False
    if record.padding is not None:
        signal, padding, gap = resolve_padding(signal, record.padding, record.fs, plan.pad)
        cropped = padding.cropped > 0
        if padding.runs:
            facts["padding"] = padding.as_dict()
    index, missing = lead_indices(record.leads, plan.leads, plan.lead_map)
    if missing and not derivable(missing, record.leads, plan.lead_map):
        raise BadRecord(MISSING_LEADS, f"no lead(s) {', '.join(missing)} (record has {', '.join(record.leads)})")
    present = index >= 0
    selected = signal[index[present]]
    if record.units is not None:
        factors = mv_factors([record.units[i] for i in index[present]], np.asarray(plan.leads)[present])
        if (factors != 1).any():
            selected = (selected * factors[:, None]).astype(np.float32)
    if missing:
        limb, _ = lead_indices(record.leads, ("I", "II"), plan.lead_map)
        limb_signal = signal[limb]
        if record.units is not None:
            limb_signal = limb_signal * mv_factors([record.units[i] for i in limb], ("I", "II"))[:, None]
        full = np.empty((len(plan.leads), signal.shape[-1]), np.float32)
        full[present] = selected
        full[~present] = derive_limb_leads(limb_signal[0], limb_signal[1], missing)
        selected = full
        facts["derived_leads"] = list(missing)
    if selected.shape[-1] == 0:
        raise BadRecord(TOO_SHORT, "no samples")
    bad = ~np.isfinite(selected).all(axis=-1)
    if bad.any():
        raise BadRecord(NAN_VALUES, f"non-finite values in lead(s) {', '.join(np.asarray(plan.leads)[bad])}")
    ptp = np.ptp(selected, axis=-1)
    flat = ptp < FLAT_PTP_MV
    if flat.any():
        raise BadRecord(FLAT_LEADS, f"lead(s) {', '.join(np.asarray(plan.leads)[flat])} are flat")
    duration = selected.shape[-1] / record.fs
    slack = 1.0 if cropped else 0.5  # samples: a record cropped of its end padding may end one sample early
    if not plan.pad and selected.shape[-1] + slack < plan.length * record.fs - 1e-6:
        raise BadRecord(TOO_SHORT, f"{duration:g} s long, {plan.length:g} s asked (use --pad to zero-pad)")
    ordered = np.sort(ptp)
    amplitude = float(ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2  # the median, cheaply
    if plan.max_amplitude is not None and amplitude > plan.max_amplitude:
        raise BadRecord(IMPLAUSIBLE_AMPLITUDE, f"median lead peak-to-peak {amplitude:.4g} mV is above "
                                               f"--max-amplitude {plan.max_amplitude:g} mV (a unit may be wrong)")
    return CheckedRecord(selected, amplitude, facts, gap)


def process_chunk(reader: Reader, refs: Sequence[RecordRef], start: int, plan: Plan) -> ChunkResult:
    """Load, check and preprocess a run of records; records with the same rate and length share scipy calls."""
    groups: dict[tuple[float, int], list[tuple[int, np.ndarray, np.ndarray | None]]] = {}
    kept: list[tuple[int, float, float, float]] = []  # position, original_fs, original_length, amplitude_mv
    metas: list[dict[str, Any]] = []
    facts: dict[int, dict[str, Any]] = {}
    skips = []
    for offset, record in enumerate(load_records(reader, list(refs))):
        position = start + offset
        try:
            if isinstance(record, BadRecord):
                raise record
            checked = check_record(record, plan)
        except BadRecord as bad:
            skips.append((position, bad.category, bad.detail))
            continue
        except Exception as error:  # noqa: BLE001  (values no check foresaw must not stop the archive)
            skips.append((position, UNREADABLE, f"{type(error).__name__}: {error}"))
            continue
        kept.append((position, record.fs, checked.signal.shape[-1] / record.fs, checked.amplitude))
        metas.append(record.meta)
        if checked.facts:
            facts[position] = checked.facts
        groups.setdefault((record.fs, checked.signal.shape[-1]), []).append((position, checked.signal, checked.gap))
    parts = []
    for (fs, _), members in groups.items():
        batch = np.stack([signal for _, signal, _ in members]).astype(np.float32, copy=False)
        batch = resample(batch, fs, plan.fs)
        if plan.band is not None:
            batch = bandpass(batch, plan.fs, plan.band)
        starts = window_starts(batch.shape[-1], plan.samples, plan.stride, plan.pad)
        rows, valid = cut_windows(batch, plan.samples, starts)
        count = len(starts)
        for member, (_, _, gap) in enumerate(members):
            if gap is not None:  # rows covering a zero-filled gap count fewer real samples
                valid[member * count:(member + 1) * count] -= gap_counts(gap, fs, plan, batch.shape[-1], starts,
                                                                          valid[member * count:(member + 1) * count])
        parts.append((rows, np.repeat([p for p, _, _ in members], count), np.tile(np.arange(count), len(members)),
                      np.tile(starts, len(members)), valid))
    if not parts:
        empty = np.empty(0, dtype=np.int64)
        return ChunkResult(np.empty((0, len(plan.leads), plan.samples), np.float32), empty, empty, empty, empty,
                           RecordColumns.empty(), skips)
    signals, positions, window, starts, valid = (np.concatenate(column) for column in zip(*parts))
    order = np.lexsort((window, positions))  # groups back into source order
    signals, positions = signals[order], positions[order]
    digests = record_hashes(signals, positions)  # finds byte-identical records
    position, original_fs, original_length, amplitude = (np.array(column) for column in zip(*kept))
    records = RecordColumns(position.astype(np.int64), original_fs.astype(np.float64), original_length, amplitude,
                            np.array([digests[p] for p in position.tolist()], dtype="S"), MetaColumns.of(metas), facts)
    return ChunkResult(signals, positions, window[order], starts[order], valid[order], records, skips)


def skip_overflow(chunk: ChunkResult, limit: float, dtype: str = "float16") -> ChunkResult:
    """`chunk` without the records whose rows hold values beyond +-`limit` mV (what a `dtype` store can hold):
    they become skips (`implausible amplitude`), merged with the chunk's others in position order, so that
    `strict` still stops at the first bad record. The chunk itself is returned when every value fits."""
    if not chunk.signals.size:
        return chunk
    with np.errstate(invalid="ignore"):
        peaks = np.abs(chunk.signals).max(axis=(1, 2))
    over = peaks > limit
    if not over.any():
        return chunk
    bad = {}
    for position, peak in zip(chunk.positions[over].tolist(), peaks[over].tolist()):
        bad[position] = max(peak, bad.get(position, 0.0))
    keep = ~np.isin(chunk.positions, list(bad))
    records = chunk.records.take(~np.isin(chunk.records.position, list(bad)))
    skips = sorted(chunk.skips + [(p, IMPLAUSIBLE_AMPLITUDE,
                                   f"values up to {peak:.2g} mV do not fit a {dtype} store (a unit is likely wrong; "
                                   "--dtype float32 keeps them)") for p, peak in bad.items()],
                   key=lambda skip: skip[0])
    return ChunkResult(chunk.signals[keep], chunk.positions[keep], chunk.window[keep], chunk.start[keep],
                       chunk.valid[keep], records, skips)


def gap_counts(gap: np.ndarray, fs: float, plan: Plan, samples: int, starts: np.ndarray,
               valid: np.ndarray) -> np.ndarray:
    """Gap samples (at the plan's rate) among the first `valid` samples of each window starting at `starts`."""
    at_plan_rate = gap[np.minimum((np.arange(samples) * fs / plan.fs).astype(np.int64), len(gap) - 1)]
    total = np.concatenate([[0], np.cumsum(at_plan_rate)])
    ends = np.minimum(starts + valid, samples)
    return total[ends] - total[np.minimum(starts, samples)]


def _chunks(n: int, workers: int) -> list[tuple[int, int]]:
    size = max(8, min(64, math.ceil(n / max(1, workers * 4))))
    return [(start, min(n, start + size)) for start in range(0, n, size)]


def _run_chunks(reader: Reader, refs: Sequence[RecordRef], plan: Plan, workers: int) -> Iterator[ChunkResult]:
    """Chunk results in source order (so `strict` stops at the first bad record), computed by `workers`.

    At most `2 * workers` chunks are in flight: finished chunks wait in memory until they are written, so
    submitting every chunk up front would hold most of a large source in memory when writing is the slow side.
    Worker processes get the reader and the plan once, when they start (`_start_worker`), and each chunk only
    its records' refs: a reader holding a folder walk's file list, sent with every chunk, made an ingest
    O(records^2). The pool is closed on success and terminated on every other exit (an error, Ctrl-C, SIGTERM,
    the consumer stopping early), so no worker outlives the ingest; its processes are daemonic and also watch
    their parent.
    """
    spans = iter(_chunks(len(refs), workers))
    if workers <= 1:
        for start, stop in spans:
            yield process_chunk(reader, refs[start:stop], start, plan)
        return
    from multiprocessing.pool import Pool, ThreadPool

    processes = reader.parallel == "process"
    with _signals_held():  # a worker forked now must not run the parent's SIGTERM handler before it has its own
        pool = (Pool(workers, initializer=_start_worker, initargs=(os.getpid(), reader, plan)) if processes
                else ThreadPool(workers))
    finished = False
    try:
        pending: deque = deque()
        for start, stop in spans:
            task = (_chunk_in_worker, (refs[start:stop], start)) if processes else \
                (process_chunk, (reader, refs[start:stop], start, plan))
            pending.append(pool.apply_async(*task))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        finished = True
    finally:
        if finished:
            pool.close()
        else:
            pool.terminate()
        pool.join()


_WORKER: dict[str, Any] = {}  # in a worker process: the reader and plan `_start_worker` was given


@contextmanager
def _signals_held():
    """Hold SIGTERM and SIGINT while worker processes are forked: a worker inherits the held mask and the parent's
    handlers, and releases the signals only after `_exit_with_parent` has installed its own (a SIGTERM landing in
    between printed a worker traceback). The parent receives any signal held meanwhile as soon as it releases."""
    import signal

    if not hasattr(signal, "pthread_sigmask"):  # not POSIX
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_worker(parent: int, reader: Reader, plan: Plan) -> None:
    """A worker process's start: keep the ingest's reader and plan for every chunk, and `_exit_with_parent`."""
    _WORKER.update(reader=reader, plan=plan)
    _exit_with_parent(parent)


def _chunk_in_worker(refs: Sequence[RecordRef], start: int) -> ChunkResult:
    return process_chunk(_WORKER["reader"], refs, start, _WORKER["plan"])


def _exit_with_parent(parent: int) -> None:
    """In a worker process: exit as soon as the ingest process is gone, even when it was killed with SIGKILL
    (a normal exit, an error, Ctrl-C and SIGTERM already stop the pool through `_run_chunks`). Ctrl-C is left
    to the ingest process, and SIGTERM (how the pool stops its workers) ends a worker quietly."""
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):  # held while the pool forked this worker (`_signals_held`)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="ecgcl-parent-watch").start()


def ingest(source: str | os.PathLike, out: str | os.PathLike, options: IngestOptions | None = None, *,
           reporter: Reporter | None = None, **values: Any) -> IngestResult:
    """Ingest `source` into a new store at `out`; see the module docstring for the steps.

    The options are the fields of `IngestOptions`, given as `options` and/or as keyword arguments
    (`ingest(source, out, fs=100, length=10)`); an unknown keyword is an EcgclError. `labels` (from
    `read_label_table`) joins a user's labels/patients table; `patient_from_name` takes patient ids from a regex
    on the record ids (see `ecgcl.data.label_table`). Progress goes to `reporter` (default: silent): one stage of
    all records, advanced with the records/s `rate` and the `skipped` count after each chunk.
    """
    import time

    o = IngestOptions.from_values(options, **values)
    reporter = reporter if reporter is not None else Reporter()
    check_apart(source, out)
    if o.patient_from_name:
        compile_pattern(o.patient_from_name)  # a bad pattern stops before any record is read
    from ecgcl.manager import get_registry

    opened = open_source(source, get_registry(), fmt=o.format, workers=o.workers or 8,
                         context={"fs": o.fs, "ptbxl_resolution": o.ptbxl_resolution,
                                  "min_likelihood": o.min_likelihood})
    reader = opened.reader
    refs = reader.discover()
    if o.limit is not None:
        if o.limit <= 0:
            raise EcgclError(f"--limit must be positive, got {o.limit}")
        refs = refs[:o.limit]
    if not refs:
        raise EcgclError(f"no records found in {reader.describe()}")
    refs = RefTable(refs)  # columns: RecordRef objects and their dicts cost ~0.5 kB a record
    plan, chosen = make_plan(reader, refs, fs=o.fs, length=o.length, leads=o.leads, band=o.band, pad=o.pad,
                             windows=o.windows, window_stride=o.window_stride, lead_map=o.lead_map,
                             max_amplitude=o.max_amplitude)
    workers = max(1, o.workers if o.workers is not None else min(os.cpu_count() or 1, 8))
    workers = min(workers, len(_chunks(len(refs), workers)))
    identifying = int(refs.identifying.sum())

    n = len(refs)
    rows: list[tuple[np.ndarray, ...]] = []  # each chunk's (positions, window, start, valid)
    written: list[RecordColumns] = []
    skipped: list[Skip] = []
    files: list[HiddenFile] = []  # real paths behind the tokens of skipped and unrecognised files
    started = time.perf_counter()
    with ExitStack() as stack:
        writer = stack.enter_context(StoreWriter(out, len(plan.leads), plan.samples, overwrite=o.overwrite,
                                                 dtype=o.dtype))
        privacy = Pseudonymiser.for_store(out, salt=o.patient_salt, keep=o.keep_patient_ids,
                                          needed=bool(identifying))
        reporter.stage("ingest", n)
        done = 0
        chunks = stack.enter_context(closing(_run_chunks(reader, refs, plan, workers)))  # stops workers on errors
        for chunk in chunks:
            if writer.dtype == np.float16:
                chunk = skip_overflow(chunk, FLOAT16_MAX_MV, writer.dtype.name)
            for position, category, detail in chunk.skips:
                ref = refs[position]
                if o.strict:
                    raise EcgclError(f"record {ref.record_id} ({ref.source_path}) is bad: {category}: {detail} "
                                     "(run without --strict to skip bad records)")
                named = ref.record_id, ref.source_path
                if ref.identifying and privacy.active:
                    files.append(privacy.hidden(ref.record_id, "r", ref.source_path, f"{category}: {detail}"))
                    named = files[-1].token, files[-1].token
                skipped.append(Skip(*named, category, detail))
            writer.append(chunk.signals)
            rows.append((chunk.positions, chunk.window, chunk.start, chunk.valid))
            written.append(chunk.records)
            done += len(chunk.records) + len(chunk.skips)
            reporter.advance(done, {"rate": done / max(time.perf_counter() - started, 1e-9),
                                    "skipped": len(skipped)})
        records = RecordColumns.concat(written)
        del written
        reporter.finished(f"{len(records)} written, {len(skipped)} skipped")
        if not records:
            example = files[0].relative_path if files else skipped[0].source_path
            raise EcgclError(f"every record of {reader.describe()} was skipped: "
                             + "; ".join(f"{c} x{k}" for c, k in _count(skipped).items())
                             + f" (e.g. {example}: {skipped[0].detail})")
        metadata = _metadata(refs, records, _row_columns(rows, plan), plan)
        if o.statements_as_labels:
            metadata = statements_as_labels(metadata, reader)
        hidden = pd.Series(refs.identifying[metadata["position"].to_numpy()], index=metadata.index)
        metadata = metadata.drop(columns="position")
        metadata, notes = annotate(metadata, labels=o.labels, patient_from_name=o.patient_from_name,
                                   before_report=lambda table: privacy.table(table, hidden))
        recorded = o.recorded({"leads": list(plan.leads), "band": None if plan.band is None else str(plan.band),
                               "lead_map": dict(plan.lead_map),
                               "ptbxl_resolution": getattr(reader, "resolution", None)})
        manifest = _manifest(reader, source, plan, chosen, refs, records, skipped, metadata, recorded)
        manifest.update(_record_facts(refs, records, privacy))
        if identifying:
            manifest["privacy"] = privacy.manifest(identifying)
            manifest["source"] = _hidden_source(source, privacy)
        if opened.unrecognised:
            manifest["unrecognised_files"], unread = _unrecognised(opened.unrecognised, Path(source), privacy)
            files += unread
        if opened.skipped_links:
            manifest["skipped_links"], unread = _skipped_links(opened.skipped_links, Path(source), privacy)
            files += unread
        files_map = privacy.write_files(out, files)
        path = writer.finish(metadata, {**manifest, **notes})
    return IngestResult(path, n, len(records), skipped, {**manifest, **notes, "hash": _read_hash(path)},
                        writer.stale, files, files_map)


def _count(skipped: Sequence[Skip]) -> dict[str, int]:
    counts = Counter(s.category for s in skipped)
    return {c: counts[c] for c in SKIP_CATEGORIES if counts[c]}


def _row_columns(rows: Sequence[tuple[np.ndarray, ...]], plan: Plan) -> dict[str, np.ndarray]:
    """The chunks' row columns joined: position, window, window_start (s), valid_samples."""
    position, window, start, valid = (np.concatenate([np.empty(0, np.int64), *column]) for column in zip(*rows))
    return {"position": position, "window": window, "window_start": start / plan.fs, "valid_samples": valid}


def _metadata(refs: RefTable, records: RecordColumns, rows: dict[str, np.ndarray], plan: Plan) -> pd.DataFrame:
    """One row per store row: the record's metadata repeated for each of its windows, then the row's own."""
    kept = records.position
    table = pd.DataFrame(merged_meta(refs.meta.take(kept), records), index=pd.RangeIndex(len(kept)))
    table.insert(0, "record_id", refs.record_id[kept].tolist())
    for column, default in (("patient_id", None), ("labels", "")):
        if column not in table:
            table[column] = default
    table["patient_id"] = [p if isinstance(p, str) and p else f"record:{r}"
                           for p, r in zip(table["patient_id"], table["record_id"])]
    table["labels"] = table["labels"].fillna("").astype(str)
    table["fs"] = plan.fs
    table["original_fs"] = records.original_fs
    table["source_path"] = refs.source_path[kept].tolist()
    table["original_length"] = records.original_length
    table["amplitude_mv"] = [round(a, 4) for a in records.amplitude_mv.tolist()]
    derived = [";".join(records.facts.get(p, {}).get("derived_leads", ())) for p in kept.tolist()]
    if any(derived):
        table["derived_leads"] = derived
    table = table.iloc[np.searchsorted(kept, rows["position"])].reset_index(drop=True)
    for column in ("window", "window_start", "valid_samples", "position"):
        table[column] = rows[column]
    extras = [c for c in table.columns if c not in BASE_COLUMNS + ROW_COLUMNS]
    return table[list(BASE_COLUMNS) + list(ROW_COLUMNS) + extras]


def statements_as_labels(metadata: pd.DataFrame, reader: Reader) -> pd.DataFrame:
    """`--statements-as-labels`: each record's labels become its interpretation statements."""
    if "statements" not in metadata or not (metadata["statements"].fillna("") != "").any():
        raise EcgclError(f"--statements-as-labels: no record of {reader.describe()} has interpretation statements")
    table = metadata.copy()
    table["labels"] = table["statements"].fillna("").astype(str)
    return table


def _record_facts(refs: RefTable, records: RecordColumns, privacy: Pseudonymiser) -> dict[str, Any]:
    """Manifest sections of what ingest did to single records: limb leads derived, padding found, waveform
    groups ignored (each with the records it concerns)."""
    def record_id(position: int) -> str:
        ref = refs[position]
        return privacy.token(ref.record_id, "r") if ref.identifying else ref.record_id

    sections: dict[str, Any] = {}
    rules = {"derived_leads": "limb leads a record lacks, from I and II: III = II - I, aVR = -(I + II)/2, "
                              "aVL = I - II/2, aVF = II - I/2",
             "padding": PADDING_RULE,
             "ignored_groups": "only the rhythm (full-length) waveform is the record; these groups were not read"}
    for key, rule in rules.items():
        found = [{"record_id": record_id(p), key: records.facts[p][key]} for p in sorted(records.facts)
                 if key in records.facts[p]]
        if found:
            sections[key] = {"rule": rule, "count": len(found), "records": found}
    return sections


def _hidden_source(source, privacy: Pseudonymiser) -> str:
    """The manifest's source: a clinical file named as the source (its name is often a patient id) becomes a
    token with its suffix when ids are hashed; a folder is kept as given."""
    path = Path(source).resolve()
    if not privacy.active or path.is_dir():
        return str(path)
    return str(path.parent / (privacy.token(path.name, "f") + path.suffix.lower()))


def _unrecognised(files: Sequence[Path], root: Path,
                  privacy: Pseudonymiser) -> tuple[dict[str, Any], list[HiddenFile]]:
    """Files of a folder that no reader recognised: the manifest section counting and listing them (as tokens
    when ids are hashed) and the real path behind each token (none when the names are listed as they are)."""
    rels = [_relative(file, root) for file in files]
    hidden = [privacy.hidden(rel, "f", rel, "unrecognised: no reader recognises it; not read", file.suffix.lower())
              for rel, file in zip(rels, files)] if privacy.active else []
    return ({"count": len(files), "rule": "no reader recognises these files; they were not read",
             "files": [h.token for h in hidden] if hidden else rels}, hidden)


def _skipped_links(links: Sequence[SkippedLink], root: Path,
                   privacy: Pseudonymiser) -> tuple[dict[str, Any], list[HiddenFile]]:
    """Links the folder walk skipped (loops, folders already walked, dangling links): the manifest section listing
    each with its reason and resolved target (as tokens when ids are hashed) and the real paths behind them."""
    entries, hidden = [], []
    for link in links:
        path, target = _relative(link.path, root), _relative(link.target, root.resolve())
        if privacy.active:
            hidden.append(privacy.hidden(path, "f", path, f"skipped link: {link.reason}"))
            path, target = hidden[-1].token, privacy.token(target, "f")
        entries.append({"path": path, "target": target, "reason": link.reason})
    return {"count": len(links), "rule": LINK_RULE, "links": entries}, hidden


def _relative(file: Path, root: Path) -> str:
    """`file` relative to `root` (absolute when outside it), with `/`."""
    try:
        return file.relative_to(root).as_posix()
    except ValueError:
        return file.as_posix()


def _differences(plan: Plan, records: RecordColumns) -> dict[str, int]:
    """How many written records differed from the plan's rate and length (and so were resampled, cropped, padded)."""
    rates, lengths = records.original_fs, records.original_length
    tolerance = 0.5 / plan.fs
    return {"resampled": int((rates != plan.fs).sum()), "longer": int((lengths > plan.length + tolerance).sum()),
            "shorter": int((lengths < plan.length - tolerance).sum())}


def _manifest(reader: Reader, source, plan: Plan, chosen, refs, records, skipped, metadata,
              options) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    from ecgcl.version import __version__

    libraries = {}
    for library in filter(None, str(getattr(reader, "library", "") or "").split(",")):
        try:
            libraries[library] = version(library)
        except PackageNotFoundError:
            libraries[library] = None

    first = metadata[metadata["window"] == 0]
    labelled = int((first["labels"] != "").sum())
    high = first[first["amplitude_mv"] > AMPLITUDE_FLAG_MV]
    differ = _differences(plan, records)
    long_rule = ("consecutive windows of the record every "
                 f"{plan.stride / plan.fs:g} s" if plan.stride is not None else "first samples")
    return {
        "source": str(Path(source).resolve()),
        "source_kind": reader.kind,
        "options": options,
        "fs": plan.fs,
        "length": plan.length,
        "samples": plan.samples,
        "leads": list(plan.leads),
        "units": "mV",
        "dtype": options["dtype"],
        "chosen": chosen,
        "preprocessing": {"units": "each lead's header unit converted to mV (uV x 0.001, V x 1000)",
                          "lead_names": "canonical names via the alias table"
                          + (f" and --lead-map {dict(plan.lead_map)}" if plan.lead_map else ""),
                          "resample": "scipy.signal.resample_poly", "filter": None if plan.band is None else
                          f"butterworth order {plan.band.order} zero-phase (sosfiltfilt) {plan.band} Hz",
                          "crop": long_rule, "windows": plan.stride is not None,
                          "window_stride": None if plan.stride is None else plan.stride / plan.fs,
                          "pad": "zeros at the end (valid_samples says how many are real)" if plan.pad else
                          "not allowed"},
        "differ": {**differ, "records": len(records)},
        "counts": {"found": len(refs), "written": len(records), "rows": len(metadata), "skipped": len(skipped),
                   "labelled": labelled, "unlabelled": len(first) - labelled,
                   "patients": int(first["patient_id"].nunique()),
                   "padded_rows": int((metadata["valid_samples"] < plan.samples).sum())},
        "flagged": {"implausible_amplitude": {
            "rule": f"median lead peak-to-peak above {AMPLITUDE_FLAG_MV:g} mV (kept; --max-amplitude skips)",
            "count": len(high),
            "records": [{"record_id": r, "source_path": p, "amplitude_mv": a}
                        for r, p, a in zip(high["record_id"], high["source_path"], high["amplitude_mv"])]}},
        "skip_reasons": _count(skipped),
        "skipped": [s.as_dict() for s in skipped],
        "versions": {"ecgcl": __version__, **libraries},
    }


def _read_hash(path: Path) -> str:
    import json

    return json.loads((path / "manifest.json").read_text())["hash"]
