"""Readers are a plugin kind: listed, chosen from the content or by --format, and missing extras named."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.ingest import ingest
from ecgcl.errors import EcgclError

BUILT_IN = {"wfdb", "ptbxl", "mimic_iv_ecg", "code15", "numpy", "parquet", "dicom", "muse_xml", "hl7_aecg",
            "philips_xml", "scp_ecg", "edf"}


def test_list_plugins_lists_every_built_in_reader():
    outcome = CliRunner().invoke(cli, ["list-plugins", "--kind", "reader", "--json"])
    assert outcome.exit_code == 0, outcome.output
    components = json.loads(outcome.output)["components"]
    assert BUILT_IN <= {c["name"] for c in components}
    assert {c["kind"] for c in components} == {"reader"}
    assert "cinc" in next(c for c in components if c["name"] == "wfdb")["aliases"]


def test_unknown_format_is_one_line_with_a_suggestion(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.dcm").write_bytes(b"\0" * 200)
    outcome = CliRunner().invoke(cli, ["ingest", str(tmp_path / "in"), str(tmp_path / "out"), "--format", "dicon"])
    assert outcome.exit_code == 2 and "did you mean 'dicom'" in outcome.output
    assert len(outcome.output.strip().splitlines()) == 1


def test_a_clinical_file_without_the_extra_names_what_to_install(tmp_path, monkeypatch):
    pydicom_data = pytest.importorskip("pydicom.data")
    (tmp_path / "in").mkdir()
    shutil.copy(pydicom_data.get_testdata_file("waveform_ecg.dcm"), tmp_path / "in" / "ecg.dcm")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("ecgdatakit", "pydicom") else real(name, *a))
    with pytest.raises(EcgclError, match=r"ecg\.dcm is dicom .*pip install 'ecgcl\[formats\]'"):
        ingest(tmp_path / "in", tmp_path / "out", fs=500)
    assert not (tmp_path / "out").exists()


def test_a_folder_of_unknown_files_is_one_line(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.pdf").write_bytes(b"%PDF-1.4 not an ECG")
    (tmp_path / "in" / "readme.txt").write_text("hello\n")
    outcome = CliRunner().invoke(cli, ["ingest", str(tmp_path / "in"), str(tmp_path / "out")])
    assert outcome.exit_code == 2 and "no file any reader recognises (2 other file(s)" in outcome.output
    assert "Traceback" not in outcome.output
