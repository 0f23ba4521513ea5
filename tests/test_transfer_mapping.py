"""A pretrained encoder meets a store of another rate or length: `finetune --checkpoint` and `run --pretrained`
resample it to the encoder's rate and pad records shorter than its window (`ecgcl.data.adapt`), never refuse it.

The encoder is pretrained on the tiny 100 Hz PTB-XL store; the 500 Hz store holds the same records resampled
with scipy, and the short store the first 600 samples of each record.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from scipy.signal import resample_poly

from ecgcl.cli.main import cli
from ecgcl.data import adapt
from ecgcl.data.adapt import adapt_to_encoder
from ecgcl.data.store import open_store, write_store
from ecgcl.engine.lead_mapping import lead_plan_for
from ecgcl.errors import EcgclError

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25", "--device", "cpu",
        "--aug", "permute+noise"]  # whole-record views: the encoder's window is the record
SPLIT = ["--val-fraction", "0.25", "--test-fraction", "0.25", "--batch-size", "32", "--device", "cpu"]


def variant(tiny_store, folder, signals, **manifest):
    store = open_store(tiny_store)
    metadata = store.metadata.assign(fs=manifest.get("fs", store.fs))
    return write_store(folder, np.ascontiguousarray(signals, dtype=np.float32), metadata,
                       {**store.manifest, **manifest, "length": signals.shape[2]})


@pytest.fixture(scope="module")
def store500(tiny_store, tmp_path_factory):
    signals = resample_poly(np.asarray(open_store(tiny_store).signals), 5, 1, axis=-1)
    return variant(tiny_store, tmp_path_factory.mktemp("mapping") / "s500", signals, fs=500.0)


@pytest.fixture(scope="module")
def pretrained(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("mapping") / "pre"
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(tiny_store), "--out", str(out), *TINY,
                                      "--pretrain-epochs", "1"])
    assert result.exit_code == 0, result.output
    return out / "pretrain.pt"


def meta_of(checkpoint):
    return torch.load(checkpoint, map_location="cpu", weights_only=True)["meta"]


def test_the_adapted_store_is_resample_poly_of_the_original(store500, pretrained, monkeypatch):
    meta = meta_of(pretrained)
    assert meta["fs"] == 100.0 and meta["window"] == meta["length"] == 1000
    original = open_store(store500)
    monkeypatch.setattr(adapt, "CHUNK_BYTES", 5 * 12 * 5000 * 4)  # chunks of 5 records: the last one is shorter
    adapted, note = adapt_to_encoder(original, meta, source="checkpoint X")
    expected = resample_poly(np.asarray(original.signals, dtype=np.float32), 1, 5, axis=-1)
    assert adapted.signals.shape == (len(original), 12, 1000) and adapted.signals.dtype == np.float32
    np.testing.assert_allclose(adapted.signals, expected, rtol=1e-5, atol=1e-5)
    assert adapted.fs == 100.0 and adapted.manifest["length"] == 1000 and set(adapted.metadata["fs"]) == {100.0}
    assert (adapted.path, adapted.hash, adapted.leads) == (original.path, original.hash, original.leads)
    assert adapted.metadata["record_id"].tolist() == original.metadata["record_id"].tolist()
    np.testing.assert_array_equal(adapted.read(np.array([3, 1])), expected[[3, 1]])
    assert note == (f"store {original.path} is 500 Hz x 5000 samples; resampled to 100 Hz (1000 samples) for "
                    "checkpoint X (100 Hz, 1000-sample windows)")
    assert lead_plan_for(meta, adapted, None, source="checkpoint X").identity
    with pytest.raises(EcgclError, match="at 500 Hz .*resample and pad a store themselves"):
        lead_plan_for(meta, original, None, source="checkpoint X")  # evaluate and embed take stores as they are


def test_length_short_records_are_padded_and_long_ones_taken_as_they_are(tiny_store, tmp_path, pretrained):
    meta = meta_of(pretrained)
    signals = np.asarray(open_store(tiny_store).signals)
    short = open_store(variant(tiny_store, tmp_path / "short", signals[:, :, :600]))
    adapted, note = adapt_to_encoder(short, meta, source="checkpoint X")
    assert adapted.signals.shape[2] == 1000 and adapted.manifest["length"] == 1000 and adapted.fs == 100.0
    np.testing.assert_array_equal(adapted.signals[:, :, :600], signals[:, :, :600])
    assert not adapted.signals[:, :, 600:].any()
    assert note.endswith("100 Hz x 600 samples; zero-padded at the end to 1000 samples for checkpoint X "
                         "(100 Hz, 1000-sample windows)")
    long = open_store(variant(tiny_store, tmp_path / "long", np.concatenate([signals, signals[:, :, :300]], 2)))
    same, nothing = adapt_to_encoder(long, meta, source="checkpoint X")
    assert same is long and nothing is None  # the classifier cuts records into windows (`embed`): not cropped
    at250 = open_store(variant(tiny_store, tmp_path / "s250", signals[:, :, :300], fs=250.0))
    both, note = adapt_to_encoder(at250, meta, source="checkpoint X")  # 300 samples at 250 Hz -> 120 at 100 Hz
    np.testing.assert_allclose(both.signals[:, :, :120], resample_poly(signals[:, :, :300], 2, 5, axis=-1),
                               rtol=1e-5, atol=1e-5)
    assert both.signals.shape[2] == 1000 and not both.signals[:, :, 120:].any()
    assert "resampled to 100 Hz (120 samples) and zero-padded at the end to 1000 samples" in note


def test_rates_and_lengths_that_cannot_be_mapped_are_one_line(tiny_store, tmp_path, pretrained):
    meta = meta_of(pretrained)
    signals = np.asarray(open_store(tiny_store).signals)
    tiny = open_store(variant(tiny_store, tmp_path / "three", signals[:, :, :3], fs=500.0))
    with pytest.raises(EcgclError, match=r"store .*three has 3 samples at 500 Hz: 1 sample\(s\) at the 100 Hz of "
                                         "checkpoint X; at least 2"):
        adapt_to_encoder(tiny, meta, source="checkpoint X")
    with pytest.raises(EcgclError, match="cannot be resampled for checkpoint X .*must be positive"):
        adapt_to_encoder(tiny, {**meta, "fs": 0.0}, source="checkpoint X")


def test_finetune_on_a_store_of_another_rate_or_length(store500, pretrained, tiny_store, tmp_path):
    result = CliRunner().invoke(cli, ["finetune", "--checkpoint", str(pretrained), "--data", str(store500), "--out",
                                      str(tmp_path / "ft"), *SPLIT, "--mode", "linear", "--finetune-epochs", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert text.count("is 500 Hz x 5000 samples; resampled to 100 Hz (1000 samples)") == 1, text
    row = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert 0 <= row["auroc"] <= 1 and row["test_records"] > 0
    tuned = torch.load(tmp_path / "ft" / "pretrained_linear.best.pt", map_location="cpu", weights_only=True)["meta"]
    assert (tuned["fs"], tuned["length"]) == (100.0, 1000)  # what the classifier was trained on
    short = variant(tiny_store, tmp_path / "short", np.asarray(open_store(tiny_store).signals)[:, :, :600])
    padded = CliRunner().invoke(cli, ["finetune", "--checkpoint", str(pretrained), "--data", str(short), "--out",
                                      str(tmp_path / "ft_short"), *SPLIT, "--mode", "linear", "--finetune-epochs", "1"])
    assert padded.exit_code == 0, padded.output
    assert "zero-padded at the end to 1000 samples" in " ".join(padded.output.split())


def test_run_with_a_pretrained_encoder_on_a_store_of_another_rate(store500, pretrained, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--data", str(store500), "--pretrained", str(pretrained), "--out",
                                      str(out), *SPLIT, "--methods", "pretrained_linear", "--repeats", "1",
                                      "--finetune-epochs", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert text.count("is 500 Hz x 5000 samples; resampled to 100 Hz (1000 samples)") == 1, text
    rows = pd.read_csv(out / "metrics.csv")
    assert len(rows) == 1 and rows["method"].tolist() == ["pretrained_linear"] and rows["auroc"].between(0, 1).all()
