"""Ingest of the shared real PTB-XL subset: values, labels, patients, folds, determinism, atomicity."""

import ast
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import wfdb

from ecgcl.data import ingest as ingest_module
from ecgcl.data.ingest import ingest
from ecgcl.data.leads import STANDARD_LEADS, normalise_lead_name
from ecgcl.plugins.readers.ptbxl import load_statements
from ecgcl.data.store import open_store
from ecgcl.tasks import task_targets
from ecgcl.plugins.readers.wfdb_files import read_wfdb


@pytest.fixture(scope="module")
def small_store(ptbxl_dir, tmp_path_factory):
    return ingest(ptbxl_dir, tmp_path_factory.mktemp("ingest") / "store", limit=30, workers=1)


def test_fast_reader_matches_wfdb_exactly(ptbxl_dir):
    for stem in ["records100/00000/00001_lr", "records100/01000/01500_lr", "records500/00000/00042_hr"]:
        ours = read_wfdb(ptbxl_dir / stem)
        theirs = wfdb.rdrecord(str(ptbxl_dir / stem), return_res=32)
        assert np.array_equal(ours.signal, theirs.p_signal.T) and ours.fs == theirs.fs
        assert ours.leads == theirs.sig_name and ours.units == theirs.units == ["mV"] * 12  # names as written
        assert [normalise_lead_name(n) for n in ours.leads] == list(STANDARD_LEADS)


def test_store_holds_the_records_values_in_standard_order(small_store, ptbxl_dir):
    store = open_store(small_store.path)
    assert store.signals.shape == (30, 12, 1000) and store.fs == 100.0 and store.manifest["length"] == 10.0
    assert small_store.written == 30 and small_store.skipped == []
    for row in (0, 17, 29):
        expected, _ = wfdb.rdsamp(str(ptbxl_dir / store.metadata["source_path"][row]))
        np.testing.assert_allclose(store.signals[row], expected.T, rtol=2 ** -11, atol=1e-6)  # float16 rounding
    assert store.dtype == "float16" and small_store.manifest["dtype"] == "float16"  # the default


def test_labels_patients_and_folds_come_from_the_database(small_store, ptbxl_dir):
    store = open_store(small_store.path)
    db = pd.read_csv(ptbxl_dir / "ptbxl_database.csv", index_col="ecg_id")
    statements = load_statements(ptbxl_dir)
    for row in store.metadata.itertuples():
        entry = db.loc[int(row.record_id)]
        codes = ast.literal_eval(entry.scp_codes)
        expected = {statements[c] for c in codes if c in statements}
        assert set(filter(None, row.labels.split(";"))) == expected
        assert row.patient_id == str(int(entry.patient_id)) and row.strat_fold == entry.strat_fold
        assert json.loads(row.scp_codes) == codes and row.sex in ("M", "F")
    targets = task_targets("normal_vs_abnormal", store.metadata)
    assert targets.labelled.sum() > 20 and 0 < targets.y[targets.labelled].mean() < 1


def test_unlabelled_records_stay_with_their_own_patient_id(ptbxl_dir, tmp_path):
    """Records 1500-1519 mix database rows and records without one; the latter are kept, unlabelled."""
    root = tmp_path / "ptbxl"
    (root / "records100" / "01000").mkdir(parents=True)
    for name in ("ptbxl_database.csv", "scp_statements.csv"):
        shutil.copy(ptbxl_dir / name, root / name)
    for ecg_id in range(1500, 1520):
        for suffix in (".hea", ".dat"):
            source = ptbxl_dir / "records100" / "01000" / f"{ecg_id:05d}_lr{suffix}"
            if source.is_file():
                shutil.copy(source, root / "records100" / "01000")
    known = set(pd.read_csv(ptbxl_dir / "ptbxl_database.csv")["ecg_id"].astype(str))
    store = open_store(ingest(root, tmp_path / "store", workers=1).path)
    unlabelled = store.metadata[~store.metadata["record_id"].isin(known)]
    labelled = store.metadata[store.metadata["record_id"].isin(known)]
    assert len(unlabelled) > 0 and len(labelled) > 0, "the shared subset mixes both kinds in 1500-1519"
    assert (unlabelled["labels"] == "").all() and unlabelled["strat_fold"].isna().all()
    assert (unlabelled["patient_id"] == "record:" + unlabelled["record_id"]).all()
    assert store.manifest["counts"]["unlabelled"] >= len(unlabelled)
    assert not labelled["patient_id"].str.startswith("record:").any()


def test_same_source_same_hash_with_threads_or_processes(ptbxl_dir, tmp_path, small_store):
    again = ingest(ptbxl_dir, tmp_path / "again", limit=30, workers=2)
    assert again.manifest["hash"] == small_store.manifest["hash"]


def test_500hz_records_resampled_filtered_and_lead_subset(ptbxl_dir, tmp_path):
    result = ingest(ptbxl_dir, tmp_path / "hr", fs=250, length=4, leads="v1,II,avr", band="0.5-40", limit=6,
                    workers=1)
    store = open_store(result.path)
    assert store.signals.shape == (6, 3, 1000) and store.leads == ["V1", "II", "aVR"]
    assert result.manifest["options"]["resolution"] == "hr" and set(store.metadata["original_fs"]) == {500.0}
    assert result.manifest["preprocessing"]["filter"].endswith("0.5-40 Hz")
    raw, _ = wfdb.rdsamp(str(ptbxl_dir / store.metadata["source_path"][0]))
    assert np.abs(store.signals[0].mean(axis=-1)).max() < 0.05  # band-pass removed the offset
    assert np.corrcoef(store.signals[0, 0, 100:900], raw[200:1800:2, 6])[0, 1] > 0.9  # same V1, half the rate


def test_interrupted_ingest_leaves_no_store_and_no_temporary_folder(ptbxl_dir, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = ingest_module.process_chunk

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest_module, "process_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ingest(ptbxl_dir, tmp_path / "store", limit=40, workers=1)
    assert list(tmp_path.iterdir()) == []
