"""A hospital export end to end: the real DICOM ECG that pydicom ships, rewritten into an archive of patients
(new patient ids, per-copy amplitude and noise, two interpretations), ingested at 500 Hz with its statements as
labels and hashed patients, then `ecgcl run` over patient-level splits."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("ecgdatakit")

from ecgcl.cli.main import cli  # noqa: E402
from ecgcl.data.store import open_store  # noqa: E402


def test_dicom_archive_to_store_to_protocol(tmp_path, clinical):
    clinical.dicom_archive(tmp_path / "export", 24)
    out = tmp_path / "stores" / "hospital"
    outcome = CliRunner().invoke(cli, ["ingest", str(tmp_path / "export"), str(out), "--fs", "500",
                                       "--statements-as-labels", "--quiet"])
    assert outcome.exit_code == 0, outcome.output
    store = open_store(out)
    metadata = store.metadata
    assert len(store) == 24 and store.fs == 500 and store.signals.shape[1:] == (12, 5000)
    assert metadata["patient_id"].nunique() == 12 and not metadata["patient_id"].str.contains("MRN").any()
    assert not metadata["record_id"].str.contains("MRN").any()
    assert set(metadata["labels"]) == {"RITMO SINUSALE;ECG NORMALE", "RITMO SINUSALE;ECG ANORMALE"}
    for folder in (out, tmp_path / "stores"):
        for file in folder.iterdir():
            if file.is_file() and not file.name.endswith(".salt"):
                assert b"MRN0" not in file.read_bytes() and b"DOE^" not in file.read_bytes()
    results = tmp_path / "results"
    outcome = CliRunner().invoke(cli, ["run", "--data", str(out), "--task", "has:label=ECG ANORMALE",
                                       "--out", str(results), "--repeats", "1", "--pretrain-epochs", "1",
                                       "--finetune-epochs", "2", "--methods", "pretrained_linear,supervised",
                                       "--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8",
                                       "--batch-size", "8", "--device", "cpu"])
    assert outcome.exit_code == 0, outcome.output
    rows = json.loads((results / "metrics.json").read_text())
    assert {row["method"] for row in rows} == {"pretrained_linear", "supervised"}
    assert all(0 <= row["auroc"] <= 1 for row in rows)
