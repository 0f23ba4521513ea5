"""`ecgcl run --pretrained`: the repeated protocol with an encoder pretrained elsewhere (no pretraining).

Store A is the tiny PTB-XL store; store B holds the same records under other patient ids (another store, so
ecgcl can only note that it cannot check patients), or is pretrained on whole (`--all-records`) and refused.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.store import open_store, write_store

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25", "--device", "cpu"]
SPLIT = ["--val-fraction", "0.25", "--test-fraction", "0.25", "--batch-size", "32", "--device", "cpu"]


@pytest.fixture(scope="module")
def other_store(tiny_store, tmp_path_factory):
    """The tiny store's records under other patient ids: another store (another hash), the same patients' grouping."""
    store = open_store(tiny_store)
    metadata = store.metadata.copy()
    metadata["patient_id"] = "b" + metadata["patient_id"].astype(str)
    return write_store(tmp_path_factory.mktemp("transfer") / "b", np.ascontiguousarray(np.asarray(store.signals)),
                       metadata, dict(store.manifest))


@pytest.fixture(scope="module")
def pretrained_a(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer") / "a"
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(tiny_store), "--out", str(out), *TINY,
                                      "--pretrain-epochs", "1"])
    assert result.exit_code == 0, result.output
    return out / "pretrain.pt"


def test_run_with_a_pretrained_encoder_matches_finetune(other_store, pretrained_a, tmp_path):
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "--data", str(other_store), "--pretrained", str(pretrained_a), "--out",
                                 str(out), *SPLIT, "--methods", "pretrained_linear,random_linear", "--repeats", "2",
                                 "--finetune-epochs", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"pretrained encoder {pretrained_a} (objective contrastive, 1 epochs) evaluated on" in text
    assert "was pretrained on another store" in text
    assert not list(out.glob("repeats/*/pretrain*.pt"))  # nothing pretrained
    rows = pd.read_csv(out / "metrics.csv")
    assert len(rows) == 2 * 2 and set(rows["method"]) == {"pretrained_linear", "random_linear"}
    summary = json.loads((out / "summary.json").read_text())
    assert {s["method"] for s in summary if s["baseline"]} == {"pretrained_linear"}  # paired against random init
    config = json.loads((out / "config.json").read_text())
    assert config["pretrained"] == [str(pretrained_a)] and config["encoder_args"] == {"width": 4, "depth": 1}
    assert config["embed_dim"] == 8  # the model options come from the checkpoint (not given here)
    tuned = runner.invoke(cli, ["finetune", "--checkpoint", str(pretrained_a), "--data", str(other_store), "--out",
                                str(tmp_path / "ft"), *SPLIT, "--mode", "linear", "--finetune-epochs", "1"])
    assert tuned.exit_code == 0, tuned.output
    single = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    first = rows[(rows["repeat"] == 0) & (rows["method"] == "pretrained_linear")].iloc[0]
    assert first["auroc"] == pytest.approx(single["auroc"], abs=1e-12)
    assert first["test_records"] == single["test_records"]
    resumed = runner.invoke(cli, ["run", "--resume", "--out", str(out)])
    assert resumed.exit_code == 0 and "already finished" in resumed.output, resumed.output


def test_run_refuses_an_encoder_that_saw_this_stores_test_patients(other_store, tmp_path):
    runner = CliRunner()
    pre = runner.invoke(cli, ["pretrain", "--data", str(other_store), "--out", str(tmp_path / "pre"), *TINY,
                              "--pretrain-epochs", "1", "--all-records"])
    assert pre.exit_code == 0, pre.output
    checkpoint = tmp_path / "pre" / "pretrain.pt"
    out = tmp_path / "run"
    result = runner.invoke(cli, ["run", "--data", str(other_store), "--pretrained", str(checkpoint), "--out",
                                 str(out), *SPLIT, "--methods", "pretrained_linear", "--repeats", "1"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"pretrained encoder {checkpoint} was pretrained on records of" in text and "Traceback" not in text
    assert not (out / "config.json").exists() and not (out / "repeats").exists()


def test_run_refuses_a_same_store_encoder_for_the_repeats_it_did_not_hold_out(tiny_store, pretrained_a, tmp_path):
    """`ecgcl pretrain` holds out repeat 1's patients only; repeat 2 draws other ones."""
    result = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--pretrained", str(pretrained_a), "--out",
                                      str(tmp_path / "run"), *SPLIT, "--repeats", "2"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"repeat 2: pretrained encoder {pretrained_a} was pretrained on records of" in text
    assert "use --repeats 1" in text and not (tmp_path / "run").exists()


def test_run_with_a_bad_pretrained_path_or_several_exits_2(tiny_store, pretrained_a, tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--pretrained", str(tmp_path / "nope.pt"),
                                      "--out", str(out), *SPLIT])
    assert result.exit_code == 2, result.output
    assert f"checkpoint {tmp_path / 'nope.pt'} does not exist" in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not out.exists()  # nothing written
    twice = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--pretrained", str(pretrained_a),
                                     "--pretrained", str(pretrained_a), "--out", str(out), *SPLIT])
    assert twice.exit_code == 2 and "--pretrained lists" in twice.output and "twice" in twice.output
    grid = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--pretrained", str(pretrained_a),
                                    "--pretrained", str(tmp_path / "other.pt"), "--objective", "contrastive",
                                    "--objective", "byol", "--out", str(out), *SPLIT])
    assert grid.exit_code == 2 and "several --objective, --aug or --encoder values" in grid.output
    assert not out.exists()


def test_several_pretrained_encoders_are_a_grid_compared_on_the_same_splits(other_store, pretrained_a, tiny_store,
                                                                              tmp_path):
    """Two encoders pretrained elsewhere (different widths): one cell each, with its own baselines, paired."""
    wide = tmp_path / "wide"
    made = CliRunner().invoke(cli, ["pretrain", "--data", str(tiny_store), "--out", str(wide), *TINY,
                                    "--encoder-arg", "width=6", "--pretrain-epochs", "1"])
    assert made.exit_code == 0, made.output
    out = tmp_path / "grid"
    result = CliRunner().invoke(cli, ["run", "--data", str(other_store), "--pretrained", str(pretrained_a),
                                      "--pretrained", str(wide / "pretrain.pt"), "--out", str(out), *SPLIT,
                                      "--methods", "pretrained_linear,random_linear", "--repeats", "1"])
    assert result.exit_code == 0, result.output
    grid = pd.read_csv(out / "grid.csv")
    assert set(grid["setting"]) == {f"pretrained {pretrained_a}", f"pretrained {wide / 'pretrain.pt'}"}
    assert set(grid["objective"]) == {"contrastive"} and set(grid["encoder"]) == {"cnn"}
    assert len(grid) == 2 * 2 and (out / "grid.png").is_file()
    cells = sorted(p.name for p in (out / "cells").iterdir())
    assert len(cells) == 2 and all(c.startswith("pretrained__") for c in cells)
    widths = {json.loads((out / "cells" / c / "config.json").read_text())["encoder_args"]["width"] for c in cells}
    assert widths == {4, 6}  # each cell's model comes from its checkpoint
    assert cells == ["pretrained__a_pretrain.pt", "pretrained__wide_pretrain.pt"]  # the shortest telling names
    splits = [json.loads((out / "cells" / c / "repeats" / "repeat_1" / "split.json").read_text()) for c in cells]
    assert splits[0]["test"] == splits[1]["test"] and splits[0]["train"] == splits[1]["train"]  # paired


def test_run_refuses_model_options_that_contradict_the_checkpoint(tiny_store, pretrained_a, tmp_path):
    result = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--pretrained", str(pretrained_a),
                                      "--embed-dim", "16", "--out", str(tmp_path / "run"), *SPLIT])
    assert result.exit_code == 2, result.output
    assert "--embed-dim 16 (checkpoint: 8)" in result.output
