"""Scaling: the per-record cost and peak memory of every stage as a store grows from 10k to 1M records.

Synthetic stores are built from the shared PTB-XL records at 100 Hz (12 x 1000), tiled to N records: copy k of
the base set carries its own Gaussian noise draw (`--noise-mv`, 0.01 mV), so every record is distinct (its own
signal hash) and the figures measure cost, not accuracy. Records get ids, patients (1-5 records each), PTB-XL
superclass labels (about 10% unlabelled), age, sex, a fold and the `scp_codes` of the record they copy.

For each size N (`--sizes`, capped by `--max-records`):

- build: for the ingest stage, N WFDB format-16 records (`.hea` + `.dat`, 1,000 to a folder, written directly)
  and a labels table joined with `--labels`; above `--ingest-max` (default 100,000) the store is written
  directly through `StoreWriter` in blocks, with the metadata and hashes ingest would give;
- stages, each in a fresh interpreter (peak memory is per stage), the cheap ones `--repeats` times (median):
  ingest (WFDB files -> store; sizes up to --ingest-max), open (`open_store`: manifest, memory map, metadata),
  hash (`record_hashes` over every row in ingest's chunks of 64; reading the rows is timed apart),
  duplicates (`duplicate_report` + `split_groups` on the metadata), split (`draw_split`, the random patient
  split `ecgcl run` draws, and `pretraining_pool`), targets (`task_targets` of `--task`), pretrain (the
  real `prepare` -> `finetune_split` -> `run_pretraining` path of `ecgcl pretrain`, CPU, tiny cnn, stopped after
  `--steps` steps of `--batch` records drawn from the whole pretraining pool (over as many epochs as a small
  pool needs: `pretrain_epochs`); per record = median step / batch,
  the store's pages dropped from the page cache first so misses count), pretrain setup (everything before the
  first step, per record of the store), embed (`embed_checkpoint` of `--embed-records`, default every
  record, page cache dropped first).

Cost is seconds per record (per record processed: rows for hash/ingest/embed, the store's records for
metadata stages, the batch's records for a step), and `ratio` is the largest N's over the smallest's; above 1.5
is flagged. Memory is each stage's peak private (anonymous) resident memory, sampled every 5 ms (file pages
of the memory map are page cache, not the process's), with the metadata table's in-memory size beside it and
the part beyond it: the measure that must not grow with N.

Disk: each size checks free space first (WFDB files + store + `--reserve-gb` left for others) and refuses
with a clear line when it lacks room; everything is written under a temporary folder (`--work`) removed at
the end, also on errors and Ctrl-C (`--keep` keeps it). A 1M-record store is 24 GB as float16 (the default
`--dtype` where the store supports it) and 48 GB as float32.

    OMP_NUM_THREADS=1 python benchmarks/scale.py [--sizes 10000,100000,1000000] [--max-records N]
        [--ptbxl ../shared/data/ptbxl] [--work DIR] [--dtype float16] [--steps 50] [--batch 64]
        [--embed-records all|N] [--repeats 3] [--workers 2] [--ingest-max 100000] [--json FILE] [--keep]
        [--profile STAGE]   (cProfile of that stage at every size, written beside --json)
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FS, SECONDS, LEADS = 100, 10, 12
SAMPLES = FS * SECONDS
NOISE_BANK = 521  # noise draws: copy k of the base set gets draw k % 521 (distinct records up to ~1M for 2k bases)
PER_FOLDER = 1000  # WFDB records per folder, as PTB-XL's records100/NNNNN
STAGES = ("ingest", "open", "hash", "duplicates", "split", "targets", "pretrain", "embed")
REPEATED = ("open", "duplicates", "split", "targets")  # cheap metadata stages: --repeats fresh processes
FLAG_RATIO = 1.5


# ----------------------------------------------------------------------------------------------- measuring


class PeakMemory:
    """The peak RssAnon (private resident memory) of this process, sampled every 5 ms by a thread; the
    file-backed pages a memory map touches are page cache, not counted. `VmHWM` is read at the end too."""

    def __init__(self) -> None:
        self.base = self.peak = _status("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _status("RssAnon"))

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status("RssAnon"))
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB (Linux)
        return {"peak_anon_mb": self.peak, "base_anon_mb": self.base, "vmhwm_mb": _status("VmHWM"),
                "children_maxrss_mb": children}


def _status(field: str) -> float:
    """A /proc/self/status field in MiB."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def drop_cache(path: Path) -> None:
    """Drop a file's (clean, unmapped) pages from the page cache, so the next reads go to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def drop_tree_cache(folder: Path) -> None:
    """`drop_cache` for every file under `folder` (one `sync` first rather than one per file)."""
    os.sync()
    for root, _, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def metadata_mb(metadata) -> float:
    return float(metadata.memory_usage(deep=True).sum()) / 2**20


# ------------------------------------------------------------------------------------------ synthetic data


class Base:
    """The shared records as one in-memory array (B, 12, 1000) float32 in mV, with what each record carries."""

    def __init__(self, ptbxl: Path, work: Path, workers: int) -> None:
        from ecgcl.data.ingest import ingest
        from ecgcl.data.store import open_store

        path = work / "base"
        ingest(ptbxl, path, fs=FS, length=SECONDS, workers=workers)
        store = open_store(path)
        self.path = path
        self.signals = np.asarray(store.signals, dtype=np.float32)
        self.leads = store.leads
        table = store.metadata
        self.scp_codes = table["scp_codes"].fillna("").astype(str).to_numpy() if "scp_codes" in table else \
            np.full(len(table), "", dtype=object)
        labels = table["labels"].fillna("").astype(str)
        self.label_pool = labels[labels != ""].to_numpy()
        ptp = np.sort(np.ptp(self.signals, axis=-1), axis=-1)
        self.amplitude = np.round((ptp[:, (LEADS - 1) // 2] + ptp[:, LEADS // 2]) / 2, 4)
        self.noise = None  # set by `with_noise`

    def with_noise(self, noise_mv: float) -> Base:
        rng = np.random.default_rng(2)
        self.noise = (rng.standard_normal((NOISE_BANK, LEADS, SAMPLES), dtype=np.float32) * noise_mv)
        return self

    def __len__(self) -> int:
        return len(self.signals)

    def sources(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(base record, noise draw) of records start..stop-1."""
        index = np.arange(start, stop)
        return index % len(self), (index // len(self)) % NOISE_BANK

    def block(self, start: int, stop: int) -> np.ndarray:
        source, copy = self.sources(start, stop)
        return self.signals[source] + self.noise[copy]


def record_ids(n: int) -> list[str]:
    """WFDB-style ids: `FFFFF/rNNNNNNN` (folder of 1,000, record number), as ingest names them."""
    return [f"{i // PER_FOLDER:05d}/r{i:07d}" for i in range(n)]


def synthetic_table(base: Base, n: int, seed: int = 0):
    """The labels table of N records: record_id, patient_id, labels, age, sex, strat_fold, scp_codes."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 6, size=n)  # 1-5 records per patient, consecutive records
    patient = np.repeat(np.arange(n), sizes)[:n]
    patients = int(patient[-1]) + 1
    labels = base.label_pool[rng.integers(len(base.label_pool), size=n)].astype(object)
    labels[rng.random(n) < 0.1] = ""
    age = rng.integers(18, 95, size=patients)[patient]
    sex = np.array(["F", "M"], dtype=object)[rng.integers(2, size=patients)][patient]
    fold = rng.integers(1, 11, size=patients)[patient]
    source, _ = base.sources(0, n)
    return pd.DataFrame({"record_id": record_ids(n), "patient_id": [f"p{p:07d}" for p in patient],
                         "labels": labels, "age": age, "sex": sex, "strat_fold": fold,
                         "scp_codes": base.scp_codes[source]})


def write_wfdb(base: Base, folder: Path, n: int) -> None:
    """N WFDB format-16 records (gain 1000/mV, as PTB-XL), written directly: one `.hea` and one `.dat` each."""
    digital = np.round(base.signals * 1000).astype(np.int32)
    noise = np.round(base.noise * 1000).astype(np.int32)
    ids = record_ids(n)
    for start in range(0, n, PER_FOLDER):
        stop = min(n, start + PER_FOLDER)
        (folder / ids[start].split("/")[0]).mkdir(parents=True, exist_ok=True)
        source, copy = base.sources(start, stop)
        block = np.clip(digital[source] + noise[copy], -32767, 32767).astype("<i2")  # (records, leads, samples)
        checksums = (block.astype(np.int64).sum(axis=-1) % 65536).astype(np.int64)
        for offset, record_id in enumerate(ids[start:stop]):
            name = record_id.split("/")[1]
            path = folder / record_id
            rows = block[offset]
            rows.T.tofile(f"{path}.dat")  # samples interleaved: (samples, leads)
            lines = [f"{name} {LEADS} {FS} {SAMPLES}"]
            lines += [f"{name}.dat 16 1000.0(0)/mV 16 0 {int(rows[lead, 0])} {int(checksums[offset, lead])} 0 "
                      f"{base.leads[lead]}" for lead in range(LEADS)]
            with open(f"{path}.hea", "w") as handle:
                handle.write("\n".join(lines) + "\n")


def write_direct(base: Base, out: Path, n: int, dtype: str, chunk: int = 1024) -> None:
    """The store ingest would write for the WFDB records (values, metadata, hashes), straight from memory in
    blocks of `chunk` records: memory stays at one block plus the metadata."""
    import pandas as pd

    from ecgcl.data.duplicates import HASH_COLUMN, duplicate_report, signal_hash
    from ecgcl.data.ingest import BASE_COLUMNS, ROW_COLUMNS
    from ecgcl.data.store import StoreWriter

    table = synthetic_table(base, n)
    hashes: list[str] = []
    kwargs = {"dtype": dtype} if "dtype" in inspect.signature(StoreWriter).parameters else {}
    with StoreWriter(out, LEADS, SAMPLES, **kwargs) as writer:
        for start in range(0, n, chunk):
            # as ingest: values quantised by the WFDB gain (1 uV), float32 rows hashed before the store's dtype
            block = np.round(base.block(start, min(n, start + chunk)) * 1000) / 1000
            block = block.astype(np.float32)
            hashes += [signal_hash(row) for row in block]
            writer.append(block)
        source, _ = base.sources(0, n)
        metadata = pd.DataFrame({
            "record_id": table["record_id"], "patient_id": table["patient_id"], "labels": table["labels"],
            "fs": float(FS), "original_fs": float(FS), "source_path": table["record_id"], "window": 0,
            "window_start": 0.0, "valid_samples": SAMPLES, "original_length": float(SECONDS),
            "amplitude_mv": base.amplitude[source], HASH_COLUMN: hashes, "age": table["age"],
            "sex": table["sex"], "strat_fold": table["strat_fold"], "scp_codes": table["scp_codes"]})
        assert list(metadata.columns[:len(BASE_COLUMNS) + len(ROW_COLUMNS)]) == [*BASE_COLUMNS, *ROW_COLUMNS]
        manifest = {"source": "synthetic (benchmarks/scale.py)", "source_kind": "synthetic", "fs": float(FS),
                    "length": float(SECONDS), "samples": SAMPLES, "leads": list(base.leads), "units": "mV",
                    **({"dtype": dtype} if kwargs else {}),
                    "counts": {"found": n, "written": n, "rows": n, "skipped": 0,
                               "patients": int(table["patient_id"].nunique())},
                    "duplicates": duplicate_report(metadata)}
        writer.finish(metadata, manifest)


# ---------------------------------------------------------------------------------------------- the stages


def stage_ingest(args, store: Path) -> dict[str, Any]:
    from ecgcl.data.ingest import ingest
    from ecgcl.data.ingest_options import IngestOptions
    from ecgcl.data.label_table import read_label_table

    source, labels = Path(args.source), Path(args.labels)
    drop_tree_cache(source)
    dtype = {"dtype": args.dtype} if "dtype" in IngestOptions.__dataclass_fields__ else {}
    memory = PeakMemory()
    start = time.perf_counter()
    table = read_label_table(labels, patient_column="patient_id")
    result = ingest(source, store, fs=FS, length=SECONDS, labels=table, workers=args.workers, **dtype)
    seconds = time.perf_counter() - start
    figures = memory.stop()
    from ecgcl.data.store import open_store

    return {"seconds": seconds, "records": result.written, **figures, "skipped": len(result.skipped),
            "metadata_mb": metadata_mb(open_store(store).metadata)}


def stage_open(args, store: Path) -> dict[str, Any]:
    from ecgcl.data.store import open_store

    memory = PeakMemory()
    start = time.perf_counter()
    opened = open_store(store)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "records": len(opened), **memory.stop(), "metadata_mb": metadata_mb(opened.metadata)}


def stage_hash(args, store: Path) -> dict[str, Any]:
    """`record_hashes` over every row in ingest's chunks of 64 (rows read from the store, timed apart)."""
    from ecgcl.data.duplicates import record_hashes
    from ecgcl.data.store import open_store

    opened = open_store(store)
    drop_cache(store / "signals.npy")
    memory = PeakMemory()
    read = hashing = 0.0
    found = 0
    for start in range(0, len(opened), 64):
        began = time.perf_counter()
        rows = np.asarray(opened.signals[start:start + 64], dtype=np.float32)
        middle = time.perf_counter()
        found += len(record_hashes(rows, np.arange(start, start + len(rows))))
        hashing += time.perf_counter() - middle
        read += middle - began
    return {"seconds": hashing, "records": found, "read_seconds": read, **memory.stop(),
            "metadata_mb": metadata_mb(opened.metadata)}


def stage_duplicates(args, store: Path) -> dict[str, Any]:
    from ecgcl.data.duplicates import duplicate_report, split_groups
    from ecgcl.data.store import open_store

    opened = open_store(store)
    memory = PeakMemory()
    start = time.perf_counter()
    report = duplicate_report(opened.metadata)
    middle = time.perf_counter()
    groups = split_groups(opened.metadata)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "records": len(opened), "report_seconds": middle - start,
            "groups_seconds": seconds - (middle - start), "groups": int(groups.max()) + 1,
            "duplicate_groups": report["groups"], **memory.stop(), "metadata_mb": metadata_mb(opened.metadata)}


def stage_split(args, store: Path) -> dict[str, Any]:
    from ecgcl.data.store import open_store
    from ecgcl.manager import get_registry
    from ecgcl.protocol.splits import pretraining_pool
    from ecgcl.protocol.strategies import draw_split
    from ecgcl.split_spec import parse_split
    from ecgcl.tasks import task_targets

    opened = open_store(store)
    targets = task_targets(args.task, opened.metadata, registry=get_registry())
    memory = PeakMemory()
    start = time.perf_counter()
    split = draw_split(parse_split("random", [], []), opened, targets, repeat=0, seed=0, val_fraction=0.15,
                       test_fraction=0.15)
    middle = time.perf_counter()
    pool = pretraining_pool(opened.group_codes, split)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "records": len(opened), "draw_seconds": middle - start,
            "pool_seconds": seconds - (middle - start), "train": len(split.train), "pool": len(pool),
            **memory.stop(), "metadata_mb": metadata_mb(opened.metadata)}


def stage_targets(args, store: Path) -> dict[str, Any]:
    from ecgcl.data.store import open_store
    from ecgcl.manager import get_registry
    from ecgcl.tasks import task_targets

    opened = open_store(store)
    registry = get_registry()
    memory = PeakMemory()
    start = time.perf_counter()
    targets = task_targets(args.task, opened.metadata, registry=registry)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "records": len(opened), "labelled": int(targets.labelled.sum()), **memory.stop(),
            "metadata_mb": metadata_mb(opened.metadata)}


class _Stop(Exception):
    """Raised by the step timer once the benchmark has its steps."""


def _run_config(args, store: Path, out: Path):
    from ecgcl.config import RunConfig

    return RunConfig(data=str(store), task=args.task, encoder="cnn", encoder_args={"width": 4, "depth": 1},
                     embed_dim=8, projection_dim=8, pretrain_epochs=1, batch_size=args.batch, device="cpu",
                     out=str(out), seed=0)


def stage_pretrain(args, store: Path) -> dict[str, Any]:
    """`ecgcl pretrain`'s path (prepare, the repeat-0 split, the pool, run_pretraining), stopped after the steps."""
    import dataclasses

    import torch

    from ecgcl.engine.speed import StepTimer, TrainOptions, training_options
    from ecgcl.protocol.runner import finetune_split, prepare, run_pretraining
    from ecgcl.protocol.splits import pretraining_pool

    torch.set_num_threads(1)
    steps: list[float] = []
    waits: list[float] = []

    first_began: list[float] = []  # when the first step started (step_s counts from its batch request)

    class Timer(StepTimer):
        def record(self, wait_s: float, step_s: float, samples: int) -> None:
            super().record(wait_s, step_s, samples)
            if not steps:
                first_began.append(time.perf_counter() - step_s)
            steps.append(step_s)
            waits.append(wait_s)
            if len(steps) >= args.steps:
                raise _Stop

    out = Path(args.out)
    memory = PeakMemory()
    start = time.perf_counter()
    exp = prepare(_run_config(args, store, out), need_labels=False)
    prepared = time.perf_counter()
    pool = pretraining_pool(exp.store.group_codes, finetune_split(exp))
    epochs, batch = pretrain_epochs(len(pool), args.batch, args.steps)
    exp.config = dataclasses.replace(exp.config, pretrain_epochs=epochs)  # the steps run on across epochs
    pooled = time.perf_counter()
    drop_cache(store / "signals.npy")
    fields = {f.name for f in dataclasses.fields(TrainOptions)}
    options = TrainOptions(timer=Timer(), **({"preload": "off"} if "preload" in fields else {}))
    began = time.perf_counter()
    try:
        with training_options(options):
            run_pretraining(exp, pool, out, 0, unit={})
    except _Stop:
        pass
    ended = time.perf_counter()
    if len(steps) < args.steps:
        raise SystemExit(f"pretraining stopped after {len(steps)} of {args.steps} steps ({epochs} epoch(s) of a pool "
                         f"of {len(pool)} records, batch {args.batch})")
    step = statistics.median(steps)
    before_first = first_began[0] - began
    setup = before_first + (pooled - start)  # everything before the first step
    return {"seconds": step, "records": batch, "step_mean_s": sum(steps) / len(steps),
            "wait_median_s": statistics.median(waits), "setup_seconds": setup, "epochs": epochs,
            "pool": len(pool), "prepare_seconds": prepared - start, "pool_seconds": pooled - prepared,
            "before_first_step_seconds": before_first, "store_records": len(exp.store),
            **memory.stop(), "metadata_mb": metadata_mb(exp.store.metadata)}


def pretrain_epochs(pool: int, batch: int, steps: int) -> tuple[int, int]:
    """(epochs, records per step) for `steps` pretraining steps over a pool of `pool` records: a pool of at
    least `batch` gives `pool // batch` full batches an epoch (the rest is dropped), a smaller one a single batch
    of the whole pool, so small sizes take their steps across epochs."""
    if pool < 1:
        raise SystemExit("pretraining pool is empty: the store is too small for a patient split (use more records)")
    per_epoch = pool // batch if pool >= batch else 1
    return math.ceil(steps / per_epoch), min(batch, pool)


def make_checkpoint(args, store: Path, path: Path) -> None:
    """An encoder checkpoint of the benchmark's model (fresh weights), as `ecgcl pretrain` saves one."""
    from ecgcl.engine.checkpoint import save_checkpoint
    from ecgcl.protocol.runner import prepare

    exp = prepare(_run_config(args, store, path.parent), need_labels=False)
    encoder = exp.new_encoder(0)
    save_checkpoint(path, {"kind": "encoder", "meta": exp.meta(stage="pretrain"), "history": [],
                           "encoder": encoder.state_dict()})


def stage_embed(args, store: Path) -> dict[str, Any]:
    import torch

    from ecgcl.engine.embeddings import embed_checkpoint

    torch.set_num_threads(1)
    record_ids = None
    if args.embed_records != "all":
        import pandas as pd

        ids = pd.read_csv(store / "metadata.csv", usecols=["record_id"], dtype=str)["record_id"].to_numpy()
        count = min(len(ids), int(args.embed_records))
        record_ids = list(ids[np.sort(np.random.default_rng(0).choice(len(ids), count, replace=False))])
        del ids
    drop_cache(store / "signals.npy")
    out = Path(args.out) / "embeddings.npy"
    memory = PeakMemory()
    start = time.perf_counter()
    summary = embed_checkpoint(args.checkpoint, store, out, record_ids=record_ids, device="cpu", overwrite=True)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "records": summary["records"], **memory.stop()}


# ------------------------------------------------------------------ fixes proposed for files this benchmark does not own


STAGE_FUNCTIONS = {"ingest": stage_ingest, "open": stage_open, "hash": stage_hash, "duplicates": stage_duplicates,
                   "split": stage_split, "targets": stage_targets, "pretrain": stage_pretrain, "embed": stage_embed}


def run_stage_here(args) -> None:
    """Child side: run one stage (optionally under cProfile) and print its figures as the last JSON line."""
    store = Path(args.store)
    function = STAGE_FUNCTIONS[args.stage]
    if args.profile_to:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(function, args, store)
        profiler.dump_stats(args.profile_to)
    else:
        result = function(args, store)
    print(json.dumps(result))


def run_stage(args, stage: str, store: Path, scratch: Path, extra: list[str] = (),
              profile_to: Path | None = None) -> dict[str, Any]:
    """Parent side: one stage in a fresh interpreter (so each peak is the stage's own)."""
    command = [sys.executable, __file__, "--stage", stage, "--store", str(store), "--task", args.task,
               "--steps", str(args.steps), "--batch", str(args.batch), "--workers", str(args.workers),
               "--embed-records", str(args.embed_records), "--dtype", args.dtype, "--out", str(scratch), *extra]
    if profile_to is not None:
        command += ["--profile-to", str(profile_to)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"stage {stage} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------- driver


def needed_bytes(n: int, dtype: str, wfdb: bool) -> int:
    """Disk a size needs at its peak: the store (signals + ~300 B of metadata a record) and, when ingested,
    the WFDB files beside it (a 4 KiB block for each header, 24,000 bytes of samples each)."""
    itemsize = 2 if dtype == "float16" else 4
    store = n * (LEADS * SAMPLES * itemsize + 300)
    return store + (n * (4096 + 24576) if wfdb else 0) + (n * 80)  # + embeddings and their ids


def supported_dtype(dtype: str) -> str:
    """float16 only when both the store writer and ingest take a dtype (another change adds them)."""
    from ecgcl.data.ingest_options import IngestOptions
    from ecgcl.data.store import StoreWriter

    if dtype == "float32":
        return dtype
    if "dtype" in inspect.signature(StoreWriter).parameters and "dtype" in IngestOptions.__dataclass_fields__:
        return dtype
    print("this ecgcl has no float16 stores yet: using float32 (a 1M store is then 48 GB)", flush=True)
    return "float32"


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def run_size(args, base: Base, n: int, folder: Path, checkpoint: Path) -> dict[str, Any]:
    """Every stage at size N; the size's files are removed before returning (also on errors)."""
    ingested = "ingest" in args.stages and n <= args.ingest_max
    need = needed_bytes(n, args.dtype, ingested)
    free = shutil.disk_usage(args.work).free
    if free - need < args.reserve_gb * 1e9:
        return {"n": n, "refused": f"needs {gb(need)} of disk and {gb(free)} is free ({args.reserve_gb:g} GB kept "
                                   "for others); run smaller with --max-records or --sizes"}
    folder.mkdir(parents=True)
    figures: dict[str, Any] = {"n": n, "stages": {}, "timings": {}}
    store = folder / "store"
    scratch = folder / "scratch"
    scratch.mkdir()
    began = time.perf_counter()
    try:
        if ingested:
            source = folder / "wfdb"
            started = time.perf_counter()
            write_wfdb(base, source, n)
            synthetic_table(base, n).to_csv(folder / "labels.csv", index=False)
            figures["timings"]["build_wfdb_s"] = time.perf_counter() - started
            log(f"  {n:,}: WFDB files written in {figures['timings']['build_wfdb_s']:.0f} s")
            figures["stages"]["ingest"] = [run_stage(args, "ingest", store, scratch,
                                                     ["--source", str(source), "--labels", str(folder / "labels.csv")],
                                                     profile_to=_profile(args, "ingest", n))]
            shutil.rmtree(source)
            log_stage(n, "ingest", figures["stages"]["ingest"])
        else:
            started = time.perf_counter()
            write_direct(base, store, n, args.dtype)
            figures["timings"]["build_store_s"] = time.perf_counter() - started
            log(f"  {n:,}: store written directly in {figures['timings']['build_store_s']:.0f} s")
        figures["store_bytes"] = (store / "signals.npy").stat().st_size
        for stage in args.stages:
            if stage == "ingest":
                continue
            repeats = args.repeats if stage in REPEATED else 1
            extra = ["--checkpoint", str(checkpoint)] if stage == "embed" else []
            runs = []
            for repeat in range(repeats):
                profile = _profile(args, stage, n) if repeat == 0 else None
                runs.append(run_stage(args, stage, store, scratch, extra, profile_to=profile))
            figures["stages"][stage] = runs
            log_stage(n, stage, runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    figures["timings"]["total_s"] = time.perf_counter() - began
    log(f"  {n:,}: done in {figures['timings']['total_s'] / 60:.1f} min")
    return figures


def _profile(args, stage: str, n: int) -> Path | None:
    if args.profile != stage:
        return None
    return Path(args.json).with_name(f"scale-{stage}-{n}.prof")


def log(text: str) -> None:
    print(text, flush=True)


def log_stage(n: int, stage: str, runs: list[dict[str, Any]]) -> None:
    row = summarise(runs)
    log(f"  {n:,} {stage:<10} {row['per_record'] * 1e6:10.2f} us/record   peak {row['peak_mb']:8.1f} MB"
        + (f"   setup {row['setup_per_record'] * 1e6:.2f} us/record" if "setup_per_record" in row else ""))


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median per-record cost over the runs; the largest peak."""
    per_record = statistics.median(r["seconds"] / max(r["records"], 1) for r in runs)
    peak = max(r["peak_anon_mb"] for r in runs)
    base = statistics.median(r["base_anon_mb"] for r in runs)
    row = {"per_record": per_record, "peak_mb": peak, "base_mb": base,
           "stage_mb": max(r["peak_anon_mb"] - r["base_anon_mb"] for r in runs),
           "metadata_mb": max((r.get("metadata_mb", 0.0) for r in runs), default=0.0),
           "children_mb": max(r.get("children_maxrss_mb", 0.0) for r in runs)}
    if "setup_seconds" in runs[0]:
        row["setup_per_record"] = statistics.median(r["setup_seconds"] / r["store_records"] for r in runs)
    return row


def report(results: list[dict[str, Any]], args) -> None:
    """The table: per-record cost per stage and size, the ratio largest/smallest, peak memory."""
    sizes = [r for r in results if "stages" in r]
    for refused in (r for r in results if "refused" in r):
        log(f"size {refused['n']:,} refused: {refused['refused']}")
    if not sizes:
        return
    metadata = {r["n"]: max((summarise(runs)["metadata_mb"] for runs in r["stages"].values()), default=0.0)
                for r in sizes}
    rows = []
    for stage in STAGES:
        present = [(r["n"], summarise(r["stages"][stage])) for r in sizes if stage in r["stages"]]
        if not present:
            continue
        rows.append((stage, present, "per_record"))
        if stage == "pretrain":
            rows.append(("pretrain setup", present, "setup_per_record"))
    header = ["stage"] + [f"{n:,} us/rec" for n in (r["n"] for r in sizes)] + ["ratio"] + \
             [f"{n:,} MB (beyond meta)" for n in (r["n"] for r in sizes)]
    lines = [header]
    for name, present, key in rows:
        by_n = {n: row for n, row in present}
        costs = [by_n[r["n"]][key] * 1e6 if r["n"] in by_n else None for r in sizes]
        given = [c for c in costs if c is not None]
        ratio = given[-1] / given[0] if len(given) > 1 and given[0] > 0 else math.nan
        flag = " !" if ratio > FLAG_RATIO else ""
        memory = []
        for r in sizes:
            row = by_n.get(r["n"])
            memory.append("-" if row is None or key != "per_record" else
                          f"{row['stage_mb']:.0f} ({row['stage_mb'] - metadata[r['n']]:+.0f})")
        lines.append([name] + [f"{c:.2f}" if c is not None else "-" for c in costs] + [f"{ratio:.2f}{flag}"] + memory)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    log("")
    log(f"Per-record cost (us) and stage memory (peak private MB above the interpreter's start, and beyond the "
        f"metadata table), {args.dtype} stores, {os.cpu_count()} CPU cores shared; ratio = largest / smallest N, "
        f"'!' above {FLAG_RATIO}")
    for line in lines:
        log("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))))
    log("metadata table in memory (MB): " + ", ".join(f"{n:,}: {mb:.0f}" for n, mb in metadata.items()))
    log("interpreter at stage start (MB): " + ", ".join(
        f"{r['n']:,}: {statistics.median(summarise(v)['base_mb'] for v in r['stages'].values()):.0f}" for r in sizes))
    log("time per size: " + ", ".join(f"{r['n']:,}: {r['timings']['total_s'] / 60:.1f} min" for r in sizes))


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated record counts")
    parser.add_argument("--max-records", type=int, default=None, help="leave out sizes above this")
    parser.add_argument("--ptbxl", type=Path, default=REPO.parent / "shared" / "data" / "ptbxl")
    parser.add_argument("--work", type=Path, default=None, help="folder for the temporary files (default: system)")
    parser.add_argument("--dtype", default="float16", choices=("float16", "float32"))
    parser.add_argument("--steps", type=int, default=50, help="pretraining steps timed")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--embed-records", default="all", help="records embedded: all, or a random sample of N")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes for the cheap metadata stages")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="ingest workers")
    parser.add_argument("--ingest-max", type=int, default=100_000,
                        help="largest size ingested from WFDB files; larger stores are written directly")
    parser.add_argument("--stages", default=",".join(STAGES))
    parser.add_argument("--task", default="normal_vs_abnormal")
    parser.add_argument("--noise-mv", type=float, default=0.01)
    parser.add_argument("--reserve-gb", type=float, default=10.0, help="disk left free for others")
    parser.add_argument("--json", default=None, help="write every figure here (default: ./scale.json)")
    parser.add_argument("--profile", default=None, choices=STAGES, help="cProfile this stage at every size")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    # the child side of one stage
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--source", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--labels", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.stage:
        run_stage_here(args)
        return
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if args.max_records is not None:
        sizes = [n for n in sizes if n <= args.max_records] or [args.max_records]
    args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown:
        raise SystemExit(f"--stages: unknown {', '.join(unknown)} (known: {', '.join(STAGES)})")
    args.json = args.json or str(Path.cwd() / "scale.json")
    args.dtype = supported_dtype(args.dtype)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = Path(tempfile.mkdtemp(prefix="ecgcl-scale-", dir=args.work))
    args.work = work
    results: list[dict[str, Any]] = []
    log(f"sizes {', '.join(f'{n:,}' for n in sizes)}; {args.dtype} stores; work folder {work}")
    try:
        base = Base(args.ptbxl, work, args.workers).with_noise(args.noise_mv)
        log(f"base: {len(base)} records of {args.ptbxl}")
        checkpoint = work / "encoder.pt"
        make_checkpoint(args, base.path, checkpoint)
        for n in sizes:
            results.append(run_size(args, base, n, work / f"n{n}", checkpoint))
            Path(args.json).write_text(json.dumps({"sizes": results, "dtype": args.dtype}, indent=1))
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(results, args)
    log(f"figures: {args.json}")


if __name__ == "__main__":
    main()
