"""Record lengths carts write (10 s, 11 s, 2.4 s) follow the usual --length/--pad rules, whatever the format."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ecgdatakit")

from ecgcl.data.ingest import ingest  # noqa: E402
from ecgcl.data.store import open_store  # noqa: E402


def test_eleven_and_short_records_are_cropped_padded_or_skipped(tmp_path, clinical):
    signal = clinical.muse_leads_of(clinical.real_signal_mv(500))  # 8 leads, 10 s at 500 Hz
    eleven = np.concatenate([signal, signal[:, :500]], axis=1)
    short = signal[:, :1200]  # 2.4 s
    folder = tmp_path / "export"
    folder.mkdir()
    for name, values in (("ten", signal), ("eleven", eleven), ("short", short)):
        (folder / f"{name}.xml").write_bytes(clinical.muse_xml(values, patient_id=name))
    result = ingest(folder, tmp_path / "strict", fs=500, length=10, keep_patient_ids=True)
    assert sorted(open_store(result.path).metadata["record_id"]) == ["eleven", "ten"]
    assert [(s.record_id, s.category) for s in result.skipped] == [("short", "too short")]
    store = open_store(result.path)
    rows = {r: i for i, r in enumerate(store.metadata["record_id"])}
    np.testing.assert_array_equal(store.signals[rows["eleven"]], store.signals[rows["ten"]])  # cropped to 10 s
    padded = open_store(ingest(folder, tmp_path / "padded", fs=500, length=10, pad=True, keep_patient_ids=True).path)
    valid = dict(zip(padded.metadata["record_id"], padded.metadata["valid_samples"]))
    assert valid == {"ten": 5000, "eleven": 5000, "short": 1200}
    short_row = padded.signals[padded.metadata["record_id"].tolist().index("short")]
    assert np.abs(short_row[:, 1200:]).max() == 0 and np.abs(short_row[:, :1200]).max() > 0.1
