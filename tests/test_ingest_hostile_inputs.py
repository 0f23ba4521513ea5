"""Issue 13, items 3, 8 (ingest options and outputs) and 10: hostile or broken inputs are skips or one-line errors.

Per-record failures (a header with an impossible rate or length, a FIFO signal file, a header naming a file
outside its folder, any exception a reader raises on one record) are skips with a reason, or a clean stop under
--strict. Whole-input failures (a broken PTB-XL table, a junk sidecar, a damaged array file) and impossible
options are one line naming the file or option, exit code 2, and no store.
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.ingest import ingest
from ecgcl.data.store import is_store, open_store
from ecgcl.errors import EcgclError

GOOD = ["00001_lr", "00002_lr", "00003_lr"]


@pytest.fixture
def folder(ptbxl_dir, tmp_path):
    """Three good real PTB-XL records."""
    records = tmp_path / "records"
    records.mkdir()
    for name in GOOD:
        for suffix in (".hea", ".dat"):
            shutil.copy(ptbxl_dir / "records100" / "00000" / f"{name}{suffix}", records)
    return records


def add_copy(folder, name, edit=lambda lines: lines):
    """A copy of 00001_lr named `name`, its header lines passed through `edit`."""
    lines = (folder / "00001_lr.hea").read_text().splitlines()
    lines = [line.replace("00001_lr", name) for line in lines]
    (folder / f"{name}.hea").write_text("\n".join(edit(lines)) + "\n")
    shutil.copy(folder / "00001_lr.dat", folder / f"{name}.dat")


def set_field(index, value):
    def edit(lines):
        fields = lines[0].split()
        fields[index] = value
        return [" ".join(fields), *lines[1:]]
    return edit


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


# --- item 3: per-record failures are skips -------------------------------------------------------------------

@pytest.mark.parametrize("fs", ["0", "nan", "-10", "inf"])
def test_header_with_an_impossible_rate_is_skipped(folder, tmp_path, fs):
    add_copy(folder, "bad_rate", set_field(2, fs))
    result = ingest(folder, tmp_path / "store", fs=100, length=10, workers=1)
    assert result.written == 3
    (skip,) = result.skipped
    assert skip.record_id == "bad_rate" and skip.category == "corrupt header" and "sampling rate" in skip.detail
    assert "too short" not in skip.detail


def test_absurd_length_is_refused_before_allocating(folder, tmp_path):
    add_copy(folder, "huge", set_field(3, "100000000000"))  # 1e11 samples: 2.4 TB of int16 if believed

    def as_format_212(lines):  # the wfdb.rdrecord path, not the format-16 fast path
        return [lines[0].replace("100000000000", "100000000000"),
                *(line.replace(".dat 16 ", ".dat 212 ") for line in lines[1:])]
    add_copy(folder, "huge212", lambda lines: as_format_212(set_field(3, "100000000000")(lines)))
    result = ingest(folder, tmp_path / "store", fs=100, length=10, workers=1)
    assert result.written == 3
    assert {s.record_id: s.category for s in result.skipped} == {"huge": "truncated signal file",
                                                                "huge212": "truncated signal file"}


def test_fifo_signal_file_and_fifo_header_are_skipped_without_hanging(folder, tmp_path, alarm):
    add_copy(folder, "fifo")
    (folder / "fifo.dat").unlink()
    os.mkfifo(folder / "fifo.dat")
    os.mkfifo(folder / "fifo_header.hea")
    result = ingest(folder, tmp_path / "store", fs=100, length=10, workers=1)
    assert result.written == 3
    reasons = {s.record_id: s.detail for s in result.skipped}
    assert "not a regular file" in reasons["fifo"] and "not a regular file" in reasons["fifo_header"]


def test_any_exception_of_a_reader_is_a_skip_or_a_strict_stop(folder, tmp_path, monkeypatch):
    from ecgcl.plugins.readers import wfdb as wfdb_reader

    real = wfdb_reader.WfdbReader.load

    def load(self, ref):
        if ref.record_id == "00002_lr":
            raise RuntimeError("a library bug on this record's bytes")
        return real(self, ref)

    monkeypatch.setattr(wfdb_reader.WfdbReader, "load", load)
    result = ingest(folder, tmp_path / "store", fs=100, length=10, workers=1)
    (skip,) = result.skipped
    assert (skip.record_id, skip.category) == ("00002_lr", "unreadable record") and "library bug" in skip.detail
    with pytest.raises(EcgclError, match="record 00002_lr .*unreadable record.*without --strict"):
        ingest(folder, tmp_path / "strict", fs=100, length=10, workers=1, strict=True)
    assert not (tmp_path / "strict").exists()


# --- item 10: signal-file names are confined to the record's folder ------------------------------------------

@pytest.mark.parametrize("where", ["relative", "absolute", "subfolder"])
def test_header_cannot_read_a_file_outside_its_folder(folder, tmp_path, where):
    secret = tmp_path / "secret.bin"
    shutil.copy(folder / "00001_lr.dat", secret)  # a perfectly valid signal, so only confinement stops it
    name = {"relative": "../secret.bin", "absolute": str(secret), "subfolder": "sub/secret.bin"}[where]
    if where == "subfolder":
        (folder / "sub").mkdir()
        shutil.copy(secret, folder / "sub" / "secret.bin")
    add_copy(folder, "escape", lambda lines: [lines[0], *(line.replace("escape.dat", name) for line in lines[1:])])
    (folder / "escape.dat").unlink()
    result = ingest(folder, tmp_path / "store", fs=100, length=10, workers=1)
    (skip,) = result.skipped
    assert skip.record_id == "escape" and "leaves the record's folder" in skip.detail
    assert result.written == 3 and "escape" not in open_store(result.path).metadata["record_id"].tolist()


# --- item 3: whole-input failures are one line naming the file ------------------------------------------------

@pytest.fixture
def ptbxl_copy(ptbxl_dir, tmp_path):
    """A PTB-XL folder with three real records and their database rows."""
    root = tmp_path / "ptbxl"
    (root / "records100" / "00000").mkdir(parents=True)
    for name in GOOD:
        for suffix in (".hea", ".dat"):
            shutil.copy(ptbxl_dir / "records100" / "00000" / f"{name}{suffix}", root / "records100" / "00000")
    shutil.copy(ptbxl_dir / "scp_statements.csv", root)
    database = pd.read_csv(ptbxl_dir / "ptbxl_database.csv")
    database[database["ecg_id"].isin([1, 2, 3])].to_csv(root / "ptbxl_database.csv", index=False)
    return root


@pytest.mark.parametrize("column,value,needle", [
    ("patient_id", "alice", "patient_id 'alice'"),
    ("strat_fold", "ten", "strat_fold 'ten'"),
    ("scp_codes", "{'NORM': 'sure'}", "likelihood 'sure'"),
    ("scp_codes", "{'NORM': 100.0", "scp_codes"),
    ("scp_codes", "[1, 2]", "scp_codes"),
    ("ecg_id", "1", "ecg_id 1 appears more than once"),
])
def test_broken_ptbxl_database_is_one_line_naming_the_file(ptbxl_copy, tmp_path, column, value, needle):
    database = pd.read_csv(ptbxl_copy / "ptbxl_database.csv", dtype=str)
    database.loc[1, column] = value
    database.to_csv(ptbxl_copy / "ptbxl_database.csv", index=False)
    result = run("ingest", ptbxl_copy, tmp_path / "store", "--workers", "1")
    one_line_error(result, "ptbxl_database.csv", needle)
    assert not (tmp_path / "store").exists()


@pytest.fixture
def arrays(ptbxl_dir, tmp_path):
    import wfdb

    signals = np.stack([wfdb.rdrecord(str(ptbxl_dir / "records100" / "00000" / n)).p_signal.T for n in GOOD])
    return signals.astype(np.float32)


def test_broken_numpy_inputs_are_one_line_naming_the_file(arrays, tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    np.save(cases / "junk.npy", arrays)
    (cases / "junk.csv").write_bytes(bytes(range(256)) * 8)
    np.save(cases / "empty.npy", arrays)
    (cases / "empty.csv").write_text("")
    np.savez(cases / "rates.npz", signals=arrays, fs=np.array([100.0, 100.0]))
    np.savez(cases / "whole.npz", signals=arrays, fs=100.0)
    data = (cases / "whole.npz").read_bytes()
    (cases / "truncated.npz").write_bytes(data[: len(data) // 2])
    (cases / "zero.npy").write_bytes(b"")
    expected = {"junk.npy": "junk.csv", "empty.npy": "empty.csv", "rates.npz": "must be one number",
                "truncated.npz": "truncated.npz", "zero.npy": "zero.npy"}
    for name, needle in expected.items():
        one_line_error(run("ingest", cases / name, tmp_path / f"out_{name}"), needle)
        assert not (tmp_path / f"out_{name}").exists()


def test_parquet_with_list_valued_patient_id_is_one_line(arrays, tmp_path):
    pytest.importorskip("pyarrow")
    table = pd.DataFrame({lead: list(arrays[:, i]) for i, lead in enumerate(
        ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])})
    table["fs"] = 100.0
    table["patient_id"] = [[1, 2], [3], [4]]
    table.to_parquet(tmp_path / "x.parquet")
    one_line_error(run("ingest", tmp_path / "x.parquet", tmp_path / "store"), "x.parquet", "patient_id")


# --- item 8: impossible ingest options and outputs --------------------------------------------------------------

@pytest.mark.parametrize("args,needle", [
    (["--fs", "nan"], "--fs"), (["--length", "nan"], "--length"), (["--filter", "nan-40"], "--filter"),
    (["--length", "1e9", "--pad"], "--length"),
])
def test_impossible_ingest_options_are_one_line(folder, tmp_path, args, needle):
    result = run("ingest", folder, tmp_path / "store", "--workers", "1", *args)
    one_line_error(result, needle)
    assert not any(p.name.startswith((".store", "store")) for p in tmp_path.iterdir())


def test_out_below_a_file_or_unwritable_is_one_line(folder, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("x")
    one_line_error(run("ingest", folder, tmp_path / "a_file" / "store", "--workers", "1"), "a_file")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("ecgcl.data.store.tempfile.mkdtemp", refuse)
    one_line_error(run("ingest", folder, tmp_path / "store", "--workers", "1"), "Permission denied", "store")
    assert not (tmp_path / ".store.lock").exists()
