"""The DICOM waveform reader on a real 12-lead ECG (pydicom's `waveform_ecg.dcm`: 1000 Hz, 10 s, uV, a rhythm
and a median-beat group, statements 'RITMO SINUSALE' and 'ECG NORMALE', a 42-year-old woman) and on copies of it
rewritten with pydicom: values checked against pydicom's own decoder, statements and demographics, no names,
birth dates or patient ids in a store, declared padding told apart from real zeros, 8-lead files with derived
limb leads, shuffled channels, and hostile files that are skips with a reason, never a traceback."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("ecgdatakit")

from click.testing import CliRunner  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402

from ecgcl.cli.main import cli  # noqa: E402
from ecgcl.data.ingest import ingest  # noqa: E402
from ecgcl.data.leads import STANDARD_LEADS  # noqa: E402
from ecgcl.data.privacy import salt_path  # noqa: E402
from ecgcl.data.records import NO_WAVEFORM, SIGNAL_GAP, TOO_SHORT  # noqa: E402
from ecgcl.data.store import is_store, open_store  # noqa: E402
from ecgcl.errors import EcgclError  # noqa: E402

DICOM = Path(get_testdata_file("waveform_ecg.dcm"))
FS = 1000  # the file's rate, so stores at FS hold the file's samples unresampled
SAMPLES = 10_000
NAME, BIRTH, MRN = "DOE^JANE", "19450317", "MRN99887766"
HEMODYNAMIC = "1.2.840.10008.5.1.4.1.1.9.2.1"  # Hemodynamic Waveform Storage
EIGHT = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")  # what many carts store


# ---- building DICOM files from the real one ----------------------------------------------------------------------

def dataset():
    return pydicom.dcmread(DICOM)


def codes(ds) -> np.ndarray:
    """The rhythm group's stored int16 codes, (samples, channels)."""
    group = ds.WaveformSequence[0]
    return np.frombuffer(group.WaveformData, "<i2").reshape(int(group.NumberOfWaveformSamples),
                                                            int(group.NumberOfWaveformChannels)).copy()


def set_codes(ds, values: np.ndarray, channels: list[int] | None = None) -> None:
    """Rewrite the rhythm group with `values` (samples, channels) int16, keeping the channel definitions at
    `channels` (default: all, in order)."""
    group = ds.WaveformSequence[0]
    if channels is not None:
        definitions = list(group.ChannelDefinitionSequence)
        group.ChannelDefinitionSequence = pydicom.Sequence([definitions[i] for i in channels])
    group.NumberOfWaveformChannels = values.shape[1]
    group.NumberOfWaveformSamples = values.shape[0]
    group.WaveformData = np.ascontiguousarray(values, dtype="<i2").tobytes()


def declare_padding(ds, code: int = 0) -> None:
    ds.WaveformSequence[0].add_new(0x5400100A, "OW", np.array([code], "<i2").tobytes())  # WaveformPaddingValue


def write(ds, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path)
    return path


def copy_with(path: Path, edit=lambda ds: None) -> Path:
    ds = dataset()
    edit(ds)
    return write(ds, path)


def pydicom_mv(path: Path) -> np.ndarray:
    """The rhythm group as pydicom decodes it, (channels, samples) in mV: the independent reference."""
    return pydicom.dcmread(path).waveform_array(0).T / 1000.0


def lead_order(path: Path) -> list[str]:
    """The lead of each channel, from the channel source code meanings ('Lead I (Einthoven)' -> 'I')."""
    return [c.ChannelSourceSequence[0].CodeMeaning.split("(")[0].replace("Lead", "").strip()
            for c in pydicom.dcmread(path).WaveformSequence[0].ChannelDefinitionSequence]


def store_of(source: Path, out: Path, **options):
    options = {"fs": FS, "length": 10, "workers": 1, "dtype": "float32", **options}  # exact copies of the source
    result = ingest(source, out, **options)
    return result, open_store(result.path)


# ---- the real file --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The real file ingested at its own rate with statements as labels."""
    out = tmp_path_factory.mktemp("real") / "store"
    return store_of(DICOM, out, statements_as_labels=True)


def test_real_file_equals_pydicom(real):
    result, store = real
    assert result.written == 1 and result.skipped == []
    assert store.leads == list(STANDARD_LEADS) and store.fs == FS and store.signals.shape == (1, 12, SAMPLES)
    assert lead_order(DICOM) == list(STANDARD_LEADS)
    expected = pydicom_mv(DICOM)
    assert np.abs(store.signals[0] - expected).max() < 1e-5
    assert 0.5 < np.ptp(expected, axis=1).max() < 5  # a real ECG in mV, not uV or V


def test_ecgdatakit_agrees_with_pydicom():
    """The independent check: ecgdatakit's leads in mV equal pydicom's decoding of the same group."""
    from ecgdatakit import FileParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record = FileParser.parse(DICOM, units="mV")
    assert [lead.label for lead in record.leads] == list(STANDARD_LEADS)
    assert {lead.units for lead in record.leads} == {"mV"}
    values = np.stack([lead.samples for lead in record.leads])
    assert np.abs(values - pydicom_mv(DICOM)).max() < 1e-6


def test_resampled_store_equals_resampled_pydicom(tmp_path, clinical):
    _, store = store_of(DICOM, tmp_path / "500", fs=500)
    assert store.signals.shape == (1, 12, 5000) and store.fs == 500
    assert clinical.real_dicom_path() == DICOM
    expected = clinical.real_signal_mv(500)  # pydicom's decoding, polyphase-resampled 1:2
    assert np.abs(store.signals[0] - expected).max() < 1e-4


def test_statements_demographics_and_median_beats(real):
    result, store = real
    row = store.metadata.iloc[0]
    assert row["labels"] == "RITMO SINUSALE;ECG NORMALE"
    assert row["statements"] == "RITMO SINUSALE;ECG NORMALE"
    assert int(row["age"]) == 42 and row["sex"] == "F"
    assert row["acquired"].startswith("2013-01-25T10:59:19")
    assert row["original_fs"] == FS and row["valid_samples"] == SAMPLES
    ignored = result.manifest["ignored_groups"]
    assert ignored["count"] == 1 and ignored["records"][0]["ignored_groups"] == ["median beats"]
    assert ignored["records"][0]["record_id"] == row["record_id"]
    assert result.manifest["source_kind"] == "dicom" and "ecgdatakit" in result.manifest["versions"]
    assert result.manifest["counts"]["labelled"] == 1


def test_without_statements_as_labels_labels_stay_empty(tmp_path):
    _, store = store_of(DICOM, tmp_path / "plain")
    row = store.metadata.iloc[0]
    assert row["labels"] == "" and row["statements"] == "RITMO SINUSALE;ECG NORMALE"


# ---- privacy -------------------------------------------------------------------------------------------------

def plant_identity(ds, patient_id: str = MRN) -> None:
    ds.PatientName = NAME
    ds.PatientBirthDate = BIRTH
    ds.PatientID = patient_id


SECRETS = ("DOE^JANE", "DOE", "JANE", BIRTH, "1945-03-17", "03/17/1945", MRN, "642341")


def assert_no_secrets(folder: Path, manifest: dict) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"signals.npy", "metadata.csv", "manifest.json"}
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, (path.name, secret)
    text = json.dumps(manifest)
    for secret in SECRETS:
        assert secret not in text, secret


@pytest.mark.parametrize("whole_folder", [True, False], ids=["folder", "single-file"])
def test_no_name_birth_date_or_patient_id_in_the_store(tmp_path, whole_folder):
    source = copy_with(tmp_path / "export" / f"{MRN}.dcm", plant_identity)
    assert pydicom.dcmread(source).PatientName == NAME  # the file does carry them
    out = tmp_path / "store"
    result, store = store_of(source.parent if whole_folder else source, out)
    assert result.written == 1
    assert_no_secrets(out, result.manifest)
    salt = salt_path(out).read_bytes().strip()
    assert len(salt) >= 16 and salt.decode() not in json.dumps(result.manifest)
    for path in out.iterdir():
        assert salt not in path.read_bytes()
    row = store.metadata.iloc[0]
    assert row["patient_id"].startswith("p") and row["record_id"].startswith("r")
    assert row["source_path"] == row["record_id"]
    privacy = result.manifest["privacy"]
    assert privacy["identifying_records"] == 1 and privacy["hashed"] == ["record_id", "source_path", "patient_id"]
    assert privacy["key"] == str(salt_path(out))


def test_same_salt_same_tokens_kept_ids_raw(tmp_path):
    source = copy_with(tmp_path / "export" / f"{MRN}.dcm", plant_identity)
    out = tmp_path / "store"
    _, first = store_of(source.parent, out)
    tokens = first.metadata[["record_id", "patient_id"]].copy()
    _, again = store_of(source.parent, out, overwrite=True)  # the salt file beside the store is reused
    assert again.metadata[["record_id", "patient_id"]].equals(tokens)
    salt = salt_path(out).read_text().strip()
    _, elsewhere = store_of(source.parent, tmp_path / "other", patient_salt=salt)
    assert elsewhere.metadata[["record_id", "patient_id"]].equals(tokens)
    _, other_salt = store_of(source.parent, tmp_path / "third", patient_salt="another key of enough length")
    assert other_salt.metadata["patient_id"][0] != tokens["patient_id"][0]
    result, kept = store_of(source.parent, tmp_path / "kept", keep_patient_ids=True)
    assert kept.metadata["patient_id"][0] == MRN and kept.metadata["record_id"][0] == MRN
    assert result.manifest["privacy"]["hashed"] == [] and not salt_path(tmp_path / "kept").exists()
    assert NAME not in (tmp_path / "kept" / "metadata.csv").read_text()


def test_patients_group_by_their_id(tmp_path):
    folder = tmp_path / "export"
    base = codes(dataset())

    def variant(patient_id: str, shift: int):
        def edit(ds):
            plant_identity(ds, patient_id)
            set_codes(ds, np.roll(base, shift, axis=0))  # a different recording of the same kind
        return edit

    copy_with(folder / "a.dcm", variant("MRN-A", 0))
    copy_with(folder / "b.dcm", variant("MRN-A", 1500))
    copy_with(folder / "c.dcm", variant("MRN-B", 3000))
    result, store = store_of(folder, tmp_path / "store")
    assert result.written == 3 and result.manifest["counts"]["patients"] == 2
    patients = store.metadata["patient_id"].tolist()
    assert patients[0] == patients[1] != patients[2]
    assert len(set(store.metadata["record_id"])) == 3
    assert result.manifest["duplicates"]["groups"] == 0
    assert "MRN-A" not in (tmp_path / "store" / "metadata.csv").read_text()


# ---- declared padding ----------------------------------------------------------------------------------------

def test_padding_value_scattered_through_real_samples_is_kept(tmp_path):
    """The file's 2780 real zero codes (runs of at most 21 ms) equal a declared padding value of 0: ecgdatakit
    gives NaN there, the reader reads them again with pydicom and ingest keeps them as real values."""
    source = copy_with(tmp_path / "pad.dcm", declare_padding)
    raw = codes(pydicom.dcmread(source))
    assert (raw == 0).sum() > 1000
    from ecgdatakit import FileParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = FileParser.parse(source, units="mV")
    assert np.isnan(np.stack([lead.samples for lead in parsed.leads])).sum() == (raw == 0).sum()
    result, store = store_of(source, tmp_path / "store")
    assert result.written == 1 and result.skipped == []
    assert np.abs(store.signals[0] - pydicom_mv(source)).max() < 1e-5
    assert np.abs(store.signals[0] - pydicom_mv(DICOM)).max() < 1e-5
    assert "padding" not in result.manifest


def pad_edit(start: float, stop: float):
    """Declare padding 0 and set samples [start, stop) seconds of every lead to it."""
    def edit(ds):
        values = codes(ds)
        values[int(start * FS):int(stop * FS)] = 0
        set_codes(ds, values)
        declare_padding(ds)
    return edit


def test_padding_at_the_end(tmp_path):
    folder = tmp_path / "src"
    copy_with(folder / "end.dcm", pad_edit(9, 10))
    copy_with(folder / "good.dcm")
    result, _ = store_of(folder, tmp_path / "ten")
    assert result.written == 1 and [s.category for s in result.skipped] == [TOO_SHORT]
    assert "9 s long" in result.skipped[0].detail
    expected = pydicom_mv(folder / "end.dcm")[:, : 9 * FS]
    _, nine = store_of(folder / "end.dcm", tmp_path / "nine", length=9)
    assert nine.signals.shape == (1, 12, 9 * FS) and np.abs(nine.signals[0] - expected).max() < 1e-5
    result, padded = store_of(folder / "end.dcm", tmp_path / "padded", pad=True)
    assert padded.signals.shape == (1, 12, SAMPLES)
    assert int(padded.metadata["valid_samples"][0]) == 9 * FS
    assert np.abs(padded.signals[0, :, : 9 * FS] - expected).max() < 1e-5
    assert not padded.signals[0, :, 9 * FS:].any()
    facts = result.manifest["padding"]["records"][0]["padding"]
    assert facts["cropped_samples"] == FS and facts["gap_samples"] == 0


def test_inner_gap_is_a_skip_or_zero_filled_with_pad(tmp_path):
    folder = tmp_path / "src"
    copy_with(folder / "gap.dcm", pad_edit(4, 4.5))
    copy_with(folder / "good.dcm")
    result, store = store_of(folder, tmp_path / "skip")
    assert result.written == 1 and [s.category for s in result.skipped] == [SIGNAL_GAP]
    assert SIGNAL_GAP == "gap in signal" and "--pad" in result.skipped[0].detail
    assert result.manifest["skip_reasons"] == {SIGNAL_GAP: 1}
    result, padded = store_of(folder / "gap.dcm", tmp_path / "padded", pad=True)
    row = padded.signals[0]
    expected = pydicom_mv(folder / "gap.dcm")
    assert not row[:, 4 * FS: 4 * FS + FS // 2].any()
    outside = np.r_[0: 4 * FS, 4 * FS + FS // 2: SAMPLES]
    assert np.abs(row[:, outside] - expected[:, outside]).max() < 1e-5
    assert int(padded.metadata["valid_samples"][0]) == SAMPLES - FS // 2 < row.shape[-1]
    facts = result.manifest["padding"]["records"][0]["padding"]
    assert facts["gap_samples"] == FS // 2 and facts["cropped_samples"] == 0



AVF = STANDARD_LEADS.index("aVF")  # the file's channels are in the standard order
MIN_CODE = -32768  # the other padding value carts declare


def end_run_edit(samples: int, code: int, declared: int | None = None, channel: int = AVF, start: bool = False):
    """Set the last (or, with `start`, the first) `samples` codes of one lead to `code` and declare padding
    `declared` (default: `code`)."""
    def edit(ds):
        values = codes(ds)
        run = slice(0, samples) if start else slice(len(values) - samples, len(values))
        beside = samples if start else len(values) - samples - 1  # the sample next to the run
        assert values[beside, channel] != code  # so the run is exactly `samples` long
        values[run, channel] = code
        set_codes(ds, values)
        declare_padding(ds, code if declared is None else declared)
    return edit


@pytest.fixture(scope="module")
def end_runs(tmp_path_factory):
    """Copies of the real file whose aVF ends on a run of the declared padding value (0 or -32768): 2, 4 and 25
    samples (2-25 ms, under the 40 ms threshold: signal) and 100 (padding); one whose aVF starts with 25 zeros; one
    declaring -32768 whose aVF ends on 100 real zeros; ingested at 10 s with record ids kept."""
    folder = tmp_path_factory.mktemp("end_runs")
    for code in (0, MIN_CODE):
        for samples in (2, 4, 25, 100):
            copy_with(folder / f"end{samples}_{code}.dcm", end_run_edit(samples, code))
    copy_with(folder / "start25_0.dcm", end_run_edit(25, 0, start=True))
    copy_with(folder / "zeros100_declared_min.dcm", end_run_edit(100, 0, declared=MIN_CODE))
    result, store = store_of(folder, tmp_path_factory.mktemp("end_runs_store") / "store", keep_patient_ids=True)
    return folder, result, store


@pytest.mark.parametrize("code", [0, MIN_CODE])
@pytest.mark.parametrize("samples", [2, 4, 25])
def test_short_end_run_of_the_padding_value_is_signal(end_runs, samples, code):
    """A lead ending at baseline on a few samples of the padding value keeps them: the record is full length and
    equals pydicom's reading, values at the padding value included (-32768 codes are -40.96 mV)."""
    folder, result, store = end_runs
    name = f"end{samples}_{code}"
    row = store.metadata["record_id"].tolist().index(name)
    expected = pydicom_mv(folder / f"{name}.dcm")
    assert store.signals.shape[-1] == SAMPLES and int(store.metadata["valid_samples"][row]) == SAMPLES
    assert np.abs(store.signals[row] - expected).max() < 1e-5
    assert np.allclose(store.signals[row, AVF, -samples:], code * 1.25e-3)
    assert name not in {r["record_id"] for r in result.manifest.get("padding", {}).get("records", [])}


def test_end_runs_kept_or_cropped(end_runs):
    """Only the 100-sample runs (100 ms) are padding: those records are cropped to 9.9 s and skipped as too short;
    a 25-sample run at a lead's start is signal, and zeros are signal where the file declares -32768."""
    folder, result, store = end_runs
    assert sorted((s.record_id, s.category) for s in result.skipped) == [
        (f"end100_{MIN_CODE}", TOO_SHORT), ("end100_0", TOO_SHORT)]
    assert all(s.detail.startswith("9.9 s long, 10 s asked") for s in result.skipped)
    assert result.written == 8 and "padding" not in result.manifest
    for name in ("start25_0", "zeros100_declared_min"):
        row = store.metadata["record_id"].tolist().index(name)
        assert np.abs(store.signals[row] - pydicom_mv(folder / f"{name}.dcm")).max() < 1e-5


@pytest.mark.parametrize("code", [0, MIN_CODE])
def test_long_end_run_is_cropped_or_padded(end_runs, tmp_path, code):
    folder = end_runs[0]
    source = folder / f"end100_{code}.dcm"
    expected = pydicom_mv(source)[:, : SAMPLES - 100]
    result, short = store_of(source, tmp_path / "short", length=9.9, keep_patient_ids=True)
    assert short.signals.shape == (1, 12, SAMPLES - 100) and np.abs(short.signals[0] - expected).max() < 1e-5
    assert result.manifest["padding"]["records"][0]["padding"] == {"runs": 1, "cropped_samples": 100,
                                                                   "gap_samples": 0}
    _, padded = store_of(source, tmp_path / "padded", pad=True)
    assert padded.signals.shape == (1, 12, SAMPLES) and int(padded.metadata["valid_samples"][0]) == SAMPLES - 100
    assert np.abs(padded.signals[0, :, : SAMPLES - 100] - expected).max() < 1e-5
    assert not padded.signals[0, :, SAMPLES - 100:].any()


def test_cropped_record_one_sample_short_is_kept(tmp_path):
    """Every lead ends on 101 padding samples: cropped to 9.899 s, one sample short of --length 9.9, the record is
    kept (its row zero-padded by one sample); two samples short it is skipped as before."""
    folder = tmp_path / "src"
    copy_with(folder / "one.dcm", pad_edit(10 - 0.101, 10))
    copy_with(folder / "two.dcm", pad_edit(10 - 0.102, 10))
    result, store = store_of(folder, tmp_path / "store", length=9.9, keep_patient_ids=True)
    assert [(s.record_id, s.category) for s in result.skipped] == [("two", TOO_SHORT)]
    assert store.metadata["record_id"].tolist() == ["one"] and store.signals.shape == (1, 12, 9900)
    assert int(store.metadata["valid_samples"][0]) == 9899 and not store.signals[0, :, -1].any()
    assert np.abs(store.signals[0, :, :9899] - pydicom_mv(folder / "one.dcm")[:, :9899]).max() < 1e-5


def test_reported_500_hz_record_ending_on_four_zeros_is_kept(tmp_path):
    """The reported export: 500 Hz, 10 s, padding declared 0, aVF ending on 4 zero samples (8 ms at baseline)."""
    def edit(ds):
        values = codes(ds)[::2].copy()
        values[-4:, AVF] = 0
        set_codes(ds, values)
        ds.WaveformSequence[0].SamplingFrequency = 500
        declare_padding(ds)

    source = copy_with(tmp_path / "cart.dcm", edit)
    result, store = store_of(source, tmp_path / "store", fs=500)
    assert result.skipped == [] and store.signals.shape == (1, 12, 5000)
    assert np.abs(store.signals[0] - pydicom_mv(source)).max() < 1e-5

# ---- lead layouts ----------------------------------------------------------------------------------------------

def test_eight_leads_give_derived_limb_leads(tmp_path, clinical):
    channels = [STANDARD_LEADS.index(lead) for lead in EIGHT]
    original = codes(dataset())
    source = copy_with(tmp_path / "eight.dcm", lambda ds: set_codes(ds, original[:, channels], channels))
    assert lead_order(source) == list(EIGHT)
    assert pydicom.dcmread(source).WaveformSequence[0].NumberOfWaveformChannels == 8
    result, store = store_of(source, tmp_path / "store")
    assert store.leads == list(STANDARD_LEADS)
    x = dict(zip(STANDARD_LEADS, store.signals[0]))
    i, ii = x["I"], x["II"]
    full = dict(zip(STANDARD_LEADS, pydicom_mv(DICOM)))
    for lead in EIGHT:
        assert np.abs(x[lead] - full[lead]).max() < 1e-5, lead
    formulas = clinical.limb_leads(i, ii)
    for lead, value in formulas.items():
        assert np.abs(x[lead] - value).max() < 1e-6, lead
        # the cart computed its own III .. aVF from I and II on integer codes (1.25 uV each), so they agree
        # with the derived leads within the cart's rounding (a few codes)
        assert np.abs(x[lead] - full[lead]).max() < 0.01, lead
    assert store.metadata["derived_leads"][0] == "III;aVR;aVL;aVF"
    section = result.manifest["derived_leads"]
    assert section["count"] == 1 and section["records"][0]["derived_leads"] == ["III", "aVR", "aVL", "aVF"]
    assert "III = II - I" in section["rule"]


def test_shuffled_channels_give_the_same_store(tmp_path, real):
    order = [5, 11, 0, 7, 2, 9, 1, 4, 10, 3, 6, 8]
    original = codes(dataset())
    source = copy_with(tmp_path / "shuffled.dcm", lambda ds: set_codes(ds, original[:, order], order))
    assert lead_order(source) == [STANDARD_LEADS[i] for i in order]
    _, store = store_of(source, tmp_path / "store")
    assert np.array_equal(store.signals[0], real[1].signals[0])


# ---- hostile files ---------------------------------------------------------------------------------------------

def no_waveform(ds):
    del ds.WaveformSequence


def zero_samples(ds):
    group = ds.WaveformSequence[0]
    group.NumberOfWaveformSamples = 0
    group.WaveformData = b""


def more_channels(ds):
    ds.WaveformSequence[0].NumberOfWaveformChannels = 13  # 12 channels of data: too few bytes


def fewer_channels(ds):
    """11 channels declared over 12 channels of data: read as 11, the channels would be mixed up."""
    ds.WaveformSequence[0].NumberOfWaveformChannels = 11


def fewer_samples(ds):
    ds.WaveformSequence[0].NumberOfWaveformSamples = 5000  # 10 000 samples of data


def missing_definition(ds):
    group = ds.WaveformSequence[0]
    group.ChannelDefinitionSequence = pydicom.Sequence(list(group.ChannelDefinitionSequence)[:11])


def pressure_channels(ds):
    """A hemodynamic study: the channels are pressures, not leads."""
    ds.SOPClassUID = HEMODYNAMIC
    ds.file_meta.MediaStorageSOPClassUID = HEMODYNAMIC
    for index, channel in enumerate(ds.WaveformSequence[0].ChannelDefinitionSequence):
        source = channel.ChannelSourceSequence[0]
        source.CodeValue, source.CodingSchemeDesignator = f"PRESS-{index}", "99LOCAL"
        source.CodeMeaning = ("PA", "ART")[index % 2]
        channel.ChannelLabel = ("PA", "ART")[index % 2]


HOSTILE = {"no_waveform": no_waveform, "zero_samples": zero_samples, "more_channels": more_channels,
           "fewer_channels": fewer_channels, "fewer_samples": fewer_samples, "missing_definition": missing_definition,
           "pressure": pressure_channels}


@pytest.fixture
def hostile_folder(tmp_path):
    folder = tmp_path / "hostile"
    for name, edit in HOSTILE.items():
        copy_with(folder / f"{name}.dcm", edit)
    copy_with(folder / "good1.dcm")
    copy_with(folder / "sub" / "good2.dcm", lambda ds: set_codes(ds, np.roll(codes(ds), 700, axis=0)))
    (folder / "foreign.dcm").write_text("Not a DICOM file: a note someone saved with the wrong suffix.\n" * 10)
    (folder / "empty.dcm").write_bytes(b"")
    return folder


def test_hostile_files_are_skips_with_a_reason(hostile_folder, tmp_path):
    result, store = store_of(hostile_folder, tmp_path / "store", keep_patient_ids=True)
    assert result.written == 2 and len(store) == 2
    skips = {s.record_id: s for s in result.skipped}
    assert set(skips) == set(HOSTILE)
    for skip in skips.values():
        assert skip.detail and "Traceback" not in skip.detail
    assert skips["pressure"].category == "missing leads" and "none is an ECG lead" in skips["pressure"].detail
    assert "Hemodynamic" in skips["pressure"].detail
    assert skips["more_channels"].category == "unreadable record" and "240000 bytes" in skips["more_channels"].detail
    for name in ("fewer_channels", "fewer_samples"):
        assert skips[name].category == "corrupt header", skips[name]
        assert "Waveform Data holds 240000 bytes" in skips[name].detail
    assert skips["missing_definition"].category == "corrupt header"
    assert "12 channels declared, 11 channel definitions" in skips["missing_definition"].detail
    for name in ("no_waveform", "zero_samples"):
        assert skips[name].category in ("unreadable record", NO_WAVEFORM)
        assert "Waveform" in skips[name].detail
    unrecognised = result.manifest["unrecognised_files"]
    assert unrecognised["count"] == 2 and sorted(unrecognised["files"]) == ["empty.dcm", "foreign.dcm"]
    assert sorted(store.metadata["record_id"]) == ["good1", "sub/good2"]
    assert np.isfinite(store.signals[:]).all()


def test_hostile_files_through_the_cli(hostile_folder, tmp_path):
    out = tmp_path / "cli"
    run = CliRunner().invoke(cli, ["ingest", str(hostile_folder), str(out), "--fs", "500", "--workers", "1",
                                   "--quiet"])
    assert run.exit_code == 0, run.output
    assert "Traceback" not in run.output and run.exception is None
    assert is_store(out) and len(open_store(out)) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["skipped"] == len(HOSTILE)
    assert manifest["unrecognised_files"]["count"] == 2
    # ids are hashed: the unrecognised files are listed as tokens with their suffix
    assert all(name.startswith("f") and name.endswith(".dcm") for name in manifest["unrecognised_files"]["files"])
    for name in HOSTILE:
        for options, needle in ((["--fs", "500", "--length", "10"], "was skipped"),
                                ([], "could not read any record")):  # nothing to infer the rate from
            single = tmp_path / f"single_{name}"
            one = CliRunner().invoke(cli, ["ingest", str(hostile_folder / f"{name}.dcm"), str(single),
                                           "--workers", "1", *options])
            assert one.exit_code == 2, one.output
            assert "Traceback" not in one.output and isinstance(one.exception, SystemExit)
            lines = [line for line in one.output.splitlines() if line.strip()]
            assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], one.output
            assert not single.exists()
    foreign = CliRunner().invoke(cli, ["ingest", str(hostile_folder / "foreign.dcm"), str(tmp_path / "f")])
    assert foreign.exit_code == 2 and foreign.output.startswith("Error: ") and "Traceback" not in foreign.output


def test_hostile_single_file_through_the_api(tmp_path):
    source = copy_with(tmp_path / "none.dcm", no_waveform)
    with pytest.raises(EcgclError, match="every record .* was skipped: unreadable record x1"):
        ingest(source, tmp_path / "store", fs=500, length=10, workers=1)
    assert not (tmp_path / "store").exists()


def test_fuzzed_dicom_files(tmp_path):
    """Truncated and byte-flipped copies (seeded): whatever the damage, skips or records, never a traceback; the
    intact file is always written and every written signal is finite."""
    rng = np.random.default_rng(13)
    data = DICOM.read_bytes()
    folder = tmp_path / "fuzz"
    folder.mkdir()
    (folder / "intact.dcm").write_bytes(data)
    for index in range(16):
        mutated = bytearray(data)
        if index % 2:
            mutated = mutated[: int(rng.integers(132, len(data)))]
        else:  # a few bytes anywhere: in the attributes (lengths, VRs, sequences) or in the samples
            end = 8000 if index % 4 else len(data)
            for where in rng.integers(132, end, 1 + index // 4):
                mutated[where] = int(rng.integers(256))
        (folder / f"m{index:02d}.dcm").write_bytes(bytes(mutated))
    out = tmp_path / "store"
    run = CliRunner().invoke(cli, ["ingest", str(folder), str(out), "--fs", "500", "--length", "10", "--workers",
                                   "1", "--keep-patient-ids", "--quiet"])
    assert run.exit_code == 0, run.output
    assert "Traceback" not in run.output and run.exception is None
    store = open_store(out)
    assert "intact" in set(store.metadata["record_id"]) and np.isfinite(store.signals[:]).all()
    manifest = json.loads((out / "manifest.json").read_text())
    accounted = manifest["counts"]["written"] + manifest["counts"]["skipped"]
    accounted += manifest.get("unrecognised_files", {}).get("count", 0)
    assert accounted == 17
    assert manifest["counts"]["skipped"] + manifest.get("unrecognised_files", {}).get("count", 0) >= 8  # truncations
