"""Units converted to mV, amplitude flags, lead aliases and --lead-map, and the most common rate and length,
on real PTB-XL signals rewritten inside the tests."""

import json

import numpy as np
import pytest
import wfdb
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.ingest import ingest
from ecgcl.data.leads import STANDARD_LEADS, normalise_lead_name, parse_lead_map
from ecgcl.data.store import open_store
from ecgcl.errors import EcgclError

def ptbxl_mv(ptbxl_dir, ecg_id):
    """The record in mV as (leads, samples), read by wfdb from the untouched PTB-XL file."""
    return wfdb.rdsamp(str(ptbxl_dir / "records100" / "00000" / f"{ecg_id:05d}_lr"))[0].T


def test_headers_in_uv_and_v_are_stored_in_mv(ptbxl_dir, ecg_files, tmp_path):
    folder = tmp_path / "units"
    ecg_files.write_record(folder, "a_mv", ecg_files.digital(ptbxl_dir, 1))
    ecg_files.write_record(folder, "b_uv", ecg_files.digital(ptbxl_dir, 2), gain=1.0, units="uV")      # 1 adu = 1 uV
    ecg_files.write_record(folder, "c_micro", ecg_files.digital(ptbxl_dir, 3), gain=1.0, units="μV")
    ecg_files.write_record(folder, "d_volt", ecg_files.digital(ptbxl_dir, 4), gain=1e6, units="V")     # 1 adu = 1 uV
    ecg_files.write_record(folder, "e_mixed", ecg_files.digital(ptbxl_dir, 5), gain=1000.0,
                           units=["MV"] * 6 + ["mv"] * 6)
    store = open_store(ingest(folder, tmp_path / "store", workers=1, dtype="float32").path)
    assert store.metadata["record_id"].tolist() == ["a_mv", "b_uv", "c_micro", "d_volt", "e_mixed"]
    for row, ecg_id in enumerate([1, 2, 3, 4, 5]):
        np.testing.assert_allclose(store.signals[row], ptbxl_mv(ptbxl_dir, ecg_id), atol=1e-6)
    assert store.manifest["units"] == "mV" and store.manifest["flagged"]["implausible_amplitude"]["count"] == 0


def test_slow_path_units_through_wfdb(ptbxl_dir, tmp_path):
    """A format-212 record in uV goes through wfdb.rdrecord and is converted too."""
    signal = ptbxl_mv(ptbxl_dir, 6).T * 1000  # uV
    wfdb.wrsamp("rec212", fs=100, units=["uV"] * 12, sig_name=[f"Lead {n}" for n in STANDARD_LEADS],
                p_signal=signal, fmt=["212"] * 12, adc_gain=[0.4] * 12, baseline=[0] * 12, write_dir=str(tmp_path))
    store = open_store(ingest(tmp_path / "rec212.hea", tmp_path / "store", workers=1).path)
    np.testing.assert_allclose(store.signals[0], ptbxl_mv(ptbxl_dir, 6), atol=3e-3)  # 2.5 uV quantisation


def test_unknown_unit_is_a_bad_record_naming_unit_and_lead(ptbxl_dir, ecg_files, tmp_path):
    folder = tmp_path / "units"
    ecg_files.write_record(folder, "good", ecg_files.digital(ptbxl_dir, 1))
    ecg_files.write_record(folder, "pressure", ecg_files.digital(ptbxl_dir, 2), units=["mV"] * 6 + ["mmHg"] + ["mV"] * 5)
    result = ingest(folder, tmp_path / "store", workers=1)
    assert result.written == 1 and [(s.record_id, s.category) for s in result.skipped] == [("pressure", "unknown unit")]
    assert result.skipped[0].detail.startswith("unit 'mmHg' on lead V1")
    outcome = CliRunner().invoke(cli, ["ingest", str(folder), str(tmp_path / "strict"), "--strict", "--quiet"])
    assert outcome.exit_code == 2 and "record pressure" in outcome.output and "unit 'mmHg' on lead V1" in outcome.output
    assert len(outcome.output.strip().splitlines()) == 1 and not (tmp_path / "strict").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing half-written


def test_a_record_scaled_1e6_is_flagged_and_max_amplitude_skips_it(ptbxl_dir, ecg_files, tmp_path):
    folder = tmp_path / "scaled"
    for ecg_id in (1, 2, 3):
        ecg_files.write_record(folder, f"r{ecg_id}", ecg_files.digital(ptbxl_dir, ecg_id))
    ecg_files.write_record(folder, "r9_huge", ecg_files.digital(ptbxl_dir, 9), gain=1000.0 / 1e6)  # values x1e6
    result = ingest(folder, tmp_path / "flagged", workers=1, dtype="float32")  # float16 skips it
    flagged = result.manifest["flagged"]["implausible_amplitude"]
    assert result.written == 4 and flagged["count"] == 1 and flagged["records"][0]["record_id"] == "r9_huge"
    assert flagged["records"][0]["amplitude_mv"] > 1e5
    store = open_store(result.path)
    assert store.metadata.set_index("record_id")["amplitude_mv"]["r1"] < 20
    skipped = ingest(folder, tmp_path / "skipped", workers=1, max_amplitude=20)
    assert skipped.written == 3 and skipped.skip_counts == {"implausible amplitude": 1}
    assert "above --max-amplitude 20 mV" in skipped.skipped[0].detail
    outcome = CliRunner().invoke(cli, ["ingest", str(folder), str(tmp_path / "cli"), "--dtype", "float32"])
    assert outcome.exit_code == 0 and "flagged amplitude" in outcome.output and "r9_huge" in outcome.output


@pytest.mark.parametrize("raw, canonical", [("DI", "I"), ("D2", "II"), ("DIII", "III"), ("Lead I", "I"),
                                            ("ECG I", "I"), ("ecg_lead_avr", "aVR"), ("Lead aVR", "aVR"),
                                            ("AVL", "aVL"), ("avf", "aVF"), ("C1", "V1"), ("c6", "V6"),
                                            ("MLII", "II"), ("V3", "V3"), ("Resp", "Resp")])
def test_alias_table(raw, canonical):
    assert normalise_lead_name(raw) == canonical


def test_lead_map_parsing_and_errors():
    assert parse_lead_map("x1=i, Chan 2 = avr") == {"X1": "I", "CHAN 2": "aVR"}
    assert normalise_lead_name("chan 2", parse_lead_map("Chan 2=aVR")) == "aVR"
    with pytest.raises(EcgclError, match="NAME=LEAD pairs"):
        parse_lead_map("DI")


def test_dataset_lead_names_are_stored_under_canonical_names(ptbxl_dir, ecg_files, tmp_path):
    folder = tmp_path / "names"
    einthoven = ["DI", "DII", "DIII", "aVR", "aVL", "aVF"] + [f"C{i}" for i in range(1, 7)]
    prefixed = [f"ECG {n}" for n in ["I", "II", "III", "AVR", "AVL", "AVF"]] + [f"Lead V{i}" for i in range(1, 7)]
    shuffled = list(reversed(einthoven))
    ecg_files.write_record(folder, "a", ecg_files.digital(ptbxl_dir, 1), names=einthoven)
    ecg_files.write_record(folder, "b", ecg_files.digital(ptbxl_dir, 2), names=prefixed)
    ecg_files.write_record(folder, "c", ecg_files.digital(ptbxl_dir, 3)[:, ::-1], names=shuffled)
    store = open_store(ingest(folder, tmp_path / "store", workers=1, dtype="float32").path)
    assert store.leads == list(STANDARD_LEADS) and len(store) == 3
    for row, ecg_id in enumerate([1, 2, 3]):
        np.testing.assert_allclose(store.signals[row], ptbxl_mv(ptbxl_dir, ecg_id), atol=1e-6)
    # --leads spelled the dataset's way still stores canonical names, so checkpoints match across datasets
    subset = open_store(ingest(folder, tmp_path / "subset", leads="DI,DII,C1", workers=1).path)
    assert subset.leads == ["I", "II", "V1"]


def test_lead_map_names_what_the_table_does_not_know(ptbxl_dir, ecg_files, tmp_path):
    folder = tmp_path / "odd"
    odd = [f"ch{i}" for i in range(12)]
    ecg_files.write_record(folder, "a", ecg_files.digital(ptbxl_dir, 1), names=odd)
    with pytest.raises(EcgclError, match="missing leads"):
        ingest(folder, tmp_path / "plain", workers=1, strict=True)
    mapping = ",".join(f"CH{i}={lead}" for i, lead in enumerate(STANDARD_LEADS))
    result = ingest(folder, tmp_path / "mapped", workers=1, lead_map=mapping, dtype="float32")
    store = open_store(result.path)
    np.testing.assert_allclose(store.signals[0], ptbxl_mv(ptbxl_dir, 1), atol=1e-6)
    assert result.manifest["options"]["lead_map"]["CH6"] == "V1"


def test_mixed_rates_use_the_most_common_not_the_first(ptbxl_dir, ecg_files, tmp_path):
    folder = tmp_path / "mixed"
    odd = np.concatenate([ecg_files.digital(ptbxl_dir, i, hr=True) for i in (1, 2, 3, 4, 5, 6)])  # 500 Hz, 60 s
    ecg_files.write_record(folder, "00_odd", odd, fs=500)
    for ecg_id in (1, 2, 3, 4, 5):
        ecg_files.write_record(folder, f"r{ecg_id}", ecg_files.digital(ptbxl_dir, ecg_id))
    result = ingest(folder, tmp_path / "store", workers=1)
    store = open_store(result.path)
    assert (store.fs, store.signals.shape) == (100.0, (6, 12, 1000)) and result.skipped == []
    assert result.manifest["chosen"]["fs"] == {"value": 100.0, "rule": "most common sampling rate", "probed": 6,
                                               "differ": 1}
    assert result.manifest["chosen"]["length"]["value"] == 10.0 and result.manifest["chosen"]["length"]["differ"] == 1
    assert result.manifest["differ"] == {"resampled": 1, "longer": 1, "shorter": 0, "records": 6}
    odd_row = store.metadata.set_index("record_id").loc["00_odd"]
    assert odd_row["original_fs"] == 500 and odd_row["original_length"] == 60
    # the 500 Hz record resampled to 100 Hz is PTB-XL's own 100 Hz version of it, up to filter differences
    assert np.corrcoef(store.signals[0, 1], ptbxl_mv(ptbxl_dir, 1)[1])[0, 1] > 0.95
    outcome = CliRunner().invoke(cli, ["ingest", str(folder), str(tmp_path / "cli"), "--quiet"])
    assert "100 Hz, the most common of 6 records probed; 1 record(s) resampled" in outcome.output


def test_short_first_record_does_not_crop_the_store(ptbxl_dir, ecg_files, tmp_path):
    folder = tmp_path / "lengths"
    ecg_files.write_record(folder, "00_six", ecg_files.digital(ptbxl_dir, 1)[:600])        # 6 s, sorts first
    for ecg_id in (2, 3, 4):
        ecg_files.write_record(folder, f"r{ecg_id}", ecg_files.digital(ptbxl_dir, ecg_id))  # 10 s
    ecg_files.write_record(folder, "sixty", np.concatenate([ecg_files.digital(ptbxl_dir, i) for i in range(1, 7)]))
    result = ingest(folder, tmp_path / "store", workers=1)
    assert result.manifest["length"] == 10 and result.skip_counts == {"too short": 1}
    assert result.manifest["differ"]["longer"] == 1
    padded = open_store(ingest(folder, tmp_path / "padded", workers=1, pad=True).path)
    six = padded.metadata["record_id"].tolist().index("00_six")
    assert padded.metadata["valid_samples"][six] == 600 and np.all(padded.signals[six][:, 600:] == 0)
    assert padded.manifest["counts"]["padded_rows"] == 1
    cropped = open_store(ingest(folder, tmp_path / "cropped", length=6, workers=1, dtype="float32").path)
    np.testing.assert_allclose(cropped.signals[-1], ptbxl_mv(ptbxl_dir, 1)[:, :600], atol=1e-6)
    manifest = json.loads((cropped.path / "manifest.json").read_text())
    assert "length" not in manifest["chosen"] and manifest["chosen"]["fs"]["value"] == 100


def test_bad_lead_map_and_amplitude_options_are_one_line(ptbxl_dir, ecg_files, tmp_path):
    ecg_files.write_record(tmp_path / "src", "a", ecg_files.digital(ptbxl_dir, 1))
    for options, message in ((["--lead-map", "DI"], "Error: --lead-map 'DI': expected NAME=LEAD pairs"),
                             (["--max-amplitude", "-1"], "Error: --max-amplitude must be positive, got -1 mV")):
        outcome = CliRunner().invoke(cli, ["ingest", str(tmp_path / "src"), str(tmp_path / "out"), *options])
        assert outcome.exit_code == 2 and outcome.output.startswith(message), outcome.output
        assert len(outcome.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
