"""Engine pieces: atomic checkpoints, store checks, the FFT input and windowed embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecgcl.data.store import open_store
from ecgcl.engine.checkpoint import (check_encoder_matches, check_store_matches, load_checkpoint, save_checkpoint,
                                     store_meta)
from ecgcl.engine.device import derive_seed, select_device
from ecgcl.engine.inputs import represent, represented_length
from ecgcl.engine.model import embed
from ecgcl.errors import EcgclError


def test_checkpoint_round_trip_leaves_no_temporary_files(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", {"kind": "notes", "meta": {"encoder": "cnn"}, "w": torch.arange(3)})
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]
    loaded = load_checkpoint(path)
    assert loaded["meta"]["encoder"] == "cnn" and torch.equal(loaded["w"], torch.arange(3))


def test_foreign_and_missing_checkpoints_are_user_errors(tmp_path):
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(EcgclError, match="is not an ecgcl checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EcgclError, match="cannot be read"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(EcgclError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")


def test_store_and_encoder_checks(tiny_store):
    store = open_store(tiny_store)
    meta = {**store_meta(store), "encoder": "cnn"}
    check_store_matches(meta, store, source="ckpt")
    check_store_matches({**meta, "length": 500}, store, source="ckpt")  # longer records: cut into windows
    with pytest.raises(EcgclError, match=r"trained on 12 leads x 2000 samples at 100 Hz, but store .* 1000 samples"):
        check_store_matches({**meta, "length": 2000}, store, source="ckpt")
    with pytest.raises(EcgclError, match="holds encoder 'cnn', not 'cnn_lstm'"):
        check_encoder_matches(meta, "cnn_lstm", source="ckpt")


def test_fft_representation_is_the_rfft_magnitude():
    x = torch.randn(2, 3, 64)
    spectrum = represent(x, "fft")
    assert spectrum.shape == (2, 3, represented_length(64, "fft")) == (2, 3, 33)
    assert torch.allclose(spectrum, torch.from_numpy(np.abs(np.fft.rfft(x.numpy(), axis=-1))).float(), atol=1e-4)
    assert represent(x, "time") is x
    with pytest.raises(EcgclError, match="unknown input representation"):
        represent(x, "wavelet")


def test_windowed_embedding_averages_windows():
    class MeanEncoder(torch.nn.Module):  # embedding = per-lead mean of its input window
        embed_dim = 2

        def forward(self, batch):
            return batch.mean(dim=-1)

    x = torch.arange(2 * 2 * 8, dtype=torch.float32).reshape(2, 2, 8)
    assert torch.allclose(embed(MeanEncoder(), x, window=4, representation="time"), x.mean(dim=-1))
    assert torch.allclose(embed(MeanEncoder(), x, window=8, representation="time"), x.mean(dim=-1))


def test_device_and_seeds():
    assert select_device("auto").type in ("cpu", "cuda", "mps")
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(EcgclError, match="--device"):
        select_device("toaster")
    assert derive_seed(1, "pretrain", 0) == derive_seed(1, "pretrain", 0) != derive_seed(1, "pretrain", 1)
