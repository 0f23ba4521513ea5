"""Skipped and unrecognised clinical files when ids are hashed: the store and its manifest name them by token only,
while whoever ran the ingest gets their real relative paths on the terminal and in `OUT.files.csv` (owner-only,
beside the salt); `--keep-patient-ids` stores the names as they are and leaves no map."""

from __future__ import annotations

import io
import json
import stat
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console

pytest.importorskip("pydicom")
pytest.importorskip("ecgdatakit")

from ecgcl.cli.ingest import SHOWN_FILES, print_hidden_files  # noqa: E402
from ecgcl.cli.main import cli  # noqa: E402
from ecgcl.data.ingest import ingest  # noqa: E402
from ecgcl.data.privacy import FILES_COLUMNS, HiddenFile, files_path, salt_path  # noqa: E402
from ecgcl.errors import EcgclError  # noqa: E402

SHORT = "ward 7/MRN77700001_short.dcm"  # 5 s of the real ECG: skipped as too short for --length 10
SCAN = "MRN77700002_scan.pdf"  # no reader recognises it


def short_dicom(clinical, path):
    """The real DICOM ECG cut to its first 5 s."""
    dataset = clinical.real_dicom()
    group = dataset.WaveformSequence[0]
    group.NumberOfWaveformSamples = 5000
    group.WaveformData = np.ascontiguousarray(clinical.real_codes().T[:5000], dtype="<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path)


@pytest.fixture
def export(tmp_path, clinical):
    folder = tmp_path / "export"
    clinical.dicom_archive(folder, 4)  # MRN00000_0.dcm ... MRN00001_1.dcm
    short_dicom(clinical, folder / SHORT)
    (folder / SCAN).write_bytes(b"%PDF-1.4 a scanned referral letter\n" * 20)
    return folder


def test_real_paths_on_the_terminal_and_in_the_files_map_never_in_the_store(export, tmp_path):
    out = tmp_path / "stores" / "hospital"
    run = CliRunner().invoke(cli, ["ingest", str(export), str(out), "--fs", "500", "--length", "10", "--workers",
                                   "1", "--quiet"])
    assert run.exit_code == 0, run.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["written"] == 4 and manifest["counts"]["skipped"] == 1
    # the store names every clinical file by token: no real name in any file under OUT
    names = [path.relative_to(export).as_posix() for path in export.rglob("*") if path.is_file()]
    assert len(names) == 6
    stored = [path for path in out.rglob("*") if path.is_file()]
    assert {path.name for path in stored} >= {"signals.npy", "metadata.csv", "manifest.json"}
    for path in stored:
        data = path.read_bytes()
        for name in names:
            for part in (name, name.rsplit("/", 1)[-1].split(".")[0], "ward 7"):
                assert part.encode() not in data, (path.name, part)
    skip_token = manifest["skipped"][0]["record_id"]
    scan_token = manifest["unrecognised_files"]["files"][0]
    assert skip_token.startswith("r") and scan_token.startswith("f") and scan_token.endswith(".pdf")
    # the terminal names the real relative paths
    assert SHORT in run.output and SCAN in run.output, run.output
    assert f"{SHORT}  ({skip_token})  too short" in run.output
    assert str(files_path(out)) in run.output
    # OUT.files.csv beside OUT.salt maps the tokens back, owner-only
    mapping = files_path(out)
    assert mapping == out.parent / "hospital.files.csv" and mapping.parent == salt_path(out).parent
    assert stat.S_IMODE(mapping.stat().st_mode) == 0o600
    table = pd.read_csv(mapping, dtype=str)
    assert tuple(table.columns) == FILES_COLUMNS
    assert dict(zip(table["token"], table["relative_path"])) == {skip_token: SHORT, scan_token: SCAN}
    reasons = dict(zip(table["token"], table["reason"]))
    assert reasons[skip_token].startswith("too short: 5 s long") and reasons[scan_token].startswith("unrecognised")

    # --keep-patient-ids: names stored as they are, so no map; the stale one of the hashed store is removed
    kept = CliRunner().invoke(cli, ["ingest", str(export), str(out), "--fs", "500", "--length", "10", "--workers",
                                    "1", "--quiet", "--keep-patient-ids", "--overwrite"])
    assert kept.exit_code == 0, kept.output
    assert not mapping.exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["skipped"][0]["source_path"] == SHORT and manifest["unrecognised_files"]["files"] == [SCAN]
    assert SHORT.removesuffix(".dcm") in kept.output and SCAN in kept.output


def test_the_python_api_holds_the_real_paths_in_memory(export, tmp_path, clinical):
    result = ingest(export, tmp_path / "store", fs=500, length=10, workers=1)
    assert [(f.relative_path, f.reason.split(":")[0]) for f in result.hidden_files] == [(SHORT, "too short"),
                                                                                     (SCAN, "unrecognised")]
    assert [f.token for f in result.hidden_files] == [result.skipped[0].record_id,
                                                      *result.manifest["unrecognised_files"]["files"]]
    assert result.files_map == files_path(tmp_path / "store") and result.files_map.is_file()
    # nothing hidden: no map, and the one an earlier store at the same OUT left is removed
    clean = tmp_path / "clean"
    clinical.dicom_archive(clean, 2)
    again = ingest(clean, tmp_path / "store", fs=500, length=10, workers=1, overwrite=True)
    assert again.hidden_files == [] and again.files_map is None and not files_path(tmp_path / "store").exists()
    # every record skipped: the error names one by its real path
    only = tmp_path / "only"
    short_dicom(clinical, only / SHORT)
    with pytest.raises(EcgclError, match=f"was skipped: too short x1 \\(e.g. {SHORT}: 5 s long"):
        ingest(only, tmp_path / "none", fs=500, length=10, workers=1)


def test_the_terminal_lists_the_first_files_and_points_to_the_map():
    files = [HiddenFile(f"r{index:020d}", f"sub/MRN{index:08d}.dcm", "too short: 5 s long") for index in range(25)]
    buffer = io.StringIO()
    print_hidden_files(Console(file=buffer, width=60), SimpleNamespace(hidden_files=files, files_map="s.files.csv"))
    text = buffer.getvalue()
    assert all(f"sub/MRN{index:08d}.dcm" in text for index in range(SHOWN_FILES))
    assert f"sub/MRN{SHOWN_FILES:08d}.dcm" not in text
    assert f"... and {25 - SHOWN_FILES} more in s.files.csv" in text
    buffer = io.StringIO()
    print_hidden_files(Console(file=buffer), SimpleNamespace(hidden_files=[], files_map=None))
    assert buffer.getvalue() == ""
