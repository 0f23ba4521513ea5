"""GE MUSE XML and HL7 aECG files built by `tests/clinical_files.py` (`muse_xml`, `aecg_xml`) from the published
layouts (restecg.dtd; HL7 v3 AnnotatedECG), with the real leads of pydicom's `waveform_ecg.dcm` decimated to 500 Hz
as their samples: values equal the known signal within the file's quantisation, MUSE's 8 leads give a 12-lead store
with derived limb leads, statements lose who confirmed them, XML entity bombs, external entities and truncated
base64 are skips (fast), a wrong declared encoding is read from the bytes, and a folder mixing DICOM, MUSE, aECG,
WFDB and an unknown file is one store with a `format` column."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pydicom")
pytest.importorskip("ecgdatakit")

from ecgcl.data.ingest import ingest  # noqa: E402
from ecgcl.data.leads import STANDARD_LEADS  # noqa: E402
from ecgcl.data.store import open_store  # noqa: E402

FS = 500
SAMPLES = 5000


@pytest.fixture(scope="module")
def uv(clinical) -> np.ndarray:
    """The real DICOM's rhythm codes (1.25 uV each) decimated to 500 Hz, in uV: (12 leads, 5000 samples)."""
    group = clinical.real_dicom().WaveformSequence[0]
    assert float(group.SamplingFrequency) == 1000 and float(group.ChannelDefinitionSequence[0].ChannelSensitivity) \
        == clinical.AECG_UV_PER_DIGIT == clinical.REAL_UV_PER_CODE
    assert tuple(clinical.DICOM_LEADS) == STANDARD_LEADS
    values = clinical.real_decimated_uv(FS)
    assert values.shape == (12, SAMPLES)
    return values


@pytest.fixture(scope="module")
def muse_mv(clinical, uv) -> np.ndarray:
    """The 8 leads MUSE stores (I, II, V1-V6) of the real signal, in mV."""
    return clinical.muse_leads_of(uv / 1000)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def ingest_store(source: Path, out: Path, **options):
    result = ingest(source, out, **{"fs": FS, "length": 10, "workers": 1, "dtype": "float32", **options})  # exact copies
    return result, open_store(result.path)


def test_muse_eight_leads_give_twelve(tmp_path, clinical, uv, muse_mv):
    source = write(tmp_path / "src" / "MRN55501234.xml", clinical.muse_xml(muse_mv, FS))
    result, store = ingest_store(source, tmp_path / "store", statements_as_labels=True)
    assert result.written == 1 and result.manifest["source_kind"] == "muse_xml"
    assert store.leads == list(STANDARD_LEADS) and store.signals.shape == (1, 12, SAMPLES)
    x = dict(zip(STANDARD_LEADS, store.signals[0]))
    real = dict(zip(STANDARD_LEADS, uv / 1000))
    known = dict(zip(STANDARD_LEADS, clinical.muse_known_mv(uv / 1000)))
    for lead in clinical.MUSE_LEADS:
        assert np.abs(x[lead] - known[lead]).max() < 1e-5, lead
        assert np.abs(x[lead] - real[lead]).max() <= clinical.MUSE_UV_PER_BIT / 2 / 1000 + 1e-6, lead
    i, ii = x["I"], x["II"]
    for lead, value in clinical.limb_leads(i, ii).items():
        assert np.abs(x[lead] - value).max() < 1e-6, lead
        assert np.abs(x[lead] - real[lead]).max() < 0.01, lead  # the cart's own limb leads, within rounding
    row = store.metadata.iloc[0]
    assert row["derived_leads"] == "III;aVR;aVL;aVF"
    assert result.manifest["derived_leads"]["count"] == 1
    assert result.manifest["ignored_groups"]["records"][0]["ignored_groups"] == ["median beats"]
    assert row["labels"] == "SINUS RHYTHM" == row["statements"]
    assert int(row["age"]) == 67 and row["sex"] == "F" and row["acquired"].startswith("2013-01-25T10:59:19")
    for name in ("metadata.csv", "manifest.json"):
        text = (tmp_path / "store" / name).read_text()
        for secret in ("SMITH", "JOHN", "1234", "3/4/2021", "DOE", "JANE", "1945", "MRN55501234", "GENERAL"):
            assert secret not in text, (name, secret)


def test_statement_attribution_is_removed(tmp_path, clinical, muse_mv):
    statements = ("SINUS RHYTHM", "NORMAL ECG", clinical.CONFIRMED_STATEMENT,
                  "WHEN COMPARED WITH ECG OF 12-MAR-2019 10:11,", "Referred by: DR. WHO; reviewed by JONES")
    source = write(tmp_path / "s.xml", clinical.muse_xml(muse_mv, FS, statements=statements))
    _, store = ingest_store(source, tmp_path / "store", statements_as_labels=True)
    labels = store.metadata["labels"][0].split(";")
    assert labels[:2] == ["SINUS RHYTHM", "NORMAL ECG"]
    assert "WHEN COMPARED WITH ECG OF" in labels
    joined = ";".join(labels)
    for gone in ("SMITH", "1234", "2021", "2019", "10:11", "WHO", "JONES", "Confirmed"):
        assert gone not in joined, gone


def test_muse_declaring_utf16_with_8bit_bytes_is_read(tmp_path, clinical, uv, muse_mv):
    # a Latin-1 byte under a UTF-16 declaration, as such exports have
    data = clinical.muse_xml(muse_mv, FS, encoding="UTF-16", name=("J\xd6RG", "DOE"))
    source = write(tmp_path / "src" / "utf16.xml", data)
    assert b'encoding="UTF-16"' in data and b"J\xd6RG" in data
    assert source.read_bytes()[:2] not in (b"\xff\xfe", b"\xfe\xff")
    result, store = ingest_store(source.parent, tmp_path / "store", keep_patient_ids=True)
    assert result.written == 1 and result.skipped == []
    assert np.abs(store.signals[0, 0] - clinical.muse_known_mv(uv / 1000)[0]).max() < 1e-5
    assert store.metadata["patient_id"][0] == "MRN55501234"


def test_muse_truncated_base64_is_a_skip(tmp_path, clinical, muse_mv):
    folder = tmp_path / "src"
    good = clinical.muse_xml(muse_mv, FS)
    start = good.index(b"<WaveFormData>", good.index(b"<WaveformType>Rhythm"))
    end = good.index(b"</WaveFormData>", start)
    cut = good[:end - 30] + good[end:]  # a lead's base64 cut mid-quantum
    write(folder / "MRN55501234.xml", cut)  # named after the patient, as exports are
    write(folder / "good.xml", good)
    result, store = ingest_store(folder, tmp_path / "kept", keep_patient_ids=True)
    assert result.written == 1 and store.metadata["record_id"].tolist() == ["good"]
    (skip,) = result.skipped
    assert skip.record_id == "MRN55501234" and skip.category == "unreadable record"
    assert "bytes is not a whole number" in skip.detail or "Base64" in skip.detail, skip.detail
    result, _ = ingest_store(folder, tmp_path / "hashed")  # the skip's detail must not name the file either
    (skip,) = result.skipped
    assert skip.record_id.startswith("r") and skip.category == "unreadable record"
    assert "MRN55501234" not in json.dumps(result.manifest)
    assert "MRN55501234" not in (tmp_path / "hashed" / "manifest.json").read_text()


def test_entity_bomb_and_external_entity_are_skips(tmp_path, clinical, muse_mv, alarm):
    folder = tmp_path / "src"
    write(folder / "bomb.xml", clinical.muse_xml(muse_mv, FS, doctype=clinical.billion_laughs(),
                                                 patient_extra="&lol9;"))
    write(folder / "external.xml", clinical.muse_xml(muse_mv, FS, doctype='<!DOCTYPE RestingECG [\n'
                                                     '<!ENTITY x SYSTEM "file:///etc/passwd">\n]>',
                                                     patient_extra="&x;"))
    write(folder / "good.xml", clinical.muse_xml(muse_mv, FS))
    started = time.perf_counter()
    result, store = ingest_store(folder, tmp_path / "store", keep_patient_ids=True)
    assert time.perf_counter() - started < 20
    assert result.written == 1 and store.metadata["record_id"].tolist() == ["good"]
    skips = {s.record_id: s for s in result.skipped}
    assert set(skips) == {"bomb", "external"}
    for skip in skips.values():
        assert skip.category == "unreadable record" and "entit" in skip.detail.lower(), skip
    for path in (tmp_path / "store").iterdir():
        data = path.read_bytes()
        assert b"root:" not in data and b"lollol" not in data


# ---- HL7 aECG --------------------------------------------------------------------------------------------------

def test_aecg_equals_the_known_signal(tmp_path, clinical, uv):
    source = write(tmp_path / "src" / "SUBJ-0042.xml", clinical.aecg_xml(uv / 1000, FS))
    result, store = ingest_store(source.parent, tmp_path / "store", statements_as_labels=True)
    assert result.written == 1 and result.manifest["source_kind"] == "hl7_aecg"
    assert store.signals.shape == (1, 12, SAMPLES) and "derived_leads" not in store.metadata
    assert np.abs(store.signals[0] - uv / 1000).max() < 1e-5
    row = store.metadata.iloc[0]
    assert row["labels"] == "SINUS RHYTHM" and row["sex"] == "F" and int(row["age"]) == 67
    assert row["acquired"].startswith("2013-01-25T10:59:19")
    for name in ("metadata.csv", "manifest.json"):
        text = (tmp_path / "store" / name).read_text()
        assert "SUBJ-0042" not in text and "19450317" not in text and "SMITH" not in text


# ---- a mixed folder ----------------------------------------------------------------------------------------------

def test_mixed_folder(tmp_path, clinical, uv, muse_mv):
    import shutil

    import wfdb

    folder = tmp_path / "archive"
    (folder / "dicom").mkdir(parents=True)
    shutil.copy(clinical.real_dicom_path(), folder / "dicom" / "642341.dcm")
    write(folder / "muse" / "MRN55501234.xml", clinical.muse_xml(muse_mv, FS))
    write(folder / "aecg" / "SUBJ-0042.xml", clinical.aecg_xml(uv / 1000, FS))
    (folder / "wfdb").mkdir()
    wfdb.wrsamp("rec001", fs=FS, units=["mV"] * 12, sig_name=list(STANDARD_LEADS), p_signal=(uv / 1000).T,
                fmt=["16"] * 12, write_dir=str(folder / "wfdb"))
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4\n" + np.random.default_rng(0).bytes(2000))

    result, store = ingest_store(folder, tmp_path / "store", statements_as_labels=True)
    assert result.written == 4 and result.skipped == []
    assert result.manifest["source_kind"] == "mixed" and store.fs == FS
    table = store.metadata.set_index("format")
    assert sorted(table.index) == ["dicom", "hl7_aecg", "muse_xml", "wfdb"]
    rows = dict(zip(store.metadata["format"], store.signals[:]))
    assert np.abs(rows["hl7_aecg"] - uv / 1000).max() < 1e-5
    assert np.abs(rows["wfdb"] - uv / 1000).max() < 1e-4
    eight = [STANDARD_LEADS.index(lead) for lead in clinical.MUSE_LEADS]
    assert np.abs(rows["muse_xml"][eight] - clinical.muse_known_mv(uv / 1000)[eight]).max() < 1e-5
    expected = clinical.real_signal_mv(FS)  # pydicom's decoding, resampled as ingest does
    assert np.abs(rows["dicom"] - expected).max() < 1e-4
    assert table.loc["dicom", "original_fs"] == 1000 and table.loc["muse_xml", "original_fs"] == FS

    assert table.loc["dicom", "labels"] == "RITMO SINUSALE;ECG NORMALE"
    assert table.loc["muse_xml", "labels"] == table.loc["hl7_aecg", "labels"] == "SINUS RHYTHM"
    assert table.loc["wfdb", "labels"] == ""
    assert table.loc["muse_xml", "derived_leads"] == "III;aVR;aVL;aVF"

    clinical = table.drop(index="wfdb")
    assert all(p.startswith("p") for p in clinical["patient_id"]) and all(r.startswith("r")
                                                                          for r in clinical["record_id"])
    assert table.loc["wfdb", "record_id"] == "wfdb/rec001"
    assert result.manifest["privacy"]["identifying_records"] == 3
    unrecognised = result.manifest["unrecognised_files"]
    assert unrecognised["count"] == 1 and unrecognised["files"][0].endswith(".pdf")
    assert "notes" not in unrecognised["files"][0]
    versions = result.manifest["versions"]
    assert "ecgdatakit" in versions
    text = (tmp_path / "store" / "metadata.csv").read_text() + json.dumps(result.manifest)
    for secret in ("642341", "MRN55501234", "SUBJ-0042", "DOE", "SMITH", "19450317", "1945"):
        assert secret not in text, secret
