"""Every kind of bad input is skipped with its reason, counted and listed; --strict stops with a clear message."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.ingest import ingest
from ecgcl.data.store import open_store
from ecgcl.errors import EcgclError

GOOD = ["00001_lr", "00002_lr", "00003_lr"]
LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def write_record(folder, name, digital, names, fs=100):
    """A PTB-XL-style format-16 record from a (samples, leads) int16 array."""
    digital.astype("<i2").tofile(folder / f"{name}.dat")
    lines = [f"{name} {len(names)} {fs} {len(digital)}"]
    lines += [f"{name}.dat 16 1000.0(0)/mV 16 0 {int(digital[0, i])} 0 0 {lead}" for i, lead in enumerate(names)]
    (folder / f"{name}.hea").write_text("\n".join(lines) + "\n")


@pytest.fixture
def bad_folder(ptbxl_dir, tmp_path):
    """Three good real records plus one corrupted copy of each bad-input case."""
    folder = tmp_path / "records"
    folder.mkdir()
    real = ptbxl_dir / "records100" / "00000"
    for name in GOOD + ["00004_lr", "00005_lr", "00006_lr"]:
        for suffix in (".hea", ".dat"):
            shutil.copy(real / f"{name}{suffix}", folder)
    (folder / "00004_lr.dat").unlink()                                             # missing .dat
    data = (folder / "00005_lr.dat").read_bytes()
    (folder / "00005_lr.dat").write_bytes(data[: len(data) // 3])                 # truncated .dat
    (folder / "00006_lr.hea").write_text("00006_lr twelve leads\nnonsense\n")     # corrupt header
    digital = np.fromfile(real / "00007_lr.dat", dtype="<i2").reshape(1000, 12)
    write_record(folder, "missing_leads", digital[:, :10], LEADS[:10])
    with_nan = digital.copy()
    with_nan[200:210, 3] = -32768                                                   # WFDB's invalid sample
    write_record(folder, "nan_values", with_nan, LEADS)
    flat = digital.copy()
    flat[:, 8] = 17
    write_record(folder, "flat_lead", flat, LEADS)
    write_record(folder, "short", digital[:500], LEADS)                            # 5 s, 10 s asked
    return folder


EXPECTED = {"missing signal file": ["00004_lr"], "truncated signal file": ["00005_lr"], "corrupt header": ["00006_lr"],
            "missing leads": ["missing_leads"], "NaN values": ["nan_values"], "flat leads": ["flat_lead"],
            "too short": ["short"]}


def test_each_bad_record_is_skipped_with_its_reason(bad_folder, tmp_path):
    result = ingest(bad_folder, tmp_path / "store", fs=100, length=10, workers=1)
    assert result.written == 3 and result.found == 10
    assert result.skip_counts == {reason: 1 for reason in EXPECTED}
    assert {s.category: [s.record_id] for s in result.skipped} == EXPECTED
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["counts"]["skipped"] == 7 and len(manifest["skipped"]) == 7
    listed = {entry["record_id"]: entry for entry in manifest["skipped"]}
    assert "V11" not in listed["missing_leads"]["detail"] and "V5, V6" in listed["missing_leads"]["detail"]
    assert "aVR" in listed["nan_values"]["detail"] and "V3" in listed["flat_lead"]["detail"]
    store = open_store(result.path)
    assert store.metadata["record_id"].tolist() == GOOD and store.signals.shape == (3, 12, 1000)


def test_pad_keeps_short_records_and_threads_agree(bad_folder, tmp_path):
    result = ingest(bad_folder, tmp_path / "store", length=10, pad=True, workers=2)
    store = open_store(result.path)
    assert "short" in store.metadata["record_id"].tolist() and "too short" not in result.skip_counts
    short = store.signals[store.metadata["record_id"].tolist().index("short")]
    assert np.all(short[:, 500:] == 0) and np.any(short[:, :500] != 0)


def test_strict_stops_at_the_first_bad_record_and_writes_nothing(bad_folder, tmp_path):
    with pytest.raises(EcgclError, match=r"record 00004_lr .*missing signal file.*without --strict"):
        ingest(bad_folder, tmp_path / "store", strict=True, workers=2)
    assert not any(tmp_path.glob("*store*"))


def test_cli_summarises_skips_and_strict_exits_2_without_traceback(bad_folder, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(cli, ["ingest", str(bad_folder), str(tmp_path / "a"), "--length", "10", "--workers", "1"])
    assert ok.exit_code == 0, ok.output
    for reason in EXPECTED:
        assert reason in ok.output
    strict = runner.invoke(cli, ["ingest", str(bad_folder), str(tmp_path / "b"), "--strict"])
    assert strict.exit_code == 2 and "Traceback" not in strict.output
    assert "Error: record 00004_lr" in strict.output
    again = runner.invoke(cli, ["ingest", str(bad_folder), str(tmp_path / "a")])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_all_records_bad_is_a_clear_error(bad_folder, tmp_path):
    for name in GOOD:
        (bad_folder / f"{name}.dat").unlink()
    with pytest.raises(EcgclError, match="every record .* was skipped"):
        ingest(bad_folder, tmp_path / "store", fs=100, length=10, workers=1)


def test_mat_backed_challenge_header_is_read(ptbxl_dir, tmp_path):
    """PhysioNet/CinC 2020 layout: the header names a MATLAB v4 file with a 24-byte offset, plus #Age/#Sex/#Dx."""
    import scipy.io

    digital = np.fromfile(ptbxl_dir / "records100" / "00000" / "00001_lr.dat", dtype="<i2").reshape(1000, 12)
    scipy.io.savemat(tmp_path / "A0001.mat", {"val": digital.T.astype(np.int16)}, format="4")
    header = (ptbxl_dir / "records100" / "00000" / "00001_lr.hea").read_text()
    header = header.replace("00001_lr.dat 16", "A0001.mat 16+24").replace("00001_lr", "A0001")
    (tmp_path / "A0001.hea").write_text(header + "#Age: 56\n#Sex: Female\n#Dx: 426783006\n")
    result = ingest(tmp_path / "A0001.hea", tmp_path / "store", workers=1, dtype="float32")
    store = open_store(result.path)
    np.testing.assert_allclose(store.signals[0], digital.T / 1000.0, atol=1e-6)
    row = store.metadata.iloc[0]
    assert (row["age"], row["sex"], str(row["dx"]), row["labels"]) == (56, "F", "426783006", "NSR")


@pytest.fixture
def huge_folder(ptbxl_dir, tmp_path):
    """Three good records, then a copy of the second whose gain makes its values 1e6 times too large."""
    folder = tmp_path / "huge_records"
    folder.mkdir()
    real = ptbxl_dir / "records100" / "00000"
    for name in GOOD:
        for suffix in (".hea", ".dat"):
            shutil.copy(real / f"{name}{suffix}", folder)
    digital = np.fromfile(real / "00002_lr.dat", dtype="<i2").reshape(1000, 12)
    write_record(folder, "huge", digital, LEADS)
    header = (folder / "huge.hea").read_text().replace("1000.0(0)/mV", "0.001(0)/mV")  # x 1e6
    (folder / "huge.hea").write_text(header)
    return folder


def test_values_beyond_float16_are_skipped_not_fatal(huge_folder, tmp_path):
    result = ingest(huge_folder, tmp_path / "half", length=10, workers=1)
    assert result.manifest["dtype"] == "float16" and result.written == 3
    assert [(s.record_id, s.category) for s in result.skipped] == [("huge", "implausible amplitude")]
    detail = result.skipped[0].detail
    assert "do not fit a float16 store" in detail and "--dtype float32 keeps them" in detail
    assert "e+0" in detail and "mV" in detail
    store = open_store(result.path)
    assert store.metadata["record_id"].tolist() == GOOD and store.signals.shape == (3, 12, 1000)
    assert np.isfinite(store.read(np.arange(3))).all()
    with pytest.raises(EcgclError, match=r"record huge .*implausible amplitude.*float16 store"):
        ingest(huge_folder, tmp_path / "strict", length=10, workers=1, strict=True)
    assert not (tmp_path / "strict").exists()
    full = ingest(huge_folder, tmp_path / "full", length=10, workers=2, dtype="float32")
    assert full.written == 4 and not full.skipped
    kept = open_store(full.path)
    assert kept.metadata["record_id"].tolist() == GOOD + ["huge"]
    np.testing.assert_allclose(kept.read([3]), kept.read([1]) * 1e6, rtol=1e-6)


def test_cli_float16_overflow_skip_and_float32_keep(huge_folder, tmp_path):
    runner = CliRunner()
    half = runner.invoke(cli, ["ingest", str(huge_folder), str(tmp_path / "a"), "--dtype", "float16",
                               "--workers", "1"])
    assert half.exit_code == 0, half.output
    assert "implausible amplitude" in half.output and "Traceback" not in half.output
    assert open_store(tmp_path / "a").signals.shape[0] == 3
    full = runner.invoke(cli, ["ingest", str(huge_folder), str(tmp_path / "b"), "--dtype", "float32",
                               "--workers", "1"])
    assert full.exit_code == 0, full.output
    assert open_store(tmp_path / "b").signals.shape[0] == 4
