"""EDF+ files written by a reference writer (edfio) with the real leads of pydicom's `waveform_ecg.dcm` at 500 Hz,
named as EDF exports name ECG signals ('ECG I', 'ECG II', 'ECG V1' ...) in uV: ecgcl and edfio read the same
values within the file's digital resolution; the EDF+ patient field (id, birth date, name) stays out of the
store; a header with a negative record count (other than -1, "not closed by the recorder") is never a
traceback."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import pytest

edfio = pytest.importorskip("edfio")
pydicom = pytest.importorskip("pydicom")
pytest.importorskip("ecgdatakit")

from click.testing import CliRunner  # noqa: E402

from ecgcl.cli.main import cli  # noqa: E402
from ecgcl.data.ingest import ingest  # noqa: E402
from ecgcl.data.leads import STANDARD_LEADS  # noqa: E402
from ecgcl.data.store import open_store  # noqa: E402

FS = 500
PHYSICAL_UV = (-5000.0, 5000.0)
RESOLUTION_UV = (PHYSICAL_UV[1] - PHYSICAL_UV[0]) / 65535  # one digital step
PATIENT = dict(code="MRN4242", sex="F", birthdate=datetime.date(1945, 3, 17), name="DOE_JANE")
SECRETS = ("MRN4242", "DOE", "JANE", "17-MAR-1945", "1945")


@pytest.fixture(scope="module")
def uv(clinical) -> np.ndarray:
    """The real ECG in uV at 500 Hz (its 1.25 uV codes, every second sample): (12, 5000)."""
    return clinical.real_decimated_uv(500)


def write_edf(path: Path, uv: np.ndarray, labels=None, plus: bool = False) -> Path:
    """An EDF of `uv` (12 leads); edfio writes plain EDF (with EDF+ style identification fields) unless
    `plus`, which adds an annotation and so makes it EDF+C."""
    labels = labels or [f"ECG {lead}" for lead in STANDARD_LEADS]
    signals = [edfio.EdfSignal(row, FS, label=label, physical_dimension="uV", physical_range=PHYSICAL_UV,
                               transducer_type="AgAgCl electrode", prefiltering="HP:0.05Hz LP:150Hz")
               for label, row in zip(labels, uv)]
    edf = edfio.Edf(signals, patient=edfio.Patient(**PATIENT),
                    recording=edfio.Recording(startdate=datetime.date(2013, 1, 25), equipment_code="CART_4"),
                    starttime=datetime.time(10, 59, 19), data_record_duration=1,
                    annotations=[edfio.EdfAnnotation(0, None, "recording start")] if plus else None)
    path.parent.mkdir(parents=True, exist_ok=True)
    edf.write(path)
    return path


@pytest.mark.parametrize("plus", [False, True], ids=["edf", "edf+"])
def test_edf_values_agree_with_edfio(tmp_path, uv, plus):
    source = write_edf(tmp_path / "src" / "MRN4242.edf", uv, plus=plus)
    assert (source.read_bytes()[192:197] == b"EDF+C") == plus
    reference = edfio.read_edf(source)
    assert [s.label for s in reference.signals] == [f"ECG {lead}" for lead in STANDARD_LEADS]
    edfio_uv = np.stack([s.data for s in reference.signals])
    assert np.abs(edfio_uv - uv).max() <= RESOLUTION_UV / 2 + 1e-9  # the writer's own quantisation

    result = ingest(source.parent, tmp_path / "store", fs=FS, length=10, workers=1, dtype="float32")
    store = open_store(result.path)
    assert result.written == 1 and result.manifest["source_kind"] == "edf"
    assert store.leads == list(STANDARD_LEADS) and store.signals.shape == (1, 12, 5000)
    stored_uv = store.signals[0].astype(np.float64) * 1000
    assert np.abs(stored_uv - edfio_uv).max() < 1e-2  # same decoding (float32 mV in the store)
    assert np.abs(stored_uv - uv).max() <= RESOLUTION_UV / 2 + 1e-2
    row = store.metadata.iloc[0]
    assert row["sex"] == "F" and int(row["age"]) == 67 and row["acquired"].startswith("2013-01-25T10:59:19")
    assert row["patient_id"].startswith("p") and row["original_fs"] == FS
    for path in (tmp_path / "store").iterdir():
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, (path.name, secret)
    assert not any(secret in json.dumps(result.manifest) for secret in SECRETS)


def test_edf_eight_leads_and_kept_ids(tmp_path, uv):
    eight = [STANDARD_LEADS.index(lead) for lead in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")]
    source = write_edf(tmp_path / "eight.edf", uv[eight], labels=[f"ECG {STANDARD_LEADS[i]}" for i in eight])
    result = ingest(source, tmp_path / "store", fs=FS, length=10, workers=1, keep_patient_ids=True, dtype="float32")
    store = open_store(result.path)
    x = dict(zip(STANDARD_LEADS, store.signals[0]))
    assert np.abs(x["III"] - (x["II"] - x["I"])).max() < 1e-6
    assert np.abs(x["aVF"] - (x["II"] - x["I"] / 2)).max() < 1e-6
    assert store.metadata["derived_leads"][0] == "III;aVR;aVL;aVF"
    assert store.metadata["patient_id"][0] == "MRN4242"


def negative_records(path: Path, count: str = "-5") -> Path:
    data = bytearray(path.read_bytes())
    data[236:244] = count.ljust(8).encode("ascii")
    path.write_bytes(bytes(data))
    return path


def test_negative_record_count_is_never_a_traceback(tmp_path, uv):
    folder = tmp_path / "src"
    write_edf(folder / "good.edf", uv)
    bad = negative_records(write_edf(folder / "bad.edf", uv))
    assert bad.read_bytes()[236:244] == b"-5      "
    result = ingest(folder, tmp_path / "store", fs=FS, length=10, workers=1, keep_patient_ids=True)
    assert result.written == 1 and open_store(result.path).metadata["record_id"].tolist() == ["good"]
    assert result.manifest["unrecognised_files"] == {"count": 1, "files": ["bad.edf"],
                                                     "rule": result.manifest["unrecognised_files"]["rule"]}
    runner = CliRunner()
    for options in ([], ["--format", "edf", "--fs", "500", "--length", "10"]):
        out = tmp_path / f"single{len(options)}"
        run = runner.invoke(cli, ["ingest", str(bad), str(out), "--workers", "1", *options])
        assert run.exit_code == 2, run.output
        assert "Traceback" not in run.output and isinstance(run.exception, SystemExit)
        lines = [line for line in run.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), run.output
        assert not out.exists()
    assert "no reader recognises" in runner.invoke(cli, ["ingest", str(bad), str(tmp_path / "x")]).output
    forced = runner.invoke(cli, ["ingest", str(bad), str(tmp_path / "y"), "--format", "edf", "--fs", "500",
                                 "--length", "10"])
    assert "skipped" in forced.output and "unreadable record" in forced.output


def test_minus_one_record_count_is_read(tmp_path, uv):
    """-1 is what a recorder leaves when it was not closed: the complete records present are read."""
    source = negative_records(write_edf(tmp_path / "open.edf", uv), "-1")
    result = ingest(source, tmp_path / "store", fs=FS, length=10, workers=1, dtype="float32")
    assert result.written == 1
    assert np.abs(open_store(result.path).signals[0].astype(np.float64) * 1000 - uv).max() <= RESOLUTION_UV / 2 + 1e-2


def set_patient_field(path: Path, text: str) -> Path:
    data = bytearray(path.read_bytes())
    data[8:88] = text.ljust(80).encode("ascii")
    path.write_bytes(bytes(data))
    return path


def test_plain_edf_patient_field_never_gives_a_name(tmp_path, uv):
    """Plain EDF's patient field is free text: the EDF+ layout gives its code, sex and age; a lone id is kept;
    other text (a name, a birth date) is no patient id at all, even with --keep-patient-ids."""
    folder = tmp_path / "src"
    write_edf(folder / "subfields.edf", uv)
    set_patient_field(write_edf(folder / "lone.edf", uv), "12345678")
    set_patient_field(write_edf(folder / "free.edf", uv), "Jane Doe 17.03.1945")
    set_patient_field(write_edf(folder / "date.edf", uv), "17.03.1945")
    result = ingest(folder, tmp_path / "store", fs=FS, length=10, workers=1, keep_patient_ids=True)
    table = open_store(result.path).metadata.set_index("record_id")
    assert table.loc["subfields", "patient_id"] == "MRN4242" and table.loc["subfields", "sex"] == "F"
    assert int(table.loc["subfields", "age"]) == 67
    assert table.loc["lone", "patient_id"] == "12345678"
    assert table.loc["free", "patient_id"] == "record:free" and table.loc["date", "patient_id"] == "record:date"
    text = (tmp_path / "store" / "metadata.csv").read_text() + (tmp_path / "store" / "manifest.json").read_text()
    for secret in ("DOE", "Doe", "JANE", "Jane", "1945"):
        assert secret not in text, secret
