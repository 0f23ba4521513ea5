"""End-to-end fine-tuning and supervised training stop on validation: `--finetune-epochs` is the maximum,
`--patience` the epochs without a better validation AUROC, the best epoch is restored, a resumed run stops where
the uninterrupted one does, and a unit cut off by its budget is flagged in the result table."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from rich.console import Console

from ecgcl.cli.main import cli
from ecgcl.config import resolve_config
from ecgcl.data.sample import sample_store_path
from ecgcl.data.store import open_store
from ecgcl.tasks import task_targets
from ecgcl.engine import loops
from ecgcl.engine.settings import Checkpoints, FinetuneSettings, TrainingContext
from ecgcl.engine.model import Classifier
from ecgcl.errors import EcgclError
from ecgcl.manager import get_registry
from ecgcl.cli.tables import summary_tables
from ecgcl.protocol.results import UNDERTRAINED_HINT
from ecgcl.protocol.runner import run_protocol


def _setup(seed: int = 0):
    from ecgcl.engine.model import build_encoder

    store = open_store(sample_store_path())
    targets = task_targets("normal_vs_abnormal", store.metadata, registry=get_registry())
    rows = np.flatnonzero(targets.labelled)
    torch.manual_seed(seed)
    encoder = build_encoder(get_registry(), "cnn", in_leads=12, window=store.signals.shape[2], representation="time",
                            embed_dim=8, encoder_args={"width": 4, "depth": 1})
    model = Classifier(encoder, 1, window=store.signals.shape[2], representation="time")
    return store, targets.y, rows[:120], rows[120:180], model


def _train(model, store, y, train, val, *, last_path=None, on_epoch_end=None, **settings):
    settings = FinetuneSettings(**{**dict(epochs=12, patience=2, batch_size=32, lr=3e-3, weight_decay=0.0, seed=7),
                                   **settings})
    context = TrainingContext(torch.device("cpu"), Checkpoints(last_path=last_path), on_epoch_end=on_epoch_end)
    return loops.train_classifier(model=model, store=store, train_rows=train, val_rows=val, y=y, settings=settings,
                                  context=context)


def test_training_stops_after_patience_epochs_without_improvement_and_restores_the_best(monkeypatch):
    scores = iter([0.50, 0.70, 0.65, 0.69, 0.90, 0.99])  # best at epoch 2; epochs 3 and 4 do not improve it
    monkeypatch.setattr(loops, "_validation_auroc", lambda y, p: next(scores))
    store, y, train, val, model = _setup()
    states = {}

    def keep(stage, epoch, epochs, record):
        states[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    fit = _train(model, store, y, train, val, on_epoch_end=keep)
    assert (fit["best_epoch"], fit["epochs_run"], fit["stopped"]) == (2, 4, "patience")
    assert [h["epoch"] for h in fit["history"]] == [1, 2, 3, 4]
    for key, value in model.state_dict().items():
        assert torch.equal(value, states[2][key]), key
    assert any(not torch.equal(states[4][k], states[2][k]) for k in states[2])


def test_a_unit_that_improves_until_its_last_epoch_ran_to_max_epochs(monkeypatch):
    scores = iter([0.1 * k for k in range(1, 10)])
    monkeypatch.setattr(loops, "_validation_auroc", lambda y, p: next(scores))
    store, y, train, val, model = _setup()
    fit = _train(model, store, y, train, val, epochs=3)
    assert (fit["best_epoch"], fit["epochs_run"], fit["stopped"]) == (3, 3, "max_epochs")


def test_resuming_inside_a_patience_window_gives_the_uninterrupted_result(tmp_path):
    store, y, train, val, model = _setup()
    whole = _train(model, store, y, train, val, epochs=30, last_path=tmp_path / "a.last.pt")
    assert whole["stopped"] == "patience" and whole["best_epoch"] < whole["epochs_run"] < 30
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    stop_at = whole["best_epoch"] + 1  # inside the patience window after the best epoch

    class Interrupted(Exception):
        pass

    def interrupt(stage, epoch, epochs, record):
        if epoch == stop_at:
            raise Interrupted

    _, _, _, _, first = _setup()
    with pytest.raises(Interrupted):
        _train(first, store, y, train, val, epochs=30, last_path=tmp_path / "b.last.pt", on_epoch_end=interrupt)
    _, _, _, _, resumed_model = _setup(seed=123)  # other initial weights: everything must come from the file
    resumed = _train(resumed_model, store, y, train, val, epochs=30, last_path=tmp_path / "b.last.pt")
    assert resumed["history"] == whole["history"]
    assert (resumed["best_epoch"], resumed["epochs_run"], resumed["stopped"]) == \
        (whole["best_epoch"], whole["epochs_run"], whole["stopped"])
    for key, value in resumed_model.state_dict().items():
        assert torch.equal(value, expected[key]), key


def test_the_table_warns_when_a_units_best_epoch_is_its_last(tmp_path):
    config = resolve_config(None, {"data": str(sample_store_path()), "encoder_args": {"width": 4, "depth": 1},
                                   "embed_dim": 8, "pretrain_epochs": 0, "finetune_epochs": 1, "repeats": 1,
                                   "methods": ["supervised", "random_linear"], "out": str(tmp_path), "device": "cpu"})
    result = run_protocol(config)
    supervised = next(r for r in result.rows if r["method"] == "supervised")
    assert (supervised["stopped"], supervised["best_epoch"], supervised["epochs_run"]) == ("max_epochs", 1, 1)
    console = Console(file=io.StringIO(), width=200)
    for table in summary_tables(result.summary, result.rows, result.split_note):
        console.print(table)
    text = " ".join(console.file.getvalue().split())  # the caption wraps at the table's width
    assert UNDERTRAINED_HINT in text and "supervised repeat 1" in text
    assert "0 of 1 stopped by --patience" in text


@pytest.mark.parametrize("value", ["0", "-1"])
def test_bad_patience_is_one_line_and_exit_2(tmp_path, value):
    result = CliRunner().invoke(cli, ["run", "--patience", value, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"Error: --patience must be an integer >= 1, got {value}"
    assert not (tmp_path / "out").exists()


def test_a_patience_that_is_not_an_integer_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--patience", "1.5", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "Invalid value for '--patience'" in result.output
    assert not (tmp_path / "out").exists()


def test_patience_is_checked_by_the_loop_too():
    store, y, train, val, model = _setup()
    with pytest.raises(EcgclError, match="--patience must be an integer >= 1"):
        _train(model, store, y, train, val, patience=0)
