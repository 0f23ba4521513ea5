"""Clinical ECG files built from real signals, for tests and `benchmarks/formats.py`.

The signals are the real 12-lead ECG that pydicom ships (`waveform_ecg.dcm`: 1000 Hz, 10 s, uV). DICOM copies
are that file with new patient ids and per-copy waveform noise; GE MUSE XML files follow the layout of MUSE's
`restecg.dtd` (RestingECG root, base64 little-endian int16 `WaveFormData` per `LeadData`, 4.88 uV per bit as MUSE
writes, 8 stored leads I, II, V1-V6), with the DOCTYPE line real exports carry.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

MUSE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
DICOM_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
MUSE_UV_PER_BIT = 4.88


def real_dicom():
    """The pydicom test file as a dataset."""
    import pydicom
    from pydicom.data import get_testdata_file

    return pydicom.dcmread(get_testdata_file("waveform_ecg.dcm"))


def real_signal_mv(fs: int = 500) -> np.ndarray:
    """The real ECG's 12 leads (DICOM_LEADS order) in mV at `fs` Hz (1000 Hz decimated by an integer factor)."""
    from scipy.signal import resample_poly

    dataset = real_dicom()
    values = np.asarray(dataset.waveform_array(0), dtype=np.float64).T / 1000.0
    return resample_poly(values, 1, 1000 // fs, axis=-1) if fs != 1000 else values


def muse_xml(signal_mv: np.ndarray, fs: int = 500, *, leads=MUSE_LEADS, patient_id: str = "12345678",
             name: tuple[str, str] = ("JANE", "DOE"), birth_date: str = "03-17-1945",
             statements=("SINUS RHYTHM", "NORMAL ECG"), doctype: bool = True, encoding: str = "ISO-8859-1") -> bytes:
    """A GE MUSE XML resting ECG of `signal_mv` (`leads` x samples, in mV); values quantised to 4.88 uV."""
    codes = np.round(np.asarray(signal_mv) * 1000.0 / MUSE_UV_PER_BIT).astype("<i2")
    lead_xml = "".join(
        f"<LeadData><LeadByteCountTotal>{2 * codes.shape[1]}</LeadByteCountTotal><LeadSampleSize>2</LeadSampleSize>"
        f"<LeadAmplitudeUnitsPerBit>{MUSE_UV_PER_BIT}</LeadAmplitudeUnitsPerBit>"
        f"<LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits><LeadSampleCountTotal>{codes.shape[1]}"
        f"</LeadSampleCountTotal><LeadID>{lead}</LeadID>"
        f"<WaveFormData>{base64.b64encode(row.tobytes()).decode('ascii')}</WaveFormData></LeadData>"
        for lead, row in zip(leads, codes))
    diagnosis = "".join(f"<DiagnosisStatement><StmtFlag>ENDSLINE</StmtFlag><StmtText>{text}</StmtText>"
                        "</DiagnosisStatement>" for text in statements)
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\n'
            + ('<!DOCTYPE RestingECG SYSTEM "restecg.dtd">\n' if doctype else "")
            + "<RestingECG><MuseInfo><MuseVersion>9.0.9.18167</MuseVersion></MuseInfo>"
            f"<PatientDemographics><PatientID>{patient_id}</PatientID><PatientAge>67</PatientAge>"
            f"<AgeUnits>YEARS</AgeUnits><DateofBirth>{birth_date}</DateofBirth><Gender>MALE</Gender>"
            f"<PatientLastName>{name[1]}</PatientLastName><PatientFirstName>{name[0]}</PatientFirstName>"
            "</PatientDemographics><TestDemographics><DataType>RESTING</DataType><Site>1</Site>"
            "<AcquisitionTime>09:41:07</AcquisitionTime><AcquisitionDate>05-21-2019</AcquisitionDate>"
            "</TestDemographics>"
            f"<Diagnosis><Modality>RESTING</Modality>{diagnosis}</Diagnosis>"
            f"<Waveform><WaveformType>Rhythm</WaveformType><WaveformStartTime>0</WaveformStartTime>"
            f"<NumberofLeads>{len(leads)}</NumberofLeads><SampleType>CONTINUOUS_SAMPLES</SampleType>"
            f"<SampleBase>{fs}</SampleBase><SampleExponent>0</SampleExponent>{lead_xml}</Waveform>"
            "</RestingECG>\n")
    return text.encode("latin-1")


def muse_leads_of(signal_12: np.ndarray) -> np.ndarray:
    """The 8 leads MUSE stores (I, II, V1-V6) of a 12-lead signal in DICOM_LEADS order."""
    return signal_12[[DICOM_LEADS.index(lead) for lead in MUSE_LEADS]]


def dicom_archive(folder: Path, copies: int, seed: int = 0) -> None:
    """`copies` DICOM files of the real ECG, two per patient, each with its own amplitude and noise."""
    rng = np.random.default_rng(seed)
    original = real_dicom()
    codes = np.frombuffer(original.WaveformSequence[0].WaveformData, dtype="<i2").reshape(10000, 12)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(copies):
        dataset = original.copy()
        patient = index // 2
        dataset.PatientID = f"MRN{patient:05d}"
        dataset.PatientName = f"DOE^PATIENT{patient}"
        scaled = codes * (0.8 + 0.4 * rng.random()) + rng.normal(0, 3, codes.shape)
        dataset.WaveformSequence[0].WaveformData = np.clip(scaled, -32767, 32767).astype("<i2").tobytes()
        dataset.WaveformAnnotationSequence[1].UnformattedTextValue = "ECG ANORMALE" if patient % 2 else "ECG NORMALE"
        dataset.save_as(folder / f"MRN{patient:05d}_{index % 2}.dcm")


def muse_archive(folder: Path, copies: int, seed: int = 0) -> None:
    """`copies` MUSE XML files of the real ECG at 500 Hz (8 leads), two per patient, each with its own noise."""
    rng = np.random.default_rng(seed)
    signal = muse_leads_of(real_signal_mv(500))
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(copies):
        patient = index // 2
        noisy = signal * (0.8 + 0.4 * rng.random()) + rng.normal(0, 0.01, signal.shape)
        statements = ("SINUS RHYTHM", "ABNORMAL ECG" if patient % 2 else "NORMAL ECG")
        (folder / f"{patient:08d}_{index % 2}.xml").write_bytes(
            muse_xml(noisy, patient_id=f"{patient:08d}", statements=statements))
