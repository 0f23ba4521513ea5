"""Store precision: `ingest --dtype float32|float16`; readers hand out float32 whichever it is, relabel keeps it,
a float16 store trains and evaluates, values beyond float16's range are refused, never written as inf, and a
bad --dtype is one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.ingest import ingest
from ecgcl.data.store import FLOAT16_MAX_MV, MANIFEST_FILE, SIGNALS_FILE, StoreWriter, open_store, write_store
from ecgcl.errors import EcgclError

ROUNDING = 2.0 ** -11  # float16 keeps 11 significant bits: round to nearest is within |x| 2^-11
SMALLEST = 2.0 ** -25  # half float16's smallest subnormal step (2^-24)


@pytest.fixture(scope="module")
def stores(ptbxl_dir, tmp_path_factory):
    """The first 40 real PTB-XL 100 Hz records ingested as float32 and as float16."""
    folder = tmp_path_factory.mktemp("dtype")
    return {dtype: ingest(ptbxl_dir, folder / dtype, fs=100, length=10, limit=40, workers=1, dtype=dtype).path
            for dtype in ("float32", "float16")}


def test_float16_store_is_the_float32_store_rounded(stores):
    wide, half = open_store(stores["float32"]), open_store(stores["float16"])
    assert (wide.dtype, half.dtype) == ("float32", "float16")
    assert half.signals.dtype == np.float16 and wide.signals.dtype == np.float32
    assert half.metadata.equals(wide.metadata) and half.signals.shape == wide.signals.shape
    rows = np.arange(len(wide))
    x, y = wide.read(rows), half.read(rows)
    assert y.dtype == np.float32 and x.dtype == np.float32
    assert np.all(np.abs(y.astype(np.float64) - x) <= np.maximum(np.abs(x) * ROUNDING, SMALLEST))
    np.testing.assert_array_equal(y, x.astype(np.float16).astype(np.float32))  # rounded once, to nearest
    assert 0 < np.abs(y - x).max() < 0.01  # mV: rounding happened, and it is far below what a cart records
    # half the signal bytes, a different content hash, and each manifest says its dtype
    header = (stores["float16"] / SIGNALS_FILE).stat().st_size - 2 * x.size
    assert (stores["float32"] / SIGNALS_FILE).stat().st_size == header + 4 * x.size
    assert half.hash != wide.hash
    for store, dtype in ((wide, "float32"), (half, "float16")):
        assert store.manifest["dtype"] == dtype and store.manifest["options"]["dtype"] == dtype
        assert json.loads((store.path / MANIFEST_FILE).read_text())["dtype"] == dtype


def test_read_gives_float32_rows_in_the_order_asked(stores):
    for path in stores.values():
        store = open_store(path)
        rows = np.array([7, 2, 7, 0, 39, 2])
        batch = store.read(rows)
        assert batch.dtype == np.float32 and batch.flags.c_contiguous and batch.shape == (6, 12, 1000)
        np.testing.assert_array_equal(batch, np.asarray(store.signals[rows], dtype=np.float32))
        assert store.read(np.array([], dtype=np.int64)).shape == (0, 12, 1000)
        assert store.read(np.array([3])).dtype == np.float32


def test_relabel_keeps_float16(stores, tmp_path):
    path = tmp_path / "store"
    shutil.copytree(stores["float16"], path)
    before = open_store(path)
    signals = np.asarray(before.signals).copy()
    result = CliRunner().invoke(cli, ["relabel", str(path), "--patient-from-name", r"^(\d)"])
    assert result.exit_code == 0, result.output
    assert "float16 signals kept" in result.output
    after = open_store(path)
    assert after.dtype == "float16" and after.manifest["dtype"] == "float16" and after.hash != before.hash
    np.testing.assert_array_equal(np.asarray(after.signals), signals)
    assert after.read(np.arange(3)).dtype == np.float32


def test_a_store_without_dtype_in_its_manifest_opens_as_before(tiny_store, tmp_path):
    """Stores written before the option: float32, no `dtype` in the manifest; relabel records it."""
    path = tmp_path / "old"
    shutil.copytree(tiny_store, path)
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    manifest.pop("dtype", None)
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))
    store = open_store(path)
    assert store.dtype == "float32" and "dtype" not in store.manifest
    assert store.read(np.arange(2)).dtype == np.float32
    assert CliRunner().invoke(cli, ["relabel", str(path), "--patient-from-name", r"^(\d)"]).exit_code == 0
    assert open_store(path).manifest["dtype"] == "float32"


def test_a_manifest_that_contradicts_the_signals_or_other_values_are_damage(tiny_store, tmp_path):
    path = tmp_path / "store"
    shutil.copytree(tiny_store, path)
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    (path / MANIFEST_FILE).write_text(json.dumps({**manifest, "dtype": "float16"}))
    with pytest.raises(EcgclError, match="`dtype` says 'float16' but the signals are float32"):
        open_store(path)
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))
    np.save(path / SIGNALS_FILE, np.zeros((len(open_store(path)), 12, 1000), dtype=np.int16))
    with pytest.raises(EcgclError, match="holds int16 values, not float32 or float16"):
        open_store(path)


def test_bad_dtype_is_one_line_and_exit_2(ptbxl_dir, tmp_path):
    outcome = CliRunner().invoke(cli, ["ingest", str(ptbxl_dir), str(tmp_path / "out"), "--dtype", "int8",
                                       "--limit", "2", "--workers", "1"])
    assert outcome.exit_code == 2, outcome.output
    assert outcome.output.strip() == "Error: --dtype 'int8': a store holds float32 or float16 values"
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(EcgclError, match="--dtype 'float64'"):
        ingest(ptbxl_dir, tmp_path / "out", dtype="float64")
    with pytest.raises(EcgclError, match="--dtype 'int16'"):
        write_store(tmp_path / "out", np.zeros((1, 12, 10), np.float32),
                    pd.DataFrame({"record_id": ["a"], "patient_id": ["p"], "labels": [""]}), {"fs": 100.0},
                    dtype="int16")
    assert list(tmp_path.iterdir()) == []
    help_text = CliRunner().invoke(cli, ["ingest", "--help"]).output
    assert "--dtype float32|float16" in help_text


def test_values_beyond_float16_are_refused_never_written_as_inf(tmp_path):
    metadata = pd.DataFrame({"record_id": ["a", "b"], "patient_id": ["p", "q"], "labels": ["", ""]})
    signals = np.zeros((2, 12, 100), np.float32)
    signals[1, 3, 50] = FLOAT16_MAX_MV  # the largest float16: kept
    signals[1, 4, 60] = -65519.0        # rounds to -65504, still finite
    store = open_store(write_store(tmp_path / "edge", signals, metadata, {"fs": 100.0}, dtype="float16"))
    assert np.isfinite(store.signals).all() and store.read(np.array([1]))[0, 4, 60] == -FLOAT16_MAX_MV
    signals[1, 5, 70] = 65520.0  # would round to inf
    with pytest.raises(EcgclError, match="row 1 has values up to 6.552e\\+04 mV, beyond float16's range"):
        write_store(tmp_path / "over", signals, metadata, {"fs": 100.0}, dtype="float16")
    assert not (tmp_path / "over").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".over")]
    # float32 keeps them
    assert open_store(write_store(tmp_path / "wide", signals, metadata, {"fs": 100.0})).signals[1, 5, 70] == 65520.0
    with StoreWriter(tmp_path / "w", 12, 100, dtype="float16") as writer:
        with pytest.raises(ValueError, match="manifest dtype 'float32'"):
            writer.append(np.zeros((1, 12, 100), np.float32))
            writer.finish(metadata.iloc[:1], {"fs": 100.0, "dtype": "float32"})


def test_ingest_skips_a_record_beyond_float16_with_its_reason(ptbxl_dir, tmp_path):
    from ecgcl.plugins.readers.wfdb_files import read_wfdb

    signals = np.stack([read_wfdb(ptbxl_dir / "records100" / "00000" / f"{i:05d}_lr").signal for i in range(1, 5)])
    signals[2] *= 1e5  # a unit error: about 100 V
    np.save(tmp_path / "ecg.npy", signals)
    pd.DataFrame({"record_id": [f"r{i}" for i in range(4)], "fs": 100}).to_csv(tmp_path / "ecg.csv", index=False)
    outcome = CliRunner().invoke(cli, ["ingest", str(tmp_path / "ecg.npy"), str(tmp_path / "half"), "--dtype",
                                       "float16", "--workers", "1", "--quiet"])
    assert outcome.exit_code == 0 and "Traceback" not in outcome.output, outcome.output
    skipped = open_store(tmp_path / "half").manifest["skipped"]
    assert [(s["record_id"], s["reason"]) for s in skipped] == [("r2", "implausible amplitude")]
    assert "do not fit a float16 store" in skipped[0]["detail"] and "--dtype float32" in skipped[0]["detail"]
    assert open_store(tmp_path / "half").metadata["record_id"].tolist() == ["r0", "r1", "r3"]
    strict = CliRunner().invoke(cli, ["ingest", str(tmp_path / "ecg.npy"), str(tmp_path / "strict"), "--dtype",
                                      "float16", "--workers", "1", "--quiet", "--strict"])
    assert strict.exit_code == 2 and len(strict.output.strip().splitlines()) == 1, strict.output
    assert "record r2" in strict.output and "float16 store" in strict.output
    assert not [p for p in tmp_path.iterdir() if "strict" in p.name]
    wide = open_store(ingest(tmp_path / "ecg.npy", tmp_path / "wide", workers=1, dtype="float32").path)
    assert wide.manifest["flagged"]["implausible_amplitude"]["count"] == 1  # kept, and flagged
    # --max-amplitude skips it, and the rest are stored as float16
    half = ingest(tmp_path / "ecg.npy", tmp_path / "capped", workers=1, dtype="float16", max_amplitude=20)
    assert half.written == 3 and half.skip_counts == {"implausible amplitude": 1}
    assert np.isfinite(open_store(half.path).signals).all()


def test_a_float16_store_trains_and_evaluates_on_cpu(ptbxl_dir, tmp_path):
    store = tmp_path / "half"
    made = CliRunner().invoke(cli, ["ingest", str(ptbxl_dir), str(store), "--fs", "100", "--length", "10",
                                    "--limit", "80", "--workers", "1", "--dtype", "float16", "--quiet"])
    assert made.exit_code == 0, made.output
    assert "float16" in made.output
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, [
        "run", "--data", str(store), "--out", str(out), "--repeats", "1", "--pretrain-epochs", "1",
        "--finetune-epochs", "2", "--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8",
        "--projection-dim", "8", "--batch-size", "16", "--val-fraction", "0.25", "--test-fraction", "0.25",
        "--methods", "pretrained_linear,supervised", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "metrics.json").read_text())
    assert {r["method"] for r in rows} == {"pretrained_linear", "supervised"}
    assert all(0 <= r["auroc"] <= 1 for r in rows)
