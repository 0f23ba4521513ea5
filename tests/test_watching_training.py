"""Watching pretraining: monitors every epoch on validation records only, the epoch `--pretrain-select best:knn`
keeps (and keeps after a resume), the collapse warning, history.jsonl and training_curves.png, trackers that fail,
plain log lines for batch jobs, and one-line refusals of bad options. Tiny real PTB-XL store, 1-4 epochs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ecgcl
import ecgcl.manager
from ecgcl.cli.main import cli
from ecgcl.config import resolve_config
from ecgcl.engine.checkpoint import load_checkpoint
from ecgcl.interfaces import Objective, Tracker
from ecgcl.manager import create_plugin_manager
from ecgcl.protocol.runner import run_protocol
from ecgcl.registry import Source
from ecgcl.reporting import Reporter

SMALL = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
         "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25", "--device", "cpu"]


class Interrupt(Exception):
    pass


def _config(store, out, **overrides):
    values = {"data": str(store), "encoder_args": {"width": 4, "depth": 1}, "embed_dim": 8, "projection_dim": 8,
              "batch_size": 32, "val_fraction": 0.25, "test_fraction": 0.25, "pretrain_epochs": 4,
              "finetune_epochs": 1, "repeats": 1, "methods": ["pretrained_linear"], "monitor_every": "1",
              "out": str(out), "device": "cpu"}
    return resolve_config(None, {**values, **overrides})


class Heard(Reporter):
    """Keeps every message and warning a run reports."""

    def __init__(self):
        self.messages, self.warnings, self.epochs = [], [], []

    def message(self, text):
        self.messages.append(text)

    def warning(self, text):
        self.warnings.append(text)

    def epoch(self, stage, epoch, epochs, record):
        self.epochs.append((stage, epoch, record))


def _encoder_state(path):
    return load_checkpoint(path)["encoder"]


def test_best_knn_keeps_the_validation_best_epoch_and_a_resumed_run_keeps_the_same_one(tiny_store, tmp_path):
    whole = tmp_path / "whole"
    result = run_protocol(_config(tiny_store, whole, pretrain_select="best:knn"))
    repeat = whole / "repeats" / "repeat_1"
    saved = load_checkpoint(repeat / "pretrain.pt")
    knn = [h["knn"] for h in saved["history"]]
    assert len(knn) == 4 and all(0 <= k <= 1 for k in knn)
    best = int(np.argmax(knn)) + 1  # the first epoch with the highest validation k-NN AUROC
    assert saved["meta"]["chosen_epoch"] == best and saved["meta"]["chosen_by"] == "best:knn"
    assert saved["meta"]["chosen_value"] == pytest.approx(max(knn))
    chosen = _encoder_state(repeat / "pretrain.best.pt")
    for key, value in saved["encoder"].items():
        assert torch.equal(value, chosen[key]), key
    assert load_checkpoint(repeat / "pretrain.last.pt")["epoch"] == 4  # resuming continues from the last epoch
    assert result.chosen == {"pretrain": {"epoch": best, "by": "best:knn", "value": pytest.approx(max(knn))}}
    summary = json.loads((whole / "summary.json").read_text())
    assert summary[0]["pretrain_select"] == "best:knn" and summary[0]["pretrain_chosen_epochs"] == [best]

    def stop_after_two(stage, epoch, epochs, record):
        if stage == "pretrain" and epoch == 2:
            raise Interrupt

    cut = tmp_path / "cut"
    with pytest.raises(Interrupt):
        run_protocol(_config(tiny_store, cut, pretrain_select="best:knn"), on_epoch_end=stop_after_two)
    run_protocol(_config(tiny_store, cut, pretrain_select="best:knn"))
    resumed = load_checkpoint(cut / "repeats" / "repeat_1" / "pretrain.pt")
    assert resumed["meta"]["chosen_epoch"] == best and resumed["history"] == saved["history"]
    for key, value in saved["encoder"].items():
        assert torch.equal(value, resumed["encoder"][key]), key


def test_monitors_never_see_test_records_and_leave_training_unchanged(tiny_store, tmp_path, monkeypatch):
    from ecgcl.engine.monitoring import EpochMonitors

    seen: list[np.ndarray] = []
    embed, views = EpochMonitors._embed, EpochMonitors._views
    monkeypatch.setattr(EpochMonitors, "_embed", lambda self, enc, rows: (seen.append(rows), embed(self, enc, rows))[1])
    monkeypatch.setattr(EpochMonitors, "_views", lambda self, enc, rows: (seen.append(rows), views(self, enc, rows))[1])
    watched = run_protocol(_config(tiny_store, tmp_path / "watched", pretrain_epochs=2,
                                   monitors=["rankme,knn,probe,align_uniform"]))
    plain = run_protocol(_config(tiny_store, tmp_path / "plain", pretrain_epochs=2, monitors=["none"]))
    split = json.loads((tmp_path / "watched" / "repeats" / "repeat_1" / "split.json").read_text())
    ids = np.asarray(__import__("ecgcl").open_store(tiny_store).metadata["record_id"].astype(str))
    looked_at = set(ids[np.concatenate(seen)])
    assert looked_at and not looked_at & set(split["test"])
    assert set(split["validation"]) <= looked_at  # the validation records are the k-NN / probe queries
    history = [json.loads(line) for line in (tmp_path / "watched" / "history.jsonl").read_text().splitlines()]
    pretraining = [h for h in history if h["stage"] == "pretrain"]
    assert [h["epoch"] for h in pretraining] == [1, 2]
    for record in pretraining:
        assert {"loss", "rankme", "min_std", "knn", "probe", "alignment", "uniformity", "lr", "ecgs_per_s",
                "seconds"} <= set(record)
    # monitoring draws nothing from the training streams: the same losses and the same test metrics
    losses = [h["loss"] for h in load_checkpoint(tmp_path / "plain" / "repeats" / "repeat_1" / "pretrain.pt")["history"]]
    assert [h["loss"] for h in pretraining] == losses
    assert [r["auroc"] for r in watched.rows] == [r["auroc"] for r in plain.rows]
    assert (tmp_path / "watched" / "training_curves.png").stat().st_size > 10_000


class CollapseObjective(Objective):
    """Pulls every embedding towards one direction: the representation collapses (test only)."""

    def forward(self, encoder, batch, patient_ids, generator):
        z = torch.nn.functional.normalize(encoder.embed(batch), dim=1)
        return -(z @ z.mean(dim=0)).mean()


class Explodes(Tracker):
    """A tracker whose backend fails after epoch 2 (test only)."""

    logged: list = []

    def start(self, out, config):
        pass

    def log(self, unit, step, figures):
        if step > 2:
            raise ConnectionError("tracking server went away")
        Explodes.logged.append((unit, step))

    def finish(self, artifacts):
        pass


class Plugin:
    @ecgcl.hookimpl
    def register_objectives(self, registry):
        registry.add("collapse", CollapseObjective, kind="objective")

    @ecgcl.hookimpl
    def register_trackers(self, registry):
        registry.add("explodes", Explodes, kind="tracker")


@pytest.fixture
def with_plugin(monkeypatch):
    manager = create_plugin_manager(entry_points=False)
    manager.register(Plugin(), "watchplug", Source("ecgcl-watch-test", "1.0", "watchplug"))
    monkeypatch.setattr(ecgcl.manager, "get_plugin_manager", lambda: manager)
    return manager.registry


def test_a_collapsing_objective_gets_one_warning_and_a_caption(tiny_store, tmp_path, with_plugin):
    heard = Heard()
    result = run_protocol(_config(tiny_store, tmp_path / "out", objective="collapse", embed_dim=64, lr=0.01,
                                  pretrain_epochs=4, encoder_args={"width": 8, "depth": 1}),
                          registry=with_plugin, reporter=heard)
    collapsing = [w for w in heard.warnings if "collapsing" in w]
    assert len(collapsing) == 1 and collapsing[0].startswith("pretrain · epoch ")
    assert len(result.collapses) == 1
    from ecgcl.protocol.results import pretraining_caption

    assert "representation collapsing in pretrain, epoch" in pretraining_caption(result.chosen, result.collapses)


def test_a_tracker_that_raises_becomes_one_warning_and_the_run_completes(tiny_store, tmp_path, with_plugin):
    Explodes.logged.clear()
    heard = Heard()
    result = run_protocol(_config(tiny_store, tmp_path / "out", track=["explodes"], pretrain_epochs=3),
                          registry=with_plugin, reporter=heard)
    assert Explodes.logged == [("pretrain", 1), ("pretrain", 2)]
    dropped = [w for w in heard.warnings if "explodes" in w]
    assert len(dropped) == 1 and "tracking server went away" in dropped[0] and "dropped" in dropped[0]
    assert result.rows and (tmp_path / "out" / "summary.json").is_file()
    assert [e[1] for e in heard.epochs if e[0] == "pretrain"] == [1, 2, 3]  # the other listeners heard everything


def test_output_to_a_file_has_a_plain_line_per_epoch_and_per_logged_step(tiny_store, tmp_path):
    out = tmp_path / "pre"
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(tiny_store), "--out", str(out), *SMALL,
                                      "--pretrain-epochs", "2", "--log-every", "1", "--monitor-every", "1"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    epochs = [line for line in lines if line.startswith("pretrain · epoch ") and "step" not in line]
    assert [line.split()[3] for line in epochs] == ["1/2", "2/2"]
    assert all("loss" in line and "rankme" in line and "knn" in line and "ECGs/s" in line for line in epochs)
    assert "eta" in epochs[0]
    assert any(line.startswith("pretrain · epoch 1 · step 1/") for line in lines)
    assert "held out by patient" in result.output  # pretrain --task on a labelled store says what knn scores
    assert (out / "history.jsonl").is_file() and (out / "training_curves.png").is_file()


@pytest.mark.parametrize("args, parts", [
    (["--monitor", "knnn"], ["knnn", "did you mean", "knn"]),
    (["--monitor-every", "0"], ["--monitor-every", "integer >= 1"]),
    (["--pretrain-select", "best:probe"], ["best:probe", "not on", "--monitor probe"]),
    (["--pretrain-select", "first"], ["--pretrain-select", "best:MONITOR"]),
    (["--track", "tensorbord"], ["tensorbord", "did you mean", "tensorboard"]),
    (["--all-records", "--pretrain-select", "best:knn"], ["best:knn", "--all-records"]),
    (["--all-records", "--monitor", "knn"], ["--monitor knn", "--all-records"]),
    (["--objective", "cpc", "--monitor", "align_uniform"], ["align_uniform", "two views"]),
    (["--monitor", "knn:k=0"], ["knn", "k"]),
])
def test_bad_monitoring_options_are_one_line_exit_2_and_write_nothing(tiny_store, tmp_path, args, parts):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(tiny_store), "--out", str(out), *SMALL,
                                      "--pretrain-epochs", "1", *args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    for part in parts:
        assert part in errors[0], errors[0]
    assert not out.exists()


def test_a_missing_tracker_extra_is_one_line_naming_it(tiny_store, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if `ecgcl[mlflow]` were not installed
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(tiny_store), "--out", str(out), *SMALL,
                                      "--pretrain-epochs", "1", "--track", "mlflow"])
    assert result.exit_code == 2, result.output
    assert "ecgcl[mlflow]" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_best_knn_needs_labels_on_an_unlabelled_store(tmp_path, tiny_store):
    from ecgcl.data.store import open_store, write_store

    store = open_store(tiny_store)
    metadata = store.metadata.copy()
    metadata["labels"] = ""
    bare = write_store(tmp_path / "bare", np.asarray(store.signals), metadata, dict(store.manifest))
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(bare), "--out", str(tmp_path / "out"), *SMALL,
                                      "--pretrain-epochs", "1", "--pretrain-select", "best:knn"])
    assert result.exit_code == 2, result.output
    assert "best:knn" in result.output and "no labels" in result.output
    auto = CliRunner().invoke(cli, ["pretrain", "--data", str(bare), "--out", str(tmp_path / "auto"), *SMALL,
                                    "--pretrain-epochs", "1"])
    assert auto.exit_code == 0, auto.output
    line = next(l for l in auto.output.splitlines() if l.startswith("pretrain · epoch 1/1"))
    assert "rankme" in line and "knn" not in line  # the label-free default on an unlabelled archive


def test_run_tracks_every_unit_to_tensorboard_and_mlflow(tiny_store, tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--out", str(out), *SMALL, "--repeats", "1",
                                      "--pretrain-epochs", "2", "--finetune-epochs", "2", "--monitor-every", "1",
                                      "--methods", "pretrained_finetune,random_linear", "--track", "tensorboard,mlflow"])
    assert result.exit_code == 0, result.output
    units = {"pretrain": 2, "pretrained_finetune": 2, "random_linear": 1}
    for unit, epochs in units.items():
        events = EventAccumulator(str(out / "tensorboard" / unit))
        events.Reload()
        assert [e.step for e in events.Scalars("loss" if unit != "random_linear" else "val_auroc")] == \
            list(range(1, epochs + 1)), unit
    client = MlflowClient(tracking_uri=f"sqlite:///{(out / 'mlflow.db').resolve()}")
    experiment = client.get_experiment_by_name("ecgcl")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert set(children) == set(units)
    knn = client.get_metric_history(children["pretrain"].info.run_id, "knn")
    assert [m.step for m in knn] == [1, 2]
    assert parent.data.params["pretrain_select"] == "last"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"summary.json", "config.json", "training_curves.png", "history.jsonl"} <= artifacts


def test_ingest_in_a_batch_job_prints_a_line_per_tenth_of_the_records():
    import io

    from rich.console import Console

    from ecgcl.cli.progress import PlainIngestReporter, ingest_progress

    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    reporter = ingest_progress(console)
    assert isinstance(reporter, PlainIngestReporter)  # not a terminal
    reporter.stage("ingest", 1000)
    for done in range(0, 1001, 25):
        reporter.advance(done, {"rate": 500.0, "skipped": done // 100})
    lines = buffer.getvalue().splitlines()
    assert lines[0] == "ingest: 1,000 records"
    assert [line.split("(")[1].split(")")[0] for line in lines[1:]] == [f"{p}%" for p in range(10, 101, 10)]
    assert lines[-1] == "ingest: 1,000/1,000 (100%)  500 rec/s  10 skipped"
    small = io.StringIO()
    quiet = ingest_progress(Console(file=small))
    quiet.stage("ingest", 10)
    quiet.advance(10, {"rate": 5.0})
    assert small.getvalue() == ""  # a small ingest's summary table says it all
