"""Philips Sierra XML and SCP-ECG files built here from the published layouts (Sierra ECG XML 1.04 with
uncompressed Base64 `parsedwaveforms`; EN 1064 sections 0, 1, 3, 6 and 8 with their CRC-CCITT), with the real
leads of pydicom's `waveform_ecg.dcm` decimated to 500 Hz as their samples: values equal the known signal within
the file's quantisation, statements become labels, names and birth dates reach no file of the store, SCP's
8 leads give a 12-lead store with derived limb leads, a truncated or checksum-damaged SCP file is a skip with its
reason (through the API and the CLI), and a folder mixing Philips, SCP and WFDB is one store with a `format`
column. The builders are in `tests/clinical_files.py` (`philips_xml`, `scp_ecg`)."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

pytest.importorskip("ecgdatakit")

from click.testing import CliRunner  # noqa: E402

from ecgcl.cli.main import cli  # noqa: E402
from ecgcl.data.ingest import ingest  # noqa: E402
from ecgcl.data.leads import STANDARD_LEADS  # noqa: E402
from ecgcl.data.store import is_store, open_store  # noqa: E402
from ecgcl.plugins.readers.exports import MuseXmlReader, PhilipsXmlReader, ScpEcgReader  # noqa: E402

FS = 500
SAMPLES = 5000
NAME = ("PHILIPPA", "QUARTERMAINE")  # long enough never to turn up by chance in the signal bytes
PATIENT = "MRN20190521"
DERIVED = ("III", "aVR", "aVL", "aVF")


@pytest.fixture(scope="module")
def signal(clinical) -> np.ndarray:
    """The real 12-lead ECG in mV at 500 Hz (DICOM_LEADS order, the store's standard order)."""
    values = clinical.real_signal_mv(FS)
    assert values.shape == (12, SAMPLES) and tuple(clinical.DICOM_LEADS) == STANDARD_LEADS
    return values


def ingest_store(source, out, **options):
    result = ingest(source, out, **{"fs": FS, "length": 10, "workers": 1, "dtype": "float32", **options})  # exact copies
    return result, open_store(result.path)


def assert_no_identity(store_folder, *secrets: str) -> None:
    """None of `secrets` in any file of the store folder (text and binary alike)."""
    files = [path for path in store_folder.rglob("*") if path.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, (path.name, secret)


# ---- Philips Sierra XML -----------------------------------------------------------------------------------------

def test_philips_xml_equals_the_known_signal(tmp_path, clinical, signal):
    source = tmp_path / "src" / f"{PATIENT}.xml"
    source.parent.mkdir()
    source.write_bytes(clinical.philips_xml(signal, FS, patient_id=PATIENT, name=NAME, birth_date="1945-03-17"))
    head = source.read_bytes()[:4096]
    assert PhilipsXmlReader.recognises(source, head) and not MuseXmlReader.recognises(source, head)

    result, store = ingest_store(source.parent, tmp_path / "store", statements_as_labels=True)
    assert result.written == 1 and result.skipped == [] and result.manifest["source_kind"] == "philips_xml"
    assert store.leads == list(STANDARD_LEADS) and store.signals.shape == (1, 12, SAMPLES)
    x = np.asarray(store.signals[0], dtype=np.float64)
    assert np.abs(x - clinical.philips_known_mv(signal)).max() < 1e-5  # the file's 5 uV counts, exactly
    assert np.abs(x - signal).max() <= clinical.PHILIPS_UV_PER_COUNT / 2 / 1000 + 1e-6
    row = store.metadata.iloc[0]
    assert "derived_leads" not in store.metadata or not row["derived_leads"]  # the cart's own 12 leads
    assert row["labels"] == "Sinus rhythm;Left axis deviation QRS axis -45" == row["statements"]
    assert row["statements_source"] == "confirmed"
    assert int(row["age"]) == 74 and row["sex"] == "F" and row["acquired"] == "2019-05-21T09:41:07"
    assert row["patient_id"].startswith("p") and row["record_id"].startswith("r")
    assert_no_identity(tmp_path / "store", *NAME, "1945-03-17", "03/17/1945", PATIENT, "SMITH")
    text = (tmp_path / "store" / "metadata.csv").read_text() + (tmp_path / "store" / "manifest.json").read_text()
    assert "1945" not in text


# ---- SCP-ECG ------------------------------------------------------------------------------------------------------

def test_scp_equals_the_known_signal_and_derives_limb_leads(tmp_path, clinical, signal):
    eight = clinical.leads_of(signal, clinical.SCP_LEADS)
    source = tmp_path / "src" / f"{PATIENT}.scp"
    source.parent.mkdir()
    source.write_bytes(clinical.scp_ecg(eight, FS, patient_id=PATIENT, name=NAME, birth_date=(1945, 3, 17)))
    assert ScpEcgReader.recognises(source, source.read_bytes()[:4096])

    result, store = ingest_store(source, tmp_path / "store", statements_as_labels=True)
    assert result.written == 1 and result.skipped == [] and result.manifest["source_kind"] == "scp_ecg"
    assert store.leads == list(STANDARD_LEADS) and store.signals.shape == (1, 12, SAMPLES)
    x = dict(zip(STANDARD_LEADS, np.asarray(store.signals[0], dtype=np.float64)))
    known = dict(zip(clinical.SCP_LEADS, clinical.scp_known_mv(eight)))
    real = dict(zip(STANDARD_LEADS, signal))
    for lead in clinical.SCP_LEADS:
        assert np.abs(x[lead] - known[lead]).max() < 1e-5, lead  # 5000 nV counts, exactly
        assert np.abs(x[lead] - real[lead]).max() <= clinical.SCP_NV_PER_COUNT / 2 / 1e6 + 1e-6, lead
    i, ii = x["I"], x["II"]
    for lead, value in clinical.limb_leads(i, ii).items():
        assert np.abs(x[lead] - value).max() < 1e-5, lead
        assert np.abs(x[lead] - real[lead]).max() < 0.01, lead  # the cart's own limb leads, within rounding
    row = store.metadata.iloc[0]
    assert row["derived_leads"] == ";".join(DERIVED) and result.manifest["derived_leads"]["count"] == 1
    assert row["labels"] == "SINUS RHYTHM;NORMAL ECG" == row["statements"]
    assert int(row["age"]) == 74 and row["sex"] == "F" and row["acquired"] == "2019-05-21T09:41:07"
    assert_no_identity(tmp_path / "store", *NAME, PATIENT)
    text = (tmp_path / "store" / "metadata.csv").read_text() + (tmp_path / "store" / "manifest.json").read_text()
    assert "1945" not in text


def section_offset(data: bytes, number: int) -> int:
    """Byte offset of SCP section `number`, from the section 0 pointers (id, length, 1-based index)."""
    for pos in range(6 + 16, 6 + struct.unpack_from("<I", data, 10)[0], 10):
        sid, length, index = struct.unpack_from("<HII", data, pos)
        if sid == number and length:
            return index - 1
    raise AssertionError(f"no section {number}")


@pytest.fixture
def damaged_scp(tmp_path, clinical, signal):
    """A folder with a good SCP file, a copy cut in half, one whose section 6 CRC is wrong (the record CRC
    rewritten to match) and one with a flipped sample byte (section 6 and record CRCs no longer match)."""
    folder = tmp_path / "damaged"
    folder.mkdir()
    good = clinical.scp_ecg(clinical.leads_of(signal, clinical.SCP_LEADS), FS, patient_id=PATIENT, name=NAME)
    (folder / "good.scp").write_bytes(good)
    (folder / "half.scp").write_bytes(good[:len(good) // 2])
    bad_crc = bytearray(good)
    six = section_offset(good, 6)
    bad_crc[six:six + 2] = struct.pack("<H", struct.unpack_from("<H", good, six)[0] ^ 0x5A5A)
    bad_crc[:2] = struct.pack("<H", clinical.scp_crc(bytes(bad_crc[2:])))  # the record's own CRC still matches
    (folder / "bad_crc.scp").write_bytes(bytes(bad_crc))
    flipped = bytearray(good)
    flipped[six + 16 + 6 + 2 * 8 + 2 * 1234 + 1] ^= 0x10  # lead I, sample 1234, high byte: 1.28 mV off
    (folder / "flipped.scp").write_bytes(bytes(flipped))
    return folder


def test_truncated_and_checksum_damaged_scp_are_skips(tmp_path, damaged_scp, clinical, signal):
    result, store = ingest_store(damaged_scp, tmp_path / "store", keep_patient_ids=True)
    assert result.written == 1 and store.metadata["record_id"].tolist() == ["good"]
    skips = {skip.record_id: skip for skip in result.skipped}
    assert set(skips) == {"half", "bad_crc", "flipped"}
    assert all(skip.category == "unreadable record" for skip in skips.values())
    assert "declares" in skips["half"].detail and "bytes" in skips["half"].detail, skips["half"]
    assert skips["bad_crc"].detail.endswith("CRC mismatch in: Section 6"), skips["bad_crc"]
    assert "CRC mismatch in: record, Section 6" in skips["flipped"].detail, skips["flipped"]
    for skip in skips.values():
        assert ".scp" not in skip.detail and str(damaged_scp) not in skip.detail, skip
    assert np.abs(store.signals[0, 0] - clinical.scp_known_mv(signal[0])).max() < 1e-5


def test_damaged_scp_through_the_cli(tmp_path, damaged_scp):
    out = tmp_path / "cli"
    run = CliRunner().invoke(cli, ["ingest", str(damaged_scp), str(out), "--fs", "500", "--length", "10",
                                   "--workers", "1", "--quiet"])
    assert run.exit_code == 0, run.output
    assert "Traceback" not in run.output and run.exception is None
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["written"] == 1 and manifest["counts"]["skipped"] == 3
    assert manifest["skip_reasons"] == {"unreadable record": 3}
    details = sorted(skip["detail"] for skip in manifest["skipped"])
    assert sum("CRC mismatch" in detail for detail in details) == 2 and any("declares" in d for d in details)
    for name in ("half", "bad_crc", "flipped"):
        single = tmp_path / f"single_{name}"
        one = CliRunner().invoke(cli, ["ingest", str(damaged_scp / f"{name}.scp"), str(single), "--fs", "500",
                                       "--length", "10", "--workers", "1"])
        assert one.exit_code == 2, one.output
        assert "Traceback" not in one.output and isinstance(one.exception, SystemExit)
        lines = [line for line in one.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "was skipped" in lines[0], one.output
        assert "unreadable record x1" in lines[0] and not single.exists() and not is_store(single)


# ---- a mixed folder -------------------------------------------------------------------------------------------------

def test_mixed_philips_scp_wfdb_folder(tmp_path, clinical, signal):
    import wfdb

    folder = tmp_path / "archive"
    for sub in ("philips", "scp", "wfdb"):
        (folder / sub).mkdir(parents=True)
    (folder / "philips" / f"{PATIENT}.xml").write_bytes(clinical.philips_xml(signal, FS, name=NAME))
    eight = clinical.leads_of(signal, clinical.SCP_LEADS)
    (folder / "scp" / f"{PATIENT}.scp").write_bytes(clinical.scp_ecg(eight, FS, name=NAME))
    wfdb.wrsamp("rec001", fs=FS, units=["mV"] * 12, sig_name=list(STANDARD_LEADS), p_signal=signal.T,
                fmt=["16"] * 12, write_dir=str(folder / "wfdb"))

    result, store = ingest_store(folder, tmp_path / "store", statements_as_labels=True)
    assert result.written == 3 and result.skipped == []
    assert result.manifest["source_kind"] == "mixed" and store.fs == FS and store.signals.shape == (3, 12, SAMPLES)
    assert sorted(store.metadata["format"]) == ["philips_xml", "scp_ecg", "wfdb"]
    rows = dict(zip(store.metadata["format"], np.asarray(store.signals[:], dtype=np.float64)))
    assert np.abs(rows["philips_xml"] - clinical.philips_known_mv(signal)).max() < 1e-5
    scp = [STANDARD_LEADS.index(lead) for lead in clinical.SCP_LEADS]
    assert np.abs(rows["scp_ecg"][scp] - clinical.scp_known_mv(eight)).max() < 1e-5
    assert np.abs(rows["wfdb"] - signal).max() < 1e-4
    table = store.metadata.set_index("format")
    assert table.loc["scp_ecg", "derived_leads"] == ";".join(DERIVED)
    assert table.loc["philips_xml", "labels"] == "Sinus rhythm;Left axis deviation QRS axis -45"
    assert table.loc["scp_ecg", "labels"] == "SINUS RHYTHM;NORMAL ECG" and table.loc["wfdb", "labels"] == ""
    assert (table["original_fs"] == FS).all()
    assert table.loc["wfdb", "record_id"] == "wfdb/rec001"
    assert result.manifest["privacy"]["identifying_records"] == 2
    assert_no_identity(tmp_path / "store", *NAME, PATIENT)
