"""End to end: `ecgcl run` / `pretrain` / `finetune` / `evaluate` on a tiny real PTB-XL store.

Models are tiny (cnn width 4, depth 1) and runs are 1-2 epochs, so the whole file takes well under a minute.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console

from ecgcl.cli.main import cli
from ecgcl.config import resolve_config
from ecgcl.data.store import open_store, write_store
from ecgcl.cli.tables import summary_tables
from ecgcl.protocol.runner import run_protocol

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25"]
METRICS = ("accuracy", "precision", "recall", "f1", "auroc", "pr_auc")


def _config(store, out, **overrides):
    values = {"data": str(store), "encoder_args": {"width": 4, "depth": 1}, "embed_dim": 8, "projection_dim": 8,
              "batch_size": 32, "val_fraction": 0.25, "test_fraction": 0.25, "pretrain_epochs": 2,
              "finetune_epochs": 2, "repeats": 1, "methods": ["pretrained_finetune", "pretrained_linear"],
              "out": str(out), "device": "cpu"}
    return resolve_config(None, {**values, **overrides})


def _metrics(result):
    return [(r["method"], r["label_fraction"], *(r[m] for m in METRICS), r["best_epoch"]) for r in result.rows]


def test_cli_run_end_to_end_writes_the_results_folder(tiny_store, tmp_path):
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--out", str(out), *TINY, "--repeats", "2",
                                      "--pretrain-epochs", "1", "--finetune-epochs", "1",
                                      "--label-fraction", "0.5,1.0"])
    assert result.exit_code == 0, result.output
    assert "auroc" in result.output and "pretrained FT" in result.output
    for name in ("config.json", "metrics.json", "metrics.csv", "summary.json", "summary.csv", "loss_curves.png",
                 "label_efficiency.png"):
        assert (out / name).is_file(), name
    rows = pd.read_csv(out / "metrics.csv")
    assert len(rows) == 2 * 2 * 4  # repeats x fractions x (2 pretrained + 2 baseline) methods
    assert set(rows["method"]) == {"pretrained_finetune", "pretrained_linear", "random_linear", "supervised"}
    assert rows["auroc"].between(0, 1).all()
    summary = json.loads((out / "summary.json").read_text())
    assert {(s["label_fraction"], s["repeats"]) for s in summary} == {(0.5, 2), (1.0, 2)}
    # thresholds chosen on validation are saved with the metrics and in the best checkpoint
    saved = json.loads((out / "metrics.json").read_text())
    assert all(0 <= r["threshold"] <= 1 and 0 <= r["f_max"] <= 1 for r in saved)
    # paired differences: each method against supervised, pretrained LP against random-init LP
    pairs = {(s["method"], s["baseline"]) for s in summary if s["baseline"]}
    assert pairs == {("pretrained_finetune", "supervised"), ("pretrained_linear", "supervised"),
                     ("random_linear", "supervised"), ("pretrained_linear", "random_linear")}
    assert "Paired differences" in result.output and "p" in pd.read_csv(out / "summary.csv").filter(like="_p").columns[0]
    # at 80 columns (a narrow terminal, or output to a file) every metric name and interval is shown in full
    console = Console(width=80, record=True, file=io.StringIO())
    for table in summary_tables(summary):
        console.print(table)
    text = console.export_text()
    assert "…" not in text and "precision" in text, text
    config = json.loads((out / "config.json").read_text())
    assert config["repeats"] == 2 and config["encoder_args"] == {"width": 4, "depth": 1}
    # pretraining never saw a validation or test patient
    store = open_store(tiny_store)
    patient = dict(zip(store.metadata["record_id"].astype(str), store.metadata["patient_id"]))
    for repeat in (1, 2):
        split = json.loads((out / "repeats" / f"repeat_{repeat}" / "split.json").read_text())
        held_out = {patient[r] for r in split["validation"] + split["test"]}
        assert held_out and not held_out & {patient[r] for r in split["pretraining_pool"]}
        assert not {patient[r] for r in split["train"]} & held_out

    # the saved best checkpoint evaluates on its own, on its test part
    checkpoint = out / "repeats" / "repeat_1" / "labels_1" / "pretrained_finetune.best.pt"
    evaluated = CliRunner().invoke(cli, ["evaluate", str(checkpoint), "--data", str(tiny_store), "--json",
                                         "--split-file", str(out / "repeats" / "repeat_1" / "split.json")])
    assert evaluated.exit_code == 0, evaluated.output
    payload = json.loads(evaluated.output)
    row = next(r for r in json.loads((out / "metrics.json").read_text())
               if r["repeat"] == 0 and r["label_fraction"] == 1.0 and r["method"] == "pretrained_finetune")
    assert payload["auroc"] == pytest.approx(row["auroc"]) and payload["records"] == row["test_records"]
    assert payload["threshold"] == pytest.approx(row["threshold"]) and payload["f1"] == pytest.approx(row["f1"])


def test_same_config_and_seed_give_the_same_metrics(tiny_store, tmp_path):
    first = run_protocol(_config(tiny_store, tmp_path / "a"))
    second = run_protocol(_config(tiny_store, tmp_path / "b"))
    assert _metrics(first) == _metrics(second)


class Interrupt(Exception):
    pass


def test_resume_after_interruptions_equals_an_uninterrupted_run(tiny_store, tmp_path):
    reference = run_protocol(_config(tiny_store, tmp_path / "reference"))

    def stop_at(stage_name, epoch_number):
        def hook(stage, epoch, epochs, record):
            if stage == stage_name and epoch == epoch_number:
                raise Interrupt
        return hook

    out = tmp_path / "interrupted"
    with pytest.raises(Interrupt):  # killed after the first pretraining epoch
        run_protocol(_config(tiny_store, out), on_epoch_end=stop_at("pretrain", 1))
    assert (out / "repeats" / "repeat_1" / "pretrain.last.pt").is_file()
    assert not (out / "repeats" / "repeat_1" / "pretrain.pt").exists()
    with pytest.raises(Interrupt):  # resumes pretraining at epoch 2, then killed after one fine-tuning epoch
        run_protocol(_config(tiny_store, out), on_epoch_end=stop_at("finetune", 1))
    assert (out / "repeats" / "repeat_1" / "labels_1" / "pretrained_finetune.last.pt").is_file()
    epochs_run = []
    resumed = run_protocol(_config(tiny_store, out), on_epoch_end=lambda s, e, n, r: epochs_run.append((s, e)))
    assert epochs_run == [("finetune", 2), ("linear", 1)]  # nothing finished is redone; the probe is one fit
    assert _metrics(resumed) == _metrics(reference)
    assert not list(out.rglob("*.last.pt.*"))  # no temporary checkpoint files left behind


def test_cli_resume_uses_the_saved_config(tiny_store, tmp_path):
    out = tmp_path / "results"
    args = ["run", "--data", str(tiny_store), "--out", str(out), *TINY, "--repeats", "1", "--pretrain-epochs", "1",
            "--finetune-epochs", "1", "--methods", "random_linear"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    resumed = CliRunner().invoke(cli, ["run", "--resume", "--out", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert "already finished" in resumed.output


def test_cli_pretrain_then_finetune_and_encoder_mismatch(tiny_store, tmp_path):
    runner = CliRunner()
    pre = runner.invoke(cli, ["pretrain", "--data", str(tiny_store), "--out", str(tmp_path / "pre"), *TINY,
                              "--pretrain-epochs", "1", "--input", "fft"])
    assert pre.exit_code == 0, pre.output
    checkpoint = tmp_path / "pre" / "pretrain.pt"
    tuned = runner.invoke(cli, ["finetune", "--checkpoint", str(checkpoint), "--data", str(tiny_store), "--out",
                                str(tmp_path / "ft"), "--finetune-epochs", "1", "--mode", "linear",
                                "--val-fraction", "0.25", "--test-fraction", "0.25"])
    assert tuned.exit_code == 0, tuned.output
    best = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert 0 <= best["auroc"] <= 1 and best["method"] == "pretrained_linear"
    from ecgcl.engine.checkpoint import load_checkpoint

    meta = load_checkpoint(best["checkpoint"])["meta"]
    assert meta["encoder"] == "cnn" and meta["encoder_args"] == {"width": 4, "depth": 1}
    assert meta["representation"] == "fft" and meta["manifest_hash"] == open_store(tiny_store).hash
    assert meta["preprocessing"]["options"] == {"fs": 100, "normalise": None}
    wrong = runner.invoke(cli, ["finetune", "--checkpoint", str(checkpoint), "--encoder", "cnn_lstm",
                                "--data", str(tiny_store), "--out", str(tmp_path / "x")])
    assert wrong.exit_code == 2 and "holds encoder 'cnn', not 'cnn_lstm'" in wrong.output
    assert "Traceback" not in wrong.output


def _variant_store(tiny_store, out, *, labels=None, length=None):
    store = open_store(tiny_store)
    signals = np.asarray(store.signals)[:, :, :length] if length else np.asarray(store.signals)
    metadata = store.metadata.copy()
    if labels is not None:
        metadata["labels"] = labels(metadata)
    return write_store(out, np.ascontiguousarray(signals), metadata, {**store.manifest, "length": signals.shape[2]})


@pytest.mark.parametrize("args, message", [
    (["--encoder", "cnn_lsmt"], "did you mean 'cnn_lstm'"),
    (["--aug", "permute+nosie"], "nosie"),
    (["--task", "normal_vs_abnormals"], "unknown task"),
    (["--methods", "pretrained"], "unknown method 'pretrained'"),
])
def test_user_mistakes_exit_2_with_one_line(tiny_store, tmp_path, args, message):
    result = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_store_without_labels_and_one_class_split_exit_2(tiny_store, tmp_path):
    unlabelled = _variant_store(tiny_store, tmp_path / "unlabelled", labels=lambda m: [""] * len(m))
    result = CliRunner().invoke(cli, ["run", "--data", str(unlabelled), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "no labelled records for task 'normal_vs_abnormal'" in result.output
    # only 2 abnormal records (patients): some part of the split must lack the class
    def two_abnormal(m):
        labels = m["labels"].where(m["labels"] == "", "NORM").tolist()
        labels[0] = labels[1] = "MI"
        return labels
    rare = _variant_store(tiny_store, tmp_path / "rare", labels=two_abnormal)
    result = CliRunner().invoke(cli, ["run", "--data", str(rare), "--out", str(tmp_path / "r2"), *TINY])
    assert result.exit_code == 2, result.output
    assert "repeat 1: the" in result.output and "split of task 'normal_vs_abnormal' has only class 'normal'" in result.output


def test_evaluate_refuses_a_store_of_another_shape(tiny_store, tmp_path):
    out = tmp_path / "results"
    assert CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--out", str(out), *TINY, "--repeats", "1",
                                    "--pretrain-epochs", "1", "--finetune-epochs", "1",
                                    "--methods", "supervised"]).exit_code == 0
    short = _variant_store(tiny_store, tmp_path / "short", length=300)  # shorter than a view
    checkpoint = out / "repeats" / "repeat_1" / "labels_1" / "supervised.best.pt"
    result = CliRunner().invoke(cli, ["evaluate", str(checkpoint), "--data", str(short)])
    assert result.exit_code == 2 and "x 1000 samples at 100 Hz, but store" in result.output
    pretrain_only = CliRunner().invoke(cli, ["evaluate", str(out / "config.json"), "--data", str(tiny_store)])
    assert pretrain_only.exit_code == 2 and "cannot be read" in pretrain_only.output
