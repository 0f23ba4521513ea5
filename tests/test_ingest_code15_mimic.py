"""CODE-15 HDF5 parts (zero padding trimmed, exams.csv joined) and the MIMIC-IV-ECG tree with record_list.csv,
both built inside the tests from real PTB-XL signals."""

import numpy as np
import pandas as pd
import pytest
import wfdb
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.plugins.readers.code15 import trim_padding
from ecgcl.data.ingest import ingest
from ecgcl.data.store import open_store

h5py = pytest.importorskip("h5py")


def mv(ptbxl_dir, ecg_id, hr=True):
    folder, suffix = ("records500", "hr") if hr else ("records100", "lr")
    return wfdb.rdsamp(str(ptbxl_dir / folder / "00000" / f"{ecg_id:05d}_{suffix}"))[0].astype(np.float32)


def centred(signal, total=4096):
    """CODE-15's layout: the tracing centred in `total` samples with zeros on both sides."""
    out = np.zeros((total, 12), np.float32)
    start = (total - len(signal)) // 2
    out[start:start + len(signal)] = signal
    return out


@pytest.fixture
def code15(ptbxl_dir, tmp_path):
    """Two parts: 10 s (4000) and 7 s (2800 samples) tracings of real ECGs, at CODE-15's 400 Hz, with exams.csv."""
    folder = tmp_path / "code15"
    folder.mkdir()
    tracings = {101: mv(ptbxl_dir, 1)[:4000], 102: mv(ptbxl_dir, 2)[:2800], 103: mv(ptbxl_dir, 3)[:4000],
                201: mv(ptbxl_dir, 4)[:4000], 202: mv(ptbxl_dir, 5)[:4000]}
    tracings[103][-7:] = 0  # a tracing whose signal ends on true zeros keeps them
    for part, ids in (("exams_part0.hdf5", [101, 102, 103]), ("exams_part1.hdf5", [201, 202])):
        with h5py.File(folder / part, "w") as handle:
            handle.create_dataset("tracings", data=np.stack([centred(tracings[i]) for i in ids]), chunks=(1, 4096, 12))
            handle.create_dataset("exam_id", data=np.array(ids, dtype=np.int64))
    pd.DataFrame({"exam_id": [101, 102, 103, 201], "age": [50, 60, 70, 50], "is_male": [True, False, True, True],
                  "nn_predicted_age": [51.0, 59.0, 70.0, 52.0], "1dAVb": [False, False, True, False],
                  "RBBB": [True, False, False, True], "LBBB": [False] * 4, "SB": [False] * 4,
                  "ST": [False, True, False, False], "AF": [False] * 4, "patient_id": [7, 8, 9, 7],
                  "death": [False] * 4, "timey": [1.0] * 4, "normal_ecg": [False, False, False, True],
                  "trace_file": ["exams_part0.hdf5"] * 3 + ["exams_part1.hdf5"]}).to_csv(folder / "exams.csv",
                                                                                        index=False)
    return folder, tracings


def test_code15_parts_are_trimmed_joined_and_exact(code15, tmp_path):
    folder, tracings = code15
    result = ingest(folder, tmp_path / "store", workers=1, dtype="float32")
    store = open_store(result.path)
    assert result.manifest["source_kind"] == "code15" and (store.fs, result.manifest["length"]) == (400.0, 10.0)
    assert result.manifest["chosen"]["length"]["differ"] == 1 and result.skip_counts == {"too short": 1}
    meta = store.metadata.set_index("record_id")
    assert meta.index.tolist() == ["101", "103", "201", "202"]
    for row, exam in enumerate([101, 103, 201, 202]):
        np.testing.assert_array_equal(store.signals[row], tracings[exam].T)
    assert meta.loc["101", "patient_id"] == meta.loc["201", "patient_id"] == "7"
    assert meta.loc["202", "patient_id"] == "record:202"  # not in exams.csv
    assert meta.loc["101", "labels"] == "RBBB" and meta.loc["103", "labels"] == "1dAVb" and meta.loc["202", "labels"] == ""
    assert float(meta.loc["101", "RBBB"]) == 1 and meta.loc["101", "sex"] == "M" and float(meta.loc["201", "normal_ecg"]) == 1
    assert meta.loc["103", "original_length"] == 10.0  # the true trailing zeros were not taken for padding
    short = open_store(ingest(folder, tmp_path / "seven", length=7, workers=2, dtype="float32").path)
    assert len(short) == 5 and short.metadata["patient_id"].tolist()[:3] == ["7", "8", "9"]
    np.testing.assert_array_equal(short.signals[1], tracings[102].T)
    np.testing.assert_array_equal(short.signals[0], tracings[101][:2800].T)


def test_code15_single_part_file_and_trim_rule(code15, tmp_path):
    folder, tracings = code15
    store = open_store(ingest(folder / "exams_part1.hdf5", tmp_path / "one", workers=1).path)
    assert store.metadata["record_id"].tolist() == ["201", "202"] and store.metadata["patient_id"][0] == "7"
    block = np.stack([centred(tracings[102]), np.zeros((4096, 12), np.float32)])
    first, stop = trim_padding(block)
    assert first.tolist() == [648, 0] and stop.tolist() == [3448, 4096]


def test_code15_without_h5py_is_one_line(code15, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_h5py(name, *args, **kwargs):
        if name == "h5py":
            raise ImportError("no h5py")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_h5py)
    outcome = CliRunner().invoke(cli, ["ingest", str(code15[0]), str(tmp_path / "store")])
    assert outcome.exit_code == 2 and outcome.output.strip() == \
        "Error: reading CODE-15 HDF5 files needs h5py: pip install 'ecgcl[hdf5]'"


def test_code15_bad_file_is_one_line(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    with h5py.File(folder / "exams_part0.hdf5", "w") as handle:
        handle.create_dataset("tracings", data=np.zeros((2, 4096, 8), np.float32))
    outcome = CliRunner().invoke(cli, ["ingest", str(folder), str(tmp_path / "store")])
    assert outcome.exit_code == 2 and "tracings has shape (2, 4096, 8)" in outcome.output
    assert len(outcome.output.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == [folder]


def test_mimic_iv_ecg_tree_with_record_list(ptbxl_dir, ecg_files, tmp_path):
    root = tmp_path / "mimic-iv-ecg"
    layout = [("10000032", "40689238"), ("10000032", "44458630"), ("10000117", "45090959"), ("10000560", "40000017")]
    for i, (subject, study) in enumerate(layout, start=1):
        folder = root / "files" / f"p{subject[:4]}" / f"p{subject}" / f"s{study}"
        ecg_files.write_record(folder, study, ecg_files.digital(ptbxl_dir, i, hr=True), fs=500,
                               names=["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"])
    listed = layout[:3]  # the last record is on disk but not in the list: its patient comes from its folder
    pd.DataFrame({"subject_id": [s for s, _ in listed], "study_id": [t for _, t in listed],
                  "file_name": [t for _, t in listed], "ecg_time": ["2180-07-23 08:44:00"] * 3,
                  "path": [f"files/p{s[:4]}/p{s}/s{t}/{t}" for s, t in listed]}).to_csv(root / "record_list.csv",
                                                                                     index=False)
    result = ingest(root, tmp_path / "store", workers=2, dtype="float32")
    store = open_store(result.path)
    assert result.manifest["source_kind"] == "mimic_iv_ecg" and len(store) == 4 and store.fs == 500
    assert store.metadata["patient_id"].tolist() == ["10000032", "10000032", "10000117", "10000560"]
    assert store.metadata["study_id"].astype(str).tolist() == ["40689238", "44458630", "45090959", "40000017"]
    assert result.manifest["counts"]["patients"] == 3
    expected = mv(ptbxl_dir, 1).T[[0, 1, 2, 3, 5, 4, 6, 7, 8, 9, 10, 11]]  # aVF/aVL written swapped
    np.testing.assert_allclose(store.signals[0], expected, atol=1e-6)


def test_chunks_in_flight_are_bounded(tmp_path, monkeypatch):
    """Workers never run far ahead of the writer: at most two chunks per worker are submitted at a time."""
    import multiprocessing.pool

    from ecgcl.data import ingest as ingest_module
    from ecgcl.plugins.readers.arrays import NumpyReader
    from ecgcl.data.plan import Plan

    rng = np.random.default_rng(0)
    np.save(tmp_path / "many.npy", rng.normal(size=(2000, 12, 50)).astype(np.float32))
    pd.DataFrame({"fs": [100.0] * 2000}).to_csv(tmp_path / "many.csv", index=False)
    reader = NumpyReader(tmp_path / "many.npy")
    submitted = []

    class CountingPool(multiprocessing.pool.ThreadPool):  # numpy sources are read by threads
        def apply_async(self, fn, args=(), *rest, **kwargs):
            submitted.append(args[2])
            return super().apply_async(fn, args, *rest, **kwargs)

    monkeypatch.setattr(multiprocessing.pool, "ThreadPool", CountingPool)
    chunks = ingest_module._run_chunks(reader, reader.discover(), Plan(("I",), 100.0, 50), workers=2)
    first = next(chunks)
    assert len(first.positions) == 64 and len(submitted) <= 4 < len(ingest_module._chunks(2000, 2)) == 32
    assert sum(len(c.positions) for c in chunks) == 2000 - 64
