"""numpy (.npy + sidecar CSV, .npz with lead names) and parquet (one list column per lead) sources."""

import numpy as np
import pandas as pd
import pytest

from ecgcl.data.ingest import ingest
from ecgcl.data.leads import STANDARD_LEADS
from ecgcl.data.store import open_store
from ecgcl.errors import EcgclError


@pytest.fixture
def real_signals(ptbxl_dir):
    """Eight real 100 Hz records as (8, 12, 1000) mV, read through the ingest of the shared subset."""
    from ecgcl.plugins.readers.wfdb_files import read_wfdb

    return np.stack([read_wfdb(ptbxl_dir / "records100" / "00000" / f"{i:05d}_lr").signal for i in range(1, 9)])


def test_npy_with_sidecar_csv(real_signals, tmp_path):
    np.save(tmp_path / "ecg.npy", real_signals)
    pd.DataFrame({"record_id": [f"r{i}" for i in range(8)], "patient_id": [f"p{i // 2}" for i in range(8)],
                  "labels": ["NORM", "MI;STTC", "", "NORM", "CD", "", "HYP", "NORM"], "fs": 100,
                  "site": range(8)}).to_csv(tmp_path / "ecg.csv", index=False)
    store = open_store(ingest(tmp_path / "ecg.npy", tmp_path / "store", workers=2, dtype="float32").path)
    np.testing.assert_array_equal(store.signals[:], real_signals)
    assert store.metadata["patient_id"].tolist()[:3] == ["p0", "p0", "p1"] and store.metadata["site"].tolist() == list(range(8))
    assert store.label_sets[1] == {"MI", "STTC"} and store.label_sets[2] == frozenset()
    assert store.manifest["source_kind"] == "numpy"


def test_npz_leads_in_another_order_and_spelling_are_reordered(real_signals, tmp_path):
    order = [11, 3, 0, 5, 1, 2, 4, 6, 7, 8, 9, 10]
    names = [STANDARD_LEADS[i].lower() for i in order]
    np.savez(tmp_path / "ecg.npz", signals=real_signals[:, order], leads=np.array(names), fs=np.float32(100))
    store = open_store(ingest(tmp_path / "ecg.npz", tmp_path / "store", fs=50, workers=1, dtype="float32").path)
    assert store.leads == list(STANDARD_LEADS) and store.signals.shape == (8, 12, 500)
    from ecgcl.data.preprocess import resample

    np.testing.assert_allclose(store.signals[:], resample(real_signals, 100, 50), atol=1e-5)
    assert store.metadata["patient_id"][0] == "record:0"


def test_numpy_without_rate_is_a_clear_error(real_signals, tmp_path):
    np.save(tmp_path / "ecg.npy", real_signals)
    with pytest.raises(EcgclError, match="no sampling rate"):
        ingest(tmp_path / "ecg.npy", tmp_path / "store")


def test_parquet_list_columns(real_signals, tmp_path):
    pytest.importorskip("pyarrow")
    table = pd.DataFrame({("avr" if lead == "aVR" else lead): list(real_signals[:, i]) for i, lead in
                          enumerate(STANDARD_LEADS)})
    table = table[list(reversed(table.columns))]  # leads stored V6 .. I
    table["patient_id"] = [f"p{i}" for i in range(8)]
    table["labels"] = [["NORM"], ["MI", "CD"], [], ["NORM"], ["STTC"], [], ["HYP"], ["NORM"]]
    table["fs"] = 100.0
    table.loc[4, "V2"] = np.full(1000, np.nan)[:, None].ravel().tolist()  # a record with NaNs in V2
    table.to_parquet(tmp_path / "ecg.parquet")
    result = ingest(tmp_path / "ecg.parquet", tmp_path / "store", workers=1, dtype="float32")
    store = open_store(result.path)
    assert result.skip_counts == {"NaN values": 1} and result.skipped[0].record_id == "4"
    keep = [0, 1, 2, 3, 5, 6, 7]
    np.testing.assert_array_equal(store.signals[:], real_signals[keep])
    assert store.label_sets[1] == {"MI", "CD"} and store.metadata["record_id"].tolist() == [str(i) for i in keep]
