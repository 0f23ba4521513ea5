"""Fixes found by review: unlabelled pretraining, no held-out patient leaks through pretrain -> finetune or
evaluate, config values checked up front, and a results folder never overwritten by a refused run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.store import open_store, write_store
from ecgcl.engine.checkpoint import load_checkpoint

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_pretrain_on_an_unlabelled_store(tiny_store, tmp_path):
    store = open_store(tiny_store)
    metadata = store.metadata.assign(labels="")
    unlabelled = write_store(tmp_path / "unlabelled", np.asarray(store.signals), metadata, store.manifest)
    result = invoke("pretrain", "--data", unlabelled, "--out", tmp_path / "pre", *TINY, "--pretrain-epochs", "1")
    assert result.exit_code == 0, result.output
    meta = load_checkpoint(tmp_path / "pre" / "pretrain.pt")["meta"]
    assert meta["pool_records"] == len(store) and meta["heldout_patients"] == [] and meta["task"] is None


def test_pretrain_holds_out_the_finetune_split_and_finetune_checks_it(tiny_store, tmp_path):
    pre = invoke("pretrain", "--data", tiny_store, "--out", tmp_path / "pre", *TINY, "--pretrain-epochs", "1")
    assert pre.exit_code == 0, pre.output
    meta = load_checkpoint(tmp_path / "pre" / "pretrain.pt")["meta"]
    assert 0 < meta["pool_records"] < len(open_store(tiny_store)) and meta["heldout_patients"]
    tuned = invoke("finetune", "--checkpoint", tmp_path / "pre" / "pretrain.pt", "--data", tiny_store,
                   "--out", tmp_path / "ft", "--finetune-epochs", "1", "--mode", "linear", *TINY[-4:])
    assert tuned.exit_code == 0, tuned.output
    # the held-out records are exactly this split's validation and test patients
    store = open_store(tiny_store)
    patient = dict(zip(store.metadata["record_id"].astype(str), store.metadata["patient_id"].astype(str)))
    test_ids = load_checkpoint(json.loads((tmp_path / "ft" / "metrics.json").read_text())["checkpoint"])["meta"][
        "test_record_ids"]
    assert {patient[r] for r in test_ids} <= set(meta["heldout_patients"])

    everything = invoke("pretrain", "--data", tiny_store, "--out", tmp_path / "all", *TINY, "--pretrain-epochs", "1",
                        "--all-records")
    assert everything.exit_code == 0, everything.output
    leaky = invoke("finetune", "--checkpoint", tmp_path / "all" / "pretrain.pt", "--data", tiny_store,
                   "--out", tmp_path / "ft2", "--finetune-epochs", "1", *TINY[-4:])
    assert leaky.exit_code == 2 and "validation/test patients" in leaky.output
    other_seed = invoke("finetune", "--checkpoint", tmp_path / "pre" / "pretrain.pt", "--data", tiny_store,
                        "--out", tmp_path / "ft3", "--finetune-epochs", "1", "--seed", "7", *TINY[-4:])
    assert other_seed.exit_code == 2 and "same --task, --seed" in other_seed.output


def test_evaluate_defaults_to_the_checkpoints_test_records(tiny_store, tmp_path):
    out = tmp_path / "results"
    assert invoke("run", "--data", tiny_store, "--out", out, *TINY, "--repeats", "1", "--pretrain-epochs", "1",
                  "--finetune-epochs", "1", "--methods", "supervised").exit_code == 0
    checkpoint = out / "repeats" / "repeat_1" / "labels_1" / "supervised.best.pt"
    row = json.loads((out / "metrics.json").read_text())[0]
    default = json.loads(invoke("evaluate", checkpoint, "--data", tiny_store, "--json").output)
    assert default["records"] == row["test_records"] and default["auroc"] == pytest.approx(row["auroc"])
    assert default["records_used"] == "the checkpoint's test records"
    everything = json.loads(invoke("evaluate", checkpoint, "--data", tiny_store, "--json", "--all-records").output)
    assert everything["records"] > row["test_records"]


@pytest.mark.parametrize("args, message", [
    (["--finetune-lr", "-1"], "--finetune-lr must be a finite number >= 0"),
    (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
    (["--seed", "-1"], "--seed must be an integer"),
    (["--label-fraction", "0.5,0.5"], "--label-fraction lists a value twice"),
    (["--methods", "supervised,supervised"], "--methods lists a value twice"),
    (["--label-fraction", "abc"], "--label-fraction: cannot use"),
])
def test_bad_values_exit_2_before_anything_is_written(tiny_store, tmp_path, args, message):
    out = tmp_path / "r"
    result = invoke("run", "--data", tiny_store, "--out", out, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_a_config_file_must_hold_a_table(tmp_path):
    config = tmp_path / "bad.json"
    config.write_text("[1, 2]")
    result = invoke("run", "--config", config)
    assert result.exit_code == 2 and "must hold a table of options" in result.output


def test_a_refused_rerun_leaves_the_results_folder_as_it_was(tiny_store, tmp_path):
    out = tmp_path / "results"
    base = ["run", "--data", tiny_store, "--out", out, *TINY, "--repeats", "1", "--finetune-epochs", "1",
            "--methods", "random_linear"]
    assert invoke(*base, "--pretrain-epochs", "1").exit_code == 0
    saved = (out / "config.json").read_text()
    refused = invoke(*base, "--pretrain-epochs", "2")
    assert refused.exit_code == 2 and "other settings (pretrain_epochs)" in refused.output
    assert (out / "config.json").read_text() == saved
    assert invoke("run", "--resume", "--out", out).exit_code == 0


def test_finetune_refuses_model_options_that_contradict_the_checkpoint(tiny_store, tmp_path):
    assert invoke("pretrain", "--data", tiny_store, "--out", tmp_path / "pre", *TINY,
                  "--pretrain-epochs", "1").exit_code == 0
    checkpoint = tmp_path / "pre" / "pretrain.pt"
    for args, message in ((["--encoder-arg", "width=8"], "--encoder-arg width=8 (checkpoint: 4)"),
                          (["--embed-dim", "16"], "--embed-dim 16 (checkpoint: 8)"),
                          (["--input", "fft"], "--input 'fft' (checkpoint: 'time')")):
        result = invoke("finetune", "--checkpoint", checkpoint, "--data", tiny_store, "--out", tmp_path / "ft", *args)
        assert result.exit_code == 2 and message in result.output, result.output
    config = tmp_path / "run.toml"
    config.write_text('encoder = "cnn_lstm"\n')
    result = invoke("finetune", "--checkpoint", checkpoint, "--data", tiny_store, "--config", config)
    assert result.exit_code == 2 and "holds encoder 'cnn', not 'cnn_lstm'" in result.output
