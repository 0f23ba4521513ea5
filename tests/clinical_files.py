"""Clinical ECG files built from real signals, for tests and `benchmarks/formats.py`.

The signals are the real 12-lead ECG that pydicom ships (`waveform_ecg.dcm`: 1000 Hz, 10 s, 1.25 uV codes). DICOM
copies are that file with new patient ids and per-copy waveform noise. GE MUSE XML files follow the layout of
MUSE's `restecg.dtd` as MUSE exports write it (RestingECG root with the DOCTYPE line, demographics, measurements,
diagnosis statements, a median and a rhythm `Waveform` whose `LeadData` hold base64 little-endian int16
`WaveFormData` with their CRC32, 4.88 uV per bit, 8 stored leads I, II, V1-V6). HL7 aECG files are v3
`AnnotatedECG` documents with a rhythm series of 12 `SLIST_PQ` leads. Philips Sierra XML and SCP-ECG follow below.
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import numpy as np

MUSE_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
DICOM_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
MUSE_UV_PER_BIT = 4.88  # what MUSE exports write
REAL_UV_PER_CODE = 1.25  # the real DICOM file's channel sensitivity
AECG_UV_PER_DIGIT = REAL_UV_PER_CODE  # so aECG files of the real codes hold them exactly
MUSE_DOCTYPE = '<!DOCTYPE RestingECG SYSTEM "restecg.dtd">'
CONFIRMED_STATEMENT = "Confirmed by SMITH, JOHN (1234) on 3/4/2021 10:22:33 AM"  # who read it, as carts append


def real_dicom_path() -> Path:
    """The path of pydicom's test file `waveform_ecg.dcm`."""
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("waveform_ecg.dcm"))


def real_dicom():
    """The pydicom test file as a dataset."""
    import pydicom

    return pydicom.dcmread(real_dicom_path())


def real_signal_mv(fs: int = 500) -> np.ndarray:
    """The real ECG's 12 leads (DICOM_LEADS order) in mV at `fs` Hz (1000 Hz decimated by an integer factor)."""
    from scipy.signal import resample_poly

    dataset = real_dicom()
    values = np.asarray(dataset.waveform_array(0), dtype=np.float64).T / 1000.0
    return resample_poly(values, 1, 1000 // fs, axis=-1) if fs != 1000 else values


def real_codes() -> np.ndarray:
    """The real ECG's stored rhythm codes (REAL_UV_PER_CODE each, 1000 Hz): (12 leads, 10000 samples) int16,
    DICOM_LEADS order."""
    group = real_dicom().WaveformSequence[0]
    return np.frombuffer(group.WaveformData, dtype="<i2").reshape(-1, 12).T


def real_decimated_uv(fs: int = 500) -> np.ndarray:
    """The real ECG in uV at `fs` Hz without filtering: its codes, every (1000 // fs)-th sample, times
    REAL_UV_PER_CODE (exact multiples of 1.25 uV), (12, samples) in DICOM_LEADS order."""
    return real_codes()[:, ::1000 // fs].astype(np.float64) * REAL_UV_PER_CODE


def muse_leads_of(signal_12: np.ndarray) -> np.ndarray:
    """The 8 leads MUSE stores (I, II, V1-V6) of a 12-lead signal in DICOM_LEADS order."""
    return signal_12[[DICOM_LEADS.index(lead) for lead in MUSE_LEADS]]


def dicom_archive(folder: Path, copies: int, seed: int = 0) -> None:
    """`copies` DICOM files of the real ECG, two per patient, each with its own amplitude and noise."""
    rng = np.random.default_rng(seed)
    original = real_dicom()
    codes = real_codes().T  # (samples, channels), as the file stores them
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


# ---- GE MUSE XML -----------------------------------------------------------------------------------------------

def _muse_lead_data(lead: str, values: np.ndarray) -> str:
    """One `LeadData` element: int16 codes as wrapped base64, with byte count, sample count and CRC32."""
    payload = values.astype("<i2").tobytes()
    data = base64.b64encode(payload).decode()
    return f"""      <LeadData>
         <LeadByteCountTotal>{len(payload)}</LeadByteCountTotal>
         <LeadTimeOffset>0</LeadTimeOffset>
         <LeadSampleCountTotal>{len(values)}</LeadSampleCountTotal>
         <LeadAmplitudeUnitsPerBit>{MUSE_UV_PER_BIT}</LeadAmplitudeUnitsPerBit>
         <LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits>
         <LeadHighLimit>32767</LeadHighLimit>
         <LeadLowLimit>-32768</LeadLowLimit>
         <LeadID>{lead}</LeadID>
         <LeadOffsetFirstSample>0</LeadOffsetFirstSample>
         <FirstSampleBaseline>0</FirstSampleBaseline>
         <LeadSampleSize>2</LeadSampleSize>
         <LeadOff>FALSE</LeadOff>
         <BaselineSway>FALSE</BaselineSway>
         <LeadDataCRC32>{zlib.crc32(payload) & 0xFFFFFFFF}</LeadDataCRC32>
         <WaveFormData>
{chr(10).join(data[i:i + 76] for i in range(0, len(data), 76))}
         </WaveFormData>
      </LeadData>
"""


def _muse_waveform(kind: str, fs: int, values: dict[str, np.ndarray]) -> str:
    """One `Waveform` element ('Median' or 'Rhythm') of the leads `values` (lead -> int16 codes)."""
    leads = "".join(_muse_lead_data(lead, v) for lead, v in values.items())
    return f"""   <Waveform>
      <WaveformType>{kind}</WaveformType>
      <WaveformStartTime>0</WaveformStartTime>
      <NumberofLeads>{len(values)}</NumberofLeads>
      <SampleType>CONTINUOUS_SAMPLES</SampleType>
      <SampleBase>{fs}</SampleBase>
      <SampleExponent>0</SampleExponent>
      <HighPassFilter>16</HighPassFilter>
      <LowPassFilter>150</LowPassFilter>
      <ACFilter>60</ACFilter>
{leads}   </Waveform>
"""


def muse_codes(signal_mv: np.ndarray) -> np.ndarray:
    """`signal_mv` as MUSE stores it: int16 codes of MUSE_UV_PER_BIT."""
    return np.round(np.asarray(signal_mv) * 1000.0 / MUSE_UV_PER_BIT).astype("<i2")


def muse_known_mv(signal_mv: np.ndarray) -> np.ndarray:
    """`signal_mv` as a MUSE XML file stores it: rounded to 4.88 uV codes, in mV."""
    return muse_codes(signal_mv).astype(np.float64) * MUSE_UV_PER_BIT / 1000.0


def muse_xml(signal_mv: np.ndarray, fs: int = 500, *, leads=MUSE_LEADS, patient_id: str = "MRN55501234",
             name: tuple[str, str] = ("JANE", "DOE"), birth_date: str = "03-17-1945",
             statements=("SINUS RHYTHM", CONFIRMED_STATEMENT), doctype: str | None = MUSE_DOCTYPE,
             encoding: str = "ISO-8859-1", median_samples: int = 600, patient_extra: str = "") -> bytes:
    """A GE MUSE `RestingECG` export as MUSE writes it of `signal_mv` (`leads` x samples, mV; values quantised to
    4.88 uV): demographics (a 67-year-old woman, acquired 2013-01-25 10:59:19 at GENERAL HOSPITAL, overread by
    SMITH, JOHN, id 1234), measurements, `statements`, a median waveform (the first `median_samples` samples) and
    the rhythm waveform. `doctype` is the line after the XML declaration (None: none); `encoding` is only declared,
    the bytes are always Latin-1; `patient_extra` is raw XML appended inside `PatientID` (entity references)."""
    codes = muse_codes(signal_mv)
    if codes.ndim != 2 or codes.shape[0] != len(leads):
        raise ValueError(f"signal of shape {codes.shape} for {len(leads)} leads")
    rhythm = dict(zip(leads, codes))
    median = {lead: v[:median_samples] for lead, v in rhythm.items()}
    diagnosis = "".join(f"""      <DiagnosisStatement>
         <StmtFlag>ENDSLINE</StmtFlag>
         <StmtText>{text}</StmtText>
      </DiagnosisStatement>
""" for text in statements)
    first_name, last_name = name
    text = f"""<?xml version="1.0" encoding="{encoding}"?>
{doctype + chr(10) if doctype else ""}<RestingECG>
   <MuseInfo>
      <MuseVersion>8.0.2.10132</MuseVersion>
   </MuseInfo>
   <PatientDemographics>
      <PatientID>{patient_id}{patient_extra}</PatientID>
      <PatientAge>67</PatientAge>
      <AgeUnits>YEARS</AgeUnits>
      <DateofBirth>{birth_date}</DateofBirth>
      <Gender>FEMALE</Gender>
      <Race>UNKNOWN</Race>
      <PatientLastName>{last_name}</PatientLastName>
      <PatientFirstName>{first_name}</PatientFirstName>
   </PatientDemographics>
   <TestDemographics>
      <DataType>RESTING</DataType>
      <Site>1</Site>
      <SiteName>GENERAL HOSPITAL</SiteName>
      <AcquisitionDevice>MAC55</AcquisitionDevice>
      <Status>CONFIRMED</Status>
      <EditListStatus>Confirmed</EditListStatus>
      <Priority>NORMAL</Priority>
      <Location>10</Location>
      <LocationName>CARDIOLOGY</LocationName>
      <AcquisitionTime>10:59:19</AcquisitionTime>
      <AcquisitionDate>01-25-2013</AcquisitionDate>
      <CartNumber>4</CartNumber>
      <AcquisitionSoftwareVersion>010A</AcquisitionSoftwareVersion>
      <AnalysisSoftwareVersion>241</AnalysisSoftwareVersion>
      <EditTime>08:10:04</EditTime>
      <EditDate>01-26-2013</EditDate>
      <OverreaderID>1234</OverreaderID>
      <OverreaderLastName>SMITH</OverreaderLastName>
      <OverreaderFirstName>JOHN</OverreaderFirstName>
   </TestDemographics>
   <RestingECGMeasurements>
      <VentricularRate>72</VentricularRate>
      <PRInterval>152</PRInterval>
      <QRSDuration>88</QRSDuration>
      <QTInterval>380</QTInterval>
      <QTCorrected>416</QTCorrected>
      <PAxis>54</PAxis>
      <RAxis>38</RAxis>
      <TAxis>41</TAxis>
      <ECGSampleBase>{fs}</ECGSampleBase>
      <ECGSampleExponent>0</ECGSampleExponent>
   </RestingECGMeasurements>
   <Diagnosis>
      <Modality>RESTING</Modality>
{diagnosis}   </Diagnosis>
{_muse_waveform("Median", fs, median)}{_muse_waveform("Rhythm", fs, rhythm)}</RestingECG>
"""
    return text.encode("latin-1")


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
            muse_xml(noisy, 500, patient_id=f"{patient:08d}", statements=statements))


def billion_laughs(root: str = "RestingECG") -> str:
    """A DOCTYPE for `root` declaring nested entities: `&lol9;` expands to 10**9 'lol's."""
    entities = ['<!ENTITY lol "lol">'] + [f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                                         for i in range(1, 10)]
    return f"<!DOCTYPE {root} [\n" + "\n".join(entities) + "\n]>"


# ---- HL7 aECG ----------------------------------------------------------------------------------------------------

def mdc(lead: str) -> str:
    """The MDC lead code suffix (`MDC_ECG_LEAD_<suffix>`): I, II, III, AVR, AVL, AVF, V1 ..."""
    return lead.upper()


def aecg_xml(signal_mv: np.ndarray, fs: int = 500, *, leads=DICOM_LEADS, subject: str = "SUBJ-0042",
             statements=("SINUS RHYTHM", CONFIRMED_STATEMENT), uv_per_digit: float = AECG_UV_PER_DIGIT) -> bytes:
    """An HL7 v3 AnnotatedECG of `signal_mv` (`leads` x samples, mV): one rhythm series at `fs` Hz, each lead a
    `SLIST_PQ` of integer digits of `uv_per_digit` uV, `statements` as interpretation annotations; the subject
    (`subject`, initials JD, a woman born 1945-03-17) in trial TRIAL-7, acquired 2013-01-25 10:59:19. UTF-8."""
    digits = np.round(np.asarray(signal_mv) * 1000.0 / uv_per_digit).astype(np.int64)
    if digits.ndim != 2 or digits.shape[0] != len(leads):
        raise ValueError(f"signal of shape {digits.shape} for {len(leads)} leads")
    sequences = "".join(f"""          <component>
            <sequence>
              <code code="MDC_ECG_LEAD_{mdc(lead)}" codeSystem="2.16.840.1.113883.6.24"/>
              <value xsi:type="SLIST_PQ">
                <origin value="0" unit="uV"/>
                <scale value="{uv_per_digit}" unit="uV"/>
                <digits>{' '.join(map(str, row))}</digits>
              </value>
            </sequence>
          </component>
""" for lead, row in zip(leads, digits))
    annotations = "".join(f"""          <component>
            <annotation>
              <code code="MDC_ECG_INTERPRETATION_STATEMENT" codeSystem="2.16.840.1.113883.6.24"/>
              <value xsi:type="ST">{text}</value>
            </annotation>
          </component>
""" for text in statements)
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<AnnotatedECG xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ITSVersion="XML_1.0">
  <id root="61d1a24f-b47e-41aa-ae95-f8ac302f4eeb"/>
  <code code="93000" codeSystem="2.16.840.1.113883.6.12" codeSystemName="CPT-4"/>
  <effectiveTime>
    <low value="20130125105919"/>
    <high value="20130125105929"/>
  </effectiveTime>
  <componentOf>
    <timepointEvent>
      <componentOf>
        <subjectAssignment>
          <subject>
            <trialSubject>
              <id root="2.16.840.1.113883.3.1" extension="{subject}"/>
              <subjectDemographicPerson>
                <name>JD</name>
                <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
                <birthTime value="19450317"/>
              </subjectDemographicPerson>
            </trialSubject>
          </subject>
          <componentOf>
            <clinicalTrial>
              <id root="2.16.840.1.113883.3.2" extension="TRIAL-7"/>
            </clinicalTrial>
          </componentOf>
        </subjectAssignment>
      </componentOf>
    </timepointEvent>
  </componentOf>
  <component>
    <series>
      <id root="9b2e5a7c-1111-2222-3333-444455556666"/>
      <code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"/>
      <effectiveTime>
        <low value="20130125105919"/>
        <high value="20130125105929"/>
      </effectiveTime>
      <component>
        <sequenceSet>
          <component>
            <sequence>
              <code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.5.4"/>
              <value xsi:type="GLIST_TS">
                <head value="20130125105919.000"/>
                <increment value="{1 / fs:g}" unit="s"/>
              </value>
            </sequence>
          </component>
{sequences}        </sequenceSet>
      </component>
      <subjectOf>
        <annotationSet>
          <activityTime value="20130125110000"/>
{annotations}        </annotationSet>
      </subjectOf>
    </series>
  </component>
</AnnotatedECG>
"""
    return text.encode("utf-8")


# ---- Philips Sierra XML and SCP-ECG (EN 1064) ----------------------------------------------------------------

PHILIPS_UV_PER_COUNT = 5.0
SCP_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
SCP_LEAD_CODES = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8, "III": 61, "aVR": 62,
                  "aVL": 63, "aVF": 64}
SCP_NV_PER_COUNT = 5000


def philips_xml(signal_mv: np.ndarray, fs: int = 500, *, leads=DICOM_LEADS, patient_id: str = "MRN20190521",
                name: tuple[str, str] = ("JANE", "DOE"), birth_date: str = "1945-03-17",
                statements=(("Sinus rhythm", ""), ("Left axis deviation", "QRS axis -45")),
                acquired: tuple[str, str] = ("2019-05-21", "09:41:07"),
                confirmed_by: str = "SMITH, JOHN") -> bytes:
    """A Philips Sierra ECG XML 1.04 resting ECG (`restingecgdata` root, as PageWriter carts write) of
    `signal_mv` (`leads` x samples, mV): uncompressed Base64 little-endian int16 `parsedwaveforms`, lead after
    lead, 5 uV per count; `statements` are (left, right) statement pairs."""
    codes = np.round(np.asarray(signal_mv) * 1000.0 / PHILIPS_UV_PER_COUNT).astype("<i2")
    data = base64.b64encode(codes.tobytes()).decode("ascii")
    data = "\n".join(data[i:i + 76] for i in range(0, len(data), 76))
    duration_ms = round(codes.shape[1] * 1000 / fs)
    stated = "".join(f"<statement><statementcode>S{k}</statementcode><leftstatement>{left}</leftstatement>"
                     f"<rightstatement>{right}</rightstatement></statement>\n"
                     for k, (left, right) in enumerate(statements, 1))
    day, time = acquired
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<restingecgdata xmlns="http://www3.medical.philips.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://www3.medical.philips.com PhilipsECG.xsd" status="Confirmed" lang="en">
<documentinfo><documentname>{patient_id}_{day}.xml</documentname><documenttype>SierraECG</documenttype>\
<documentversion>1.04</documentversion></documentinfo>
<dataacquisition date="{day}" time="{time}" statflag="False">
<machine machineid="17" detaildescription="Philips Medical Products:860315:A.07.02">PageWriter TC50</machine>
<acquirer><operatorid>0042</operatorid><departmentid>CARD</departmentid>\
<institutionname>GENERAL HOSPITAL</institutionname></acquirer>
<signalcharacteristics><samplingrate>{fs}</samplingrate><resolution>{PHILIPS_UV_PER_COUNT:g}</resolution>\
<hipass>0.05</hipass><lowpass>150</lowpass><acquisitiontype>STD-12</acquisitiontype><bitspersample>16</bitspersample>\
<signaloffset>0</signaloffset><signalsigned>True</signalsigned><numberchannelsvalid>{len(leads)}</numberchannelsvalid>\
<numberchannelsallocated>{len(leads)}</numberchannelsallocated></signalcharacteristics>
</dataacquisition>
<patient><generalpatientdata><patientid>{patient_id}</patientid><name><lastname>{name[1]}</lastname>\
<firstname>{name[0]}</firstname></name><age><years>74</years><dateofbirth>{birth_date}</dateofbirth></age>\
<sex>Female</sex><pacestatus>Unknown</pacestatus></generalpatientdata></patient>
<interpretations><interpretation criteriaversion="0A" date="{day}" time="{time}">
{stated}<severity code="AB">- ABNORMAL ECG -</severity>
<mdsignatureline>Confirmed by: {confirmed_by} 22-May-2019 08:10:04</mdsignatureline>
</interpretation></interpretations>
<waveforms>
<parsedwaveforms numberofleads="{len(leads)}" leadlabels="{' '.join(leads)}" durationperchannel="{duration_ms}" \
samplespersecond="{fs}" resolution="{PHILIPS_UV_PER_COUNT:g}" signaloffset="0" signalsigned="True" bitspersample="16" \
hipass="0.05" lowpass="150" notchfiltered="False" notchfilterfreqs="0" artfiltered="False" dataencoding="Base64" \
compression="Uncompressed" compressflag="False">
{data}
</parsedwaveforms>
</waveforms>
</restingecgdata>
"""
    return text.encode("utf-8")


def philips_known_mv(signal_mv: np.ndarray) -> np.ndarray:
    """`signal_mv` as a Philips XML file stores it: rounded to 5 uV counts, in mV."""
    return np.round(np.asarray(signal_mv) * 1000.0 / PHILIPS_UV_PER_COUNT) * PHILIPS_UV_PER_COUNT / 1000.0


def scp_crc(data: bytes) -> int:
    """CRC-CCITT of EN 1064 (polynomial 0x1021, initial value 0xFFFF)."""
    import binascii

    return binascii.crc_hqx(data, 0xFFFF)


def _scp_section(number: int, body: bytes, version: int = 20) -> bytes:
    """One SCP-ECG section: 16-byte header (CRC, id, length, section and protocol version, reserved), the body
    padded to an even length, and the CRC over everything after the CRC field."""
    import struct

    body += b"\0" * (len(body) % 2)
    head = struct.pack("<HIBB6s", number, 16 + len(body), version, version, b"SCPECG" if number == 0 else b"")
    return struct.pack("<H", scp_crc(head + body)) + head + body


def _scp_tag(tag: int, value: bytes) -> bytes:
    import struct

    return struct.pack("<BH", tag, len(value)) + value


def scp_ecg(signal_mv: np.ndarray, fs: int = 500, *, leads=SCP_LEADS, patient_id: str = "MRN20190521",
            name: tuple[str, str] = ("JANE", "DOE"), birth_date: tuple[int, int, int] = (1945, 3, 17),
            acquired: tuple[int, int, int, int, int, int] = (2019, 5, 21, 9, 41, 7),
            statements=("SINUS RHYTHM", "NORMAL ECG"), nv_per_count: int = SCP_NV_PER_COUNT) -> bytes:
    """An uncompressed SCP-ECG record (EN 1064 v2.0) of `signal_mv` (`leads` x samples, mV), as a cart writes it:
    section 0 (pointers), 1 (patient and acquisition tags), 3 (lead definitions, all leads simultaneous),
    6 (rhythm data: int16 amplitudes of `nv_per_count` nV, sample interval in us, no Huffman, no difference,
    no bimodal compression) and 8 (the cart's textual statements), each with its CRC-CCITT."""
    import struct

    codes = np.round(np.asarray(signal_mv) * 1e6 / nv_per_count).astype("<i2")
    n = codes.shape[1]
    year, month, day, hour, minute, second = acquired
    device = (struct.pack("<HHHBB6sBBBBB16sB", 1, 2, 17, 0, 255, b"CART\0\0", 20, 0xA0, 0, 0, 1, b"", 0)
              + b"\0" + b"SN4711\0" + b"A.01\0" + b"ecgcl tests\0" + b"ACME\0")
    tags = (_scp_tag(0, name[1].encode("latin-1") + b"\0") + _scp_tag(1, name[0].encode("latin-1") + b"\0")
            + _scp_tag(2, patient_id.encode("latin-1") + b"\0") + _scp_tag(5, struct.pack("<HBB", *birth_date))
            + _scp_tag(8, bytes([2])) + _scp_tag(14, device) + _scp_tag(25, struct.pack("<HBB", year, month, day))
            + _scp_tag(26, bytes([hour, minute, second])) + _scp_tag(255, b""))
    lead_table = bytes([len(leads), 0x04 | (len(leads) << 3)]) + b"".join(
        struct.pack("<IIB", 1, n, SCP_LEAD_CODES[lead]) for lead in leads)
    rhythm = (struct.pack("<HHBB", nv_per_count, round(1e6 / fs), 0, 0)
              + struct.pack(f"<{len(leads)}H", *[2 * n] * len(leads)) + codes.tobytes())
    texts = b"".join(struct.pack("<BH", k, len(text) + 1) + text.encode("latin-1") + b"\0"
                     for k, text in enumerate(statements, 1))
    interpretation = struct.pack("<BHBBBBBB", 0, year, month, day, hour, minute, second, len(statements)) + texts
    bodies = {1: tags, 3: lead_table, 6: rhythm, 8: interpretation}
    sections = {number: _scp_section(number, body) for number, body in bodies.items()}
    pointers_length = 16 + 10 * 12
    index, pointers = 7 + pointers_length, struct.pack("<HII", 0, pointers_length, 7)
    for number in range(1, 12):
        if number in sections:
            pointers += struct.pack("<HII", number, len(sections[number]), index)
            index += len(sections[number])
        else:
            pointers += struct.pack("<HII", number, 0, 0)
    payload = _scp_section(0, pointers) + b"".join(sections[number] for number in sorted(sections))
    record = struct.pack("<I", 6 + len(payload)) + payload
    return struct.pack("<H", scp_crc(record)) + record


def scp_known_mv(signal_mv: np.ndarray, nv_per_count: int = SCP_NV_PER_COUNT) -> np.ndarray:
    """`signal_mv` as an SCP-ECG file stores it: rounded to `nv_per_count` nV counts, in mV."""
    return np.round(np.asarray(signal_mv) * 1e6 / nv_per_count) * nv_per_count / 1e6


def leads_of(signal_12: np.ndarray, leads) -> np.ndarray:
    """The rows `leads` of a 12-lead signal in DICOM_LEADS order."""
    return signal_12[[DICOM_LEADS.index(lead) for lead in leads]]


def limb_leads(lead_i: np.ndarray, lead_ii: np.ndarray) -> dict[str, np.ndarray]:
    """The limb leads Einthoven's and Goldberger's relations give from I and II, to check derived leads against."""
    return {"III": lead_ii - lead_i, "aVR": -(lead_i + lead_ii) / 2, "aVL": lead_i - lead_ii / 2,
            "aVF": lead_ii - lead_i / 2}
