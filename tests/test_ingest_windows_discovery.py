"""--windows / --window-stride on long records, and record discovery: RECORDS files (top level and nested),
record stems, .hea with .mat signals, plain-text record lists; real PTB-XL signals rewritten inside the tests."""

import numpy as np
import pytest
import wfdb
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.ingest import ingest
from ecgcl.data.preprocess import window_starts
from ecgcl.data.store import open_store
from ecgcl.errors import EcgclError


@pytest.fixture
def sixty(ptbxl_dir, ecg_files, tmp_path):
    """A 60 s 100 Hz record made of six real 10 s records, and a 10 s one; patient given in a header comment."""
    folder = tmp_path / "long"
    samples = np.concatenate([ecg_files.digital(ptbxl_dir, i) for i in range(1, 7)])
    ecg_files.write_record(folder, "holter", samples)
    ecg_files.write_record(folder, "short", ecg_files.digital(ptbxl_dir, 7))
    return folder


def test_windows_of_a_60s_record_equal_the_matching_slices(sixty, tmp_path):
    result = ingest(sixty, tmp_path / "store", length=10, windows=True, workers=1, dtype="float32")
    store = open_store(result.path)
    source = wfdb.rdsamp(str(sixty / "holter"))[0].T.astype(np.float32)
    meta = store.metadata
    holter = np.flatnonzero(meta["record_id"] == "holter")
    assert len(store) == 7 and len(holter) == 6 and result.written == 2
    assert meta["window"][holter].tolist() == list(range(6))
    assert meta["window_start"][holter].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    for k, row in enumerate(holter):
        np.testing.assert_array_equal(store.signals[row], source[:, k * 1000:(k + 1) * 1000])
    assert (meta["valid_samples"] == 1000).all() and meta["patient_id"][holter].nunique() == 1
    assert result.manifest["counts"] == {**result.manifest["counts"], "rows": 7, "written": 2, "patients": 2}
    assert result.manifest["preprocessing"]["windows"] and result.manifest["preprocessing"]["window_stride"] == 10
    # CLOCS-style pairs: each window's partner is the next window of the same record; a one-window record has none
    partners = store.window_partners
    assert partners[holter].tolist() == holter[[1, 2, 3, 4, 5, 4]].tolist()
    assert partners[meta["record_id"] == "short"].tolist() == [-1]
    assert (store.record_codes[holter] == store.record_codes[holter[0]]).all()


def test_overlapping_windows_and_a_padded_last_window(sixty, ecg_files, ptbxl_dir, tmp_path):
    store = open_store(ingest(sixty, tmp_path / "overlap", length=10, window_stride=5, workers=1, dtype="float32").path)
    holter = store.metadata[store.metadata["record_id"] == "holter"]
    assert holter["window_start"].tolist() == [5.0 * k for k in range(11)]
    source = wfdb.rdsamp(str(sixty / "holter"))[0].T.astype(np.float32)
    np.testing.assert_array_equal(store.signals[holter.index[3]], source[:, 1500:2500])
    # 65 s: six full 10 s windows and, with --pad, a last one holding 5 s of signal
    tail = np.concatenate([ecg_files.digital(ptbxl_dir, i) for i in range(1, 7)] + [ecg_files.digital(ptbxl_dir, 8)[:500]])
    ecg_files.write_record(tmp_path / "tail", "rec", tail)
    dropped = open_store(ingest(tmp_path / "tail", tmp_path / "dropped", length=10, windows=True, workers=1).path)
    padded = open_store(ingest(tmp_path / "tail", tmp_path / "padded", length=10, windows=True, pad=True,
                               workers=1, dtype="float32").path)
    assert len(dropped) == 6 and len(padded) == 7
    assert padded.metadata["valid_samples"].tolist() == [1000] * 6 + [500]
    assert np.all(padded.signals[6][:, 500:] == 0) and padded.manifest["counts"]["padded_rows"] == 1
    tail_mv = wfdb.rdsamp(str(tmp_path / "tail" / "rec"))[0].T.astype(np.float32)
    np.testing.assert_array_equal(padded.signals[6][:, :500], tail_mv[:, 6000:])


def test_window_starts_rules():
    assert window_starts(6000, 1000, None, False).tolist() == [0]
    assert window_starts(6500, 1000, 1000, False).tolist() == [0, 1000, 2000, 3000, 4000, 5000]
    assert window_starts(6500, 1000, 1000, True).tolist()[-1] == 6000
    assert window_starts(800, 1000, 1000, True).tolist() == [0]


def test_window_options_are_checked(sixty, tmp_path):
    with pytest.raises(EcgclError, match="need --length"):
        ingest(sixty, tmp_path / "a", windows=True)
    outcome = CliRunner().invoke(cli, ["ingest", str(sixty), str(tmp_path / "b"), "--length", "10",
                                       "--window-stride", "0"])
    assert outcome.exit_code == 2 and outcome.output.strip() == "Error: --window-stride must be positive, got 0 s"
    assert not (tmp_path / "b").exists()


def copy_records(ptbxl_dir, ecg_files, folder, names):
    for i, name in enumerate(names, start=1):
        ecg_files.write_record(folder, name, ecg_files.digital(ptbxl_dir, i))


def test_records_file_lists_a_subset_top_level_and_nested(ptbxl_dir, ecg_files, tmp_path):
    root = tmp_path / "db"
    copy_records(ptbxl_dir, ecg_files, root, ["A01", "A02", "A03"])
    (root / "RECORDS").write_text("A01\nA03\n")
    assert open_store(ingest(root, tmp_path / "flat", workers=1).path).metadata["record_id"].tolist() == ["A01", "A03"]
    nested = tmp_path / "nested"
    copy_records(ptbxl_dir, ecg_files, nested / "g1", ["B01", "B02"])
    copy_records(ptbxl_dir, ecg_files, nested / "g2", ["C01", "C02"])
    copy_records(ptbxl_dir, ecg_files, nested / "unlisted", ["D01"])
    (nested / "RECORDS").write_text("g1/\ng2/\n")
    (nested / "g1" / "RECORDS").write_text("B02\n")
    (nested / "g2" / "RECORDS").write_text("# comment\nC01\n\nC02\n")
    store = open_store(ingest(nested, tmp_path / "nested_store", workers=1).path)
    assert store.metadata["record_id"].tolist() == ["g1/B02", "g2/C01", "g2/C02"]
    # a folder with no top-level RECORDS is walked, and its sub-folders' RECORDS are honoured
    (nested / "RECORDS").unlink()
    walked = open_store(ingest(nested, tmp_path / "walked", workers=1).path)
    assert walked.metadata["record_id"].tolist() == ["g1/B02", "g2/C01", "g2/C02", "unlisted/D01"]


def test_a_record_listed_but_missing_is_skipped_with_its_reason(ptbxl_dir, ecg_files, tmp_path):
    root = tmp_path / "db"
    copy_records(ptbxl_dir, ecg_files, root, ["A01"])
    (root / "RECORDS").write_text("A01\nA09\n")
    result = ingest(root, tmp_path / "store", workers=1)
    assert result.written == 1 and [(s.record_id, s.category) for s in result.skipped] == [("A09", "unreadable record")]
    assert "A09.hea is missing" in result.skipped[0].detail


def test_record_stem_mat_signals_and_list_files(ptbxl_dir, ecg_files, tmp_path):
    folder = tmp_path / "cinc"
    samples = ecg_files.digital(ptbxl_dir, 1)
    ecg_files.write_record(folder, "E07500", samples)
    ecg_files.write_record(folder, "A0001", ecg_files.digital(ptbxl_dir, 2), signal_file="A0001.mat", offset=24)
    expected = wfdb.rdsamp(str(ptbxl_dir / "records100" / "00000" / "00002_lr"))[0].T
    mat = open_store(ingest(folder / "A0001.mat", tmp_path / "mat", workers=1, dtype="float32").path)
    np.testing.assert_allclose(mat.signals[0], expected, atol=1e-6)
    stem = open_store(ingest(folder / "E07500", tmp_path / "stem", workers=1).path)
    assert stem.metadata["record_id"].tolist() == ["E07500"] and len(stem) == 1
    outcome = CliRunner().invoke(cli, ["ingest", str(folder / "E07500"), str(tmp_path / "stem_cli"), "--quiet"])
    assert outcome.exit_code == 0, outcome.output
    (tmp_path / "list.txt").write_text("# my selection\ncinc/A0001.mat\ncinc/E07500\n")
    listed = open_store(ingest(tmp_path / "list.txt", tmp_path / "listed", workers=1).path)
    assert listed.metadata["record_id"].tolist() == ["cinc/A0001", "cinc/E07500"]
    (tmp_path / "lone.mat").write_bytes(b"\0" * 64)
    outcome = CliRunner().invoke(cli, ["ingest", str(tmp_path / "lone.mat"), str(tmp_path / "lone")])
    assert outcome.exit_code == 2 and "no WFDB header lone.hea beside it" in outcome.output
    assert len(outcome.output.strip().splitlines()) == 1
