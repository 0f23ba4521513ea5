"""DICOM waveforms (PS3.3 A.34: 12-lead ECG, General ECG, Ambulatory, Hemodynamic) read with ecgdatakit and pydicom.

ecgdatakit turns every sample equal to the declared Waveform Padding Value into NaN. Writers may declare a
padding value that real signals take (0), so where ecgdatakit gives NaN the values are read again with
pydicom's `waveform_array` (an independent decoder of the same group, in the channel sensitivity units) and the
samples equal to the padding value are handed to ingest as `padding`: ingest treats them as padding only where
they form long runs at a lead's ends or inside it (`ecgcl.data.padding`), never in short ones. The rhythm
group is the record; median or representative groups are ignored. A waveform whose channels map to no ECG lead
(a hemodynamic pressure study) is skipped with its SOP class named.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ecgcl.data.leads import STANDARD_LEADS, normalise_lead_name
from ecgcl.data.records import CORRUPT_HEADER, MISSING_LEADS, NO_WAVEFORM, BadRecord, RawRecord, RecordRef
from ecgcl.data.units import UNIT_TO_MV, unit_key
from ecgcl.plugins.readers.clinical import ClinicalFileReader

MEDIAN_WORDS = ("MEDIAN", "REPRESENTATIVE", "AVERAGE")
PYDICOM_TOLERANCE_MV = 1e-3  # ecgdatakit and pydicom must agree on every sample both read


class DicomReader(ClinicalFileReader):
    """DICOM waveform files (.dcm, or no suffix) with ECG channels."""

    kind = "dicom"
    suffixes = (".dcm", ".dicom", "")
    priority = 20
    requires = ("ecgdatakit", "pydicom")
    library = "ecgdatakit,pydicom"
    parser = "dicom_waveform:DICOMWaveformParser"

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return head[128:132] == b"DICM"

    def load(self, ref: RecordRef) -> RawRecord:
        path = Path(ref.locator)
        record = self.parse(path)
        sop = str(record.raw_metadata.get("sop_class_name") or "DICOM waveform")
        leads = [lead for lead in record.leads if len(lead.samples)]
        if not leads:
            raise BadRecord(NO_WAVEFORM, f"{sop} without a waveform of any samples")
        if not any(normalise_lead_name(lead.label) in STANDARD_LEADS for lead in leads):
            raise BadRecord(MISSING_LEADS, f"{sop} with channels {', '.join(lead.label for lead in leads)}: none "
                                           "is an ECG lead")
        import pydicom

        dataset = pydicom.dcmread(path)
        check_layout(dataset, sop)
        signal = np.stack([np.asarray(lead.samples, dtype=np.float32) for lead in leads])
        padding = None
        if np.isnan(signal).any():
            signal, padding = repaired_with_pydicom(dataset, signal)
        raw = self.to_raw(record, signal)
        raw.padding = padding
        return raw


def _size(group, name: str) -> int:
    try:
        return int(group.get(name) or 0)
    except (TypeError, ValueError):
        return 0


def rhythm_group(dataset) -> int | None:
    """Index of the first waveform group with data that is not median or representative beats (ecgdatakit's
    rule: groups without channels, samples or Waveform Data are passed over)."""
    for index, group in enumerate(dataset.get("WaveformSequence", [])):
        if not (_size(group, "NumberOfWaveformChannels") > 0 and _size(group, "NumberOfWaveformSamples") > 0
                and group.get("WaveformData") is not None):
            continue
        label = str(group.get("MultiplexGroupLabel", "")).upper()
        if not any(word in label for word in MEDIAN_WORDS):
            return index
    return None


def check_layout(dataset, sop: str) -> None:
    """BadRecord (corrupt header) when the rhythm group's Waveform Data is not exactly its declared channels x
    samples x bytes, or its channel definitions are not one per channel: ecgdatakit reads the first
    channels x samples values of a longer buffer, which mixes the channels up when the count is wrong."""
    index = rhythm_group(dataset)
    if index is None:
        return
    group = dataset.WaveformSequence[index]
    channels, samples = _size(group, "NumberOfWaveformChannels"), _size(group, "NumberOfWaveformSamples")
    size = channels * samples * (_size(group, "WaveformBitsAllocated") // 8)
    found = len(group.WaveformData)
    if found not in (size, size + size % 2):  # values are padded to an even length
        raise BadRecord(CORRUPT_HEADER, f"{sop}: Waveform Data holds {found} bytes where {channels} channels x "
                                        f"{samples} samples need {size}")
    definitions = len(group.get("ChannelDefinitionSequence") or [])
    if definitions != channels:
        raise BadRecord(CORRUPT_HEADER, f"{sop}: {channels} channels declared, {definitions} channel definitions")


def repaired_with_pydicom(dataset, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """`signal` (leads, samples) in mV with ecgdatakit's NaN samples read again by pydicom from `dataset` (the
    same file), and the mask of samples equal to the declared padding value (None when the file declares none)."""
    index = rhythm_group(dataset)
    if index is None:
        return signal, None
    group = dataset.WaveformSequence[index]
    values = np.asarray(dataset.waveform_array(index), dtype=np.float64).T  # (channels, samples)
    if values.shape != signal.shape:
        raise BadRecord(NO_WAVEFORM, f"pydicom reads {values.shape} where ecgdatakit reads {signal.shape}")
    units = [unit_key(c.ChannelSensitivityUnitsSequence[0].CodeValue) if "ChannelSensitivityUnitsSequence" in c
             else "uv" for c in group.ChannelDefinitionSequence]
    factors = np.array([UNIT_TO_MV.get(u, np.nan) for u in units])[:, None]
    values *= factors
    both = np.isfinite(signal) & np.isfinite(values)
    if both.any() and np.abs(signal[both] - values[both]).max() > PYDICOM_TOLERANCE_MV:
        raise BadRecord(NO_WAVEFORM, "ecgdatakit and pydicom disagree on the waveform's values")
    repaired = np.where(np.isnan(signal), values, signal).astype(np.float32)
    padding = None
    if "WaveformPaddingValue" in group:
        bits = int(group.WaveformBitsAllocated)
        kind = "i" if str(group.WaveformSampleInterpretation) == "SS" else "u"
        dtype = np.dtype(f"<{kind}{bits // 8}")
        raw = np.frombuffer(group.WaveformData, dtype=dtype)[: values.size].reshape(values.shape[::-1]).T
        pad = np.frombuffer(bytes(group.WaveformPaddingValue)[: dtype.itemsize], dtype=dtype)[0]
        padding = raw == pad
    return repaired, padding
