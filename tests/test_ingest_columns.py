"""What ingest holds per record, as columns (`ecgcl.data.ingest_columns`): the refs and each chunk's results give
back exactly what the RecordRef objects and per-record dicts held, the store's metadata is the same whatever
the chunking, a worker process gets the reader once, and a record costs a few hundred bytes, not kilobytes."""

from __future__ import annotations

import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecgcl.data import ingest as ingest_module
from ecgcl.data.duplicates import HASH_COLUMN
from ecgcl.data.ingest import ingest
from ecgcl.data.ingest_columns import MISSING, MetaColumns, RecordColumns, RefTable
from ecgcl.data.plan import Plan
from ecgcl.data.records import RecordRef
from ecgcl.plugins.readers.wfdb import WfdbReader

LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


def varied_refs() -> list[RecordRef]:
    """Refs as readers make them: metadata with keys some records lack, a None value, tuple locators (a mixed
    folder's), identifying flags."""
    return [RecordRef("a/1", "a/1.hea", "/data/a/1", {"patient_id": "p1", "age": 54}),
            RecordRef("a/2", "a/2.xml", (1, "/data/a/2.xml"), {"age": None, "sex": "F"}, identifying=True),
            RecordRef("b/3", "b/3.hea", "/data/b/3"),
            RecordRef("b/4", "b/4.hea", (0, "/data/b/4"), {"labels": "AF", "patient_id": "p1", "format": "wfdb"})]


def test_a_ref_table_gives_back_every_ref():
    refs = varied_refs()
    table = RefTable(refs)
    assert len(table) == 4 and [table[i] for i in range(4)] == refs and table[1:3] == refs[1:3]
    assert table.identifying.tolist() == [False, True, False, False]
    assert list(table.meta.columns) == ["patient_id", "age", "sex", "labels", "format"]  # first seen first


def test_meta_columns_concatenate_select_and_cross_processes_as_the_dicts_did():
    first, second = MetaColumns.of([{"a": 1}, {}]), MetaColumns.of([{"b": "x", "a": 2}])
    both = MetaColumns.concat([first, second])
    assert [both.at(i) for i in range(3)] == [{"a": 1}, {}, {"a": 2, "b": "x"}]
    assert both.take(np.array([False, True, True])).at(1) == {"a": 2, "b": "x"}
    assert both.present("b").tolist() == [False, False, True]
    first_values = both.values("a")
    assert first_values[0] == 1 and np.isnan(first_values[1]) and first_values[2] == 2
    assert pickle.loads(pickle.dumps(both)).columns["b"][0] is MISSING  # a worker's MISSING is this one


def chunk_records(positions: list[int], metas: list[dict], hashes: list[str], facts=None) -> RecordColumns:
    n = len(positions)
    return RecordColumns(np.array(positions, np.int64), np.full(n, 500.0), np.full(n, 10.0),
                         np.linspace(1.0, 2.0, n), np.array(hashes, dtype="S"), MetaColumns.of(metas), facts or {})


def test_the_metadata_table_is_the_one_the_records_dicts_gave():
    """`_metadata` on columns equals the table built, as ingest did before, from each record's merged dicts
    ({**ref.meta, **loaded meta, hash}): same columns in the same order, same values and dtypes."""
    refs = varied_refs()
    loaded = [{"age": 61, "statements": "sinus rhythm"}, {}, {"sex": "M", HASH_COLUMN: "stale"}]
    hashes = ["00000000000000aa", "00000000000000bb", "00000000000000cc"]
    kept = [0, 2, 3]  # record 1 was skipped
    parts = [chunk_records(kept[:1], loaded[:1], hashes[:1]),
             chunk_records(kept[1:], loaded[1:], hashes[1:], {3: {"derived_leads": ["III", "aVR"]}})]
    records = RecordColumns.concat(parts)
    rows = ingest_module._row_columns([(np.array([0, 2, 2, 3]), np.array([0, 0, 1, 0]), np.array([0, 0, 500, 0]),
                                        np.full(4, 1000))], Plan(tuple(LEADS), 100.0, 1000))
    table = ingest_module._metadata(RefTable(refs), records, rows, Plan(tuple(LEADS), 100.0, 1000))

    dicts = [{**refs[p].meta, **meta, HASH_COLUMN: digest} for p, meta, digest in zip(kept, loaded, hashes)]
    expected = pd.DataFrame(dicts)
    assert list(table.columns) == ["record_id", "patient_id", "labels", "fs", "original_fs", "source_path", "window",
                                   "window_start", "valid_samples", "original_length", "amplitude_mv",
                                   *[c for c in expected.columns if c not in ("patient_id", "labels")],
                                   "derived_leads", "position"]
    assert table["record_id"].tolist() == ["a/1", "b/3", "b/3", "b/4"]
    assert table["patient_id"].tolist() == ["p1", "record:b/3", "record:b/3", "p1"]
    assert table["labels"].tolist() == ["", "", "", "AF"] and table["window_start"].tolist() == [0, 0, 5.0, 0]
    assert table[HASH_COLUMN].tolist() == ["00000000000000aa", "00000000000000bb", "00000000000000bb",
                                           "00000000000000cc"]
    assert table["derived_leads"].tolist() == ["", "", "", "III;aVR"]
    by_record = table.drop_duplicates("record_id").reset_index(drop=True)
    for column in ("age", "sex", "statements", "format"):
        assert by_record[column].dtype == expected[column].dtype, column
        assert by_record[column].equals(expected[column]), column


def write_commented_records(ecg_files, ptbxl: Path, folder: Path, count: int) -> None:
    """WFDB records with header comments that some records lack (age, sex, Dx), so columns have gaps."""
    for i in range(count):
        comments = ([f"Age: {30 + i}"] if i % 3 else []) + (["Sex: Female"] if i % 4 == 1 else []) + \
            (["Dx: 426783006"] if i % 5 else [])
        ecg_files.write_record(folder / f"g{i % 2}", f"R{i:03d}", ecg_files.digital(ptbxl, i + 1),
                               comments=tuple(comments))


def test_the_store_metadata_does_not_depend_on_workers_or_chunks(ecg_files, ptbxl_dir, tmp_path):
    write_commented_records(ecg_files, ptbxl_dir, tmp_path / "wfdb", 36)
    one = ingest(tmp_path / "wfdb", tmp_path / "one", workers=1)  # chunks of 9 records
    two = ingest(tmp_path / "wfdb", tmp_path / "two", workers=2)  # chunks of 8, in two processes
    assert one.written == two.written == 36
    assert (one.path / "metadata.csv").read_bytes() == (two.path / "metadata.csv").read_bytes()
    table = pd.read_csv(one.path / "metadata.csv")
    assert table["age"].isna().sum() == 12 and table["sex"].notna().sum() == 9


class CountingReader(WfdbReader):
    """A WFDB reader that counts how often it is pickled (in the ingest process, where pickling happens)."""

    pickled = 0

    def __getstate__(self) -> dict:
        type(self).pickled += 1
        return super().__getstate__()


def test_worker_processes_get_the_reader_once_not_with_every_chunk(ecg_files, ptbxl_dir, tmp_path):
    write_commented_records(ecg_files, ptbxl_dir, tmp_path / "wfdb", 48)
    reader = CountingReader(tmp_path / "wfdb")
    refs = RefTable(reader.discover())
    chunks = list(ingest_module._run_chunks(reader, refs, Plan(tuple(LEADS), 100.0, 1000), workers=2))
    assert len(chunks) == len(ingest_module._chunks(48, 2)) == 6
    assert sum(len(c.records) for c in chunks) == 48
    assert CountingReader.pickled <= 2  # once a worker at most (none where workers are forked)


def test_a_record_costs_a_few_hundred_bytes_while_ingest_runs():
    """The refs of a 20,480-record WFDB folder and the results of its chunks, as ingest holds them to the end:
    ~0.2 kB a record, mostly the id and path strings themselves (RecordRef objects with their dicts and a dict
    of results per record took ~1.3 kB)."""
    n = 64 * 320
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        ids = [f"{i // 1000:05d}/r{i:07d}" for i in range(n)]
        refs = RefTable([RecordRef(rel, rel, f"/archives/synthetic/wfdb/{rel}") for rel in ids])  # as WfdbReader
        del ids
        parts = [chunk_records(list(range(start, start + 64)), [{}] * 64, [f"{i:016x}" for i in range(64)])
                 for start in range(0, n, 64)]
        records = RecordColumns.concat(parts)
        del parts
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(refs) == len(records) == n
    assert held / n < 300, f"{held / n:.0f} bytes a record"
