"""`ecgcl embed`: the file holds exactly what the checkpoint's encoder gives, for pretrain and fine-tuned
checkpoints, as .npy + ids or parquet with metadata; bad input is one line and exit code 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.store import open_store, write_store
from ecgcl.engine.checkpoint import load_checkpoint
from ecgcl.engine.evaluate import load_classifier
from ecgcl.engine.model import encoder_from_meta
from ecgcl.manager import get_registry

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("embed") / "run"
    result = invoke("run", "--data", tiny_store, "--out", out, *TINY, "--repeats", "1", "--pretrain-epochs", "1",
                    "--finetune-epochs", "1", "--methods", "pretrained_finetune", "--aug", "noise")
    assert result.exit_code == 0, result.output
    return out / "repeats" / "repeat_1"


def test_embeddings_equal_the_encoder_applied_directly(tiny_store, trained, tmp_path):
    store = open_store(tiny_store)
    signals = torch.from_numpy(np.array(store.signals, dtype=np.float32))
    # pretrain checkpoint -> .npy + ids, small batches so several are concatenated
    result = invoke("embed", trained / "pretrain.pt", "--data", tiny_store, "--out", tmp_path / "pre.npy",
                    "--batch-size", "7", "--device", "cpu")
    assert result.exit_code == 0, result.output
    saved = load_checkpoint(trained / "pretrain.pt")
    encoder = encoder_from_meta(saved["meta"], get_registry(), source="test")
    encoder.load_state_dict(saved["encoder"])
    with torch.no_grad():
        expected = encoder.eval()(signals).numpy()
    vectors = np.load(tmp_path / "pre.npy")
    assert vectors.shape == (len(store), 8) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-6)
    ids = pd.read_csv(tmp_path / "pre.ids.csv", dtype=str)
    assert ids["record_id"].tolist() == store.metadata["record_id"].astype(str).tolist()
    # fine-tuned checkpoint -> parquet of the test part, with metadata columns
    result = invoke("embed", trained / "labels_1" / "pretrained_finetune.best.pt", "--data", tiny_store,
                    "--out", tmp_path / "ft.parquet", "--split-file", trained / "split.json", "--part", "test")
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "ft.parquet")
    model = load_classifier(load_checkpoint(trained / "labels_1" / "pretrained_finetune.best.pt"), get_registry(),
                            source="test")
    rows = np.flatnonzero(store.metadata["record_id"].astype(str).isin(table["record_id"].astype(str)))
    with torch.no_grad():
        expected = model.encoder.eval()(signals[rows]).numpy()
    np.testing.assert_allclose(table[[f"emb_{i}" for i in range(8)]].to_numpy(), expected, rtol=1e-5, atol=1e-6)
    assert {"record_id", "patient_id", "labels", "strat_fold"} <= set(table.columns) and 0 < len(table) < len(store)
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_embed_bad_input_is_one_line_with_exit_2(tiny_store, trained, tmp_path):
    short = open_store(tiny_store)
    other = write_store(tmp_path / "short", np.asarray(short.signals)[:, :, :500], short.metadata, short.manifest)
    (tmp_path / "taken.npy").write_bytes(b"x")
    (tmp_path / "bad_split.json").write_text('{"test": ["not-a-record"]}')
    cases = [
        (["--data", other, "--out", tmp_path / "a.npy"], "x 1000 samples at 100 Hz, but store"),
        (["--data", tiny_store, "--out", tmp_path / "a.txt"], "must end in .npy or .parquet"),
        (["--data", tiny_store, "--out", tmp_path / "taken.npy"], "already exists"),
        (["--data", tiny_store, "--out", tmp_path / "b.npy", "--split-file", tmp_path / "bad_split.json"],
         "1 of the 1 records of --split-file"),
        (["--data", tiny_store, "--out", tmp_path / "c.npy", "--split-file", tmp_path / "bad_split.json",
          "--part", "train"], "cannot read part 'train'"),
        (["--data", tmp_path / "nowhere", "--out", tmp_path / "d.npy"], "nowhere"),
    ]
    for args, message in cases:
        result = invoke("embed", trained / "pretrain.pt", *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    optimizer_state = invoke("embed", trained / "split.json", "--data", tiny_store, "--out", tmp_path / "e.npy")
    assert optimizer_state.exit_code == 2 and "cannot be read" in optimizer_state.output
    assert not (tmp_path / "a.npy").exists() and not (tmp_path / "b.npy").exists()
