"""The training loops' settings and context (`ecgcl.engine.settings`): settings are frozen and checked where they
are declared, the checkpoints carry their meta and fingerprint and refuse another run's resume file, a context
without paths writes nothing, and every loop (the linear probe too) tells the context's listener of its epochs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ecgcl.compose import parse_augmentations
from ecgcl.context import RuntimeContext
from ecgcl.data.sample import sample_store_path
from ecgcl.data.store import open_store
from ecgcl.engine.loops import fit_probe, pretrain, train_classifier
from ecgcl.engine.model import Classifier, build_encoder
from ecgcl.engine.settings import Checkpoints, FinetuneSettings, PretrainSettings, TrainingContext
from ecgcl.errors import EcgclError
from ecgcl.manager import get_registry
from ecgcl.plugins.losses.ntxent import NTXentLoss
from ecgcl.plugins.objectives.contrastive import Contrastive
from ecgcl.tasks import task_targets

CPU = torch.device("cpu")
FINETUNE = FinetuneSettings(epochs=2, patience=5, batch_size=32, lr=3e-3, weight_decay=0.0, seed=7)


@pytest.fixture(scope="module")
def labelled():
    store = open_store(sample_store_path())
    targets = task_targets("normal_vs_abnormal", store.metadata, registry=get_registry())
    rows = np.flatnonzero(targets.labelled)
    return store, targets.y, rows[:64], rows[64:112]


def _encoder(store, seed: int = 0):
    torch.manual_seed(seed)
    return build_encoder(get_registry(), "cnn", in_leads=12, window=store.signals.shape[2], representation="time",
                         embed_dim=8, encoder_args={"width": 4, "depth": 1})


def _classifier(store, seed: int = 0):
    return Classifier(_encoder(store, seed), 1, window=store.signals.shape[2], representation="time")


def test_settings_are_frozen_and_patience_is_checked_where_it_is_declared():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FINETUNE.lr = 1.0
    for bad in (0, True, 2.0):
        with pytest.raises(EcgclError, match="--patience must be an integer >= 1"):
            dataclasses.replace(FINETUNE, patience=bad)
    assert FINETUNE.seed_for("finetune", "shuffle", 3) == FINETUNE.seed_for("finetune", "shuffle", 3) != \
        FINETUNE.seed_for("finetune", "shuffle", 4)


def _fit(labelled, plan, on_epoch_end=None, seed: int = 0):
    store, y, train, val = labelled
    return train_classifier(model=_classifier(store, seed), store=store, train_rows=train, val_rows=val, y=y,
                            settings=FINETUNE, context=TrainingContext(CPU, plan, on_epoch_end=on_epoch_end))


def test_checkpoints_carry_meta_and_fingerprint_and_the_listener_hears_every_epoch(labelled, tmp_path):
    plan = Checkpoints(last_path=tmp_path / "m.last.pt", best_path=tmp_path / "m.best.pt", meta={"task": "t"},
                       fingerprint={"config": 1})
    heard = []
    fit = _fit(labelled, plan, lambda *event: heard.append(event))
    assert heard == [("finetune", r["epoch"], 2, r) for r in fit["history"]] and len(heard) == 2
    last, best = (torch.load(p, weights_only=True) for p in (plan.last_path, plan.best_path))  # as written
    assert (last["kind"], last["meta"], last["fingerprint"], last["epoch"]) == ("classifier-last", {"task": "t"},
                                                                                {"config": 1}, 2)
    assert (best["kind"], best["meta"], best["epoch"]) == ("classifier", {"task": "t"}, fit["best_epoch"])
    assert best["val_auroc"] == fit["best_val_auroc"]


def test_a_finished_resume_file_is_reused_and_another_runs_is_refused(labelled, tmp_path):
    plan = Checkpoints(last_path=tmp_path / "m.last.pt", fingerprint={"config": 1})
    fit = _fit(labelled, plan)
    again = _fit(labelled, plan, seed=1)  # other initial weights, nothing left to train: everything comes from the file
    assert again["history"] == fit["history"] and again["best_epoch"] == fit["best_epoch"]
    with pytest.raises(EcgclError, match="m.last.pt was written by a run with other settings"):
        _fit(labelled, dataclasses.replace(plan, fingerprint={"config": 2}))


def test_pretraining_without_paths_writes_nothing_and_reports_every_epoch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store(sample_store_path())
    encoder = _encoder(store)
    augmentation = parse_augmentations("noise", get_registry(), RuntimeContext.of_store(store, CPU))
    objective = Contrastive(8, augmentation, NTXentLoss(), projection_dim=8)
    settings = PretrainSettings(epochs=2, batch_size=16, lr=0.05, weight_decay=0.0, seed=3,
                                window=store.signals.shape[2], representation="time")
    heard = []
    history = pretrain(encoder=encoder, objective=objective, store=store, rows=np.arange(32), settings=settings,
                       context=TrainingContext(CPU, on_epoch_end=lambda *e: heard.append(e)))
    assert heard == [("pretrain", 1, 2, history[0]), ("pretrain", 2, 2, history[1])]
    assert list(tmp_path.iterdir()) == []


def test_the_linear_probe_reports_its_one_epoch_to_the_context(labelled):
    store, y, train, val = labelled
    heard = []
    fit = fit_probe(model=_classifier(store), store=store, train_rows=train, val_rows=val, y=y, batch_size=32,
                    context=TrainingContext(CPU, on_epoch_end=lambda *e: heard.append(e)))
    assert heard == [("linear", 1, 1, {"epoch": 1, "val_auroc": fit["best_val_auroc"]})]
    assert fit["best_val_auroc"] is not None
