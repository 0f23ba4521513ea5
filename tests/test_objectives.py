"""Pretraining objectives as the fifth plugin kind: every registered objective pretrains, resumes exactly and is
checked before training; `contrastive` reproduces the numbers of the pre-objective loop; mistakes are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import Tensor, nn

import ecgcl
from ecgcl.cli.main import cli
from ecgcl.config import resolve_config
from ecgcl.data.sample import sample_store_path
from ecgcl.interfaces import Encoder, Objective
from ecgcl.manager import create_plugin_manager, get_registry
from ecgcl.registry import Source
from ecgcl.protocol.runner import encoders_that_fit, prepare, run_pretraining, run_protocol

TINY = {"encoder_args": {"width": 4, "depth": 1}, "embed_dim": 8, "projection_dim": 8, "batch_size": 32,
        "device": "cpu"}
TINY_CLI = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
            "--batch-size", "32", "--device", "cpu"]


def _config(out, **values):
    return resolve_config(None, {"data": str(sample_store_path()), **TINY, "out": str(out), **values})


def test_contrastive_reproduces_the_numbers_of_the_pre_objective_loop(tmp_path):
    """Measured with the loop before objectives existed (commit 336355d), same config and seed (and that loop's
    views and temperature, the defaults then)."""
    config = _config(tmp_path, pretrain_epochs=2, finetune_epochs=3, repeats=1, aug="permute+noise",
                     loss_args={"temperature": 0.1},
                     methods=["pretrained_finetune", "pretrained_linear"])
    result = run_protocol(config)
    from ecgcl.engine.checkpoint import load_checkpoint

    history = load_checkpoint(tmp_path / "repeats" / "repeat_1" / "pretrain.pt")["history"]
    # equal to float rounding (the epoch mean sums float32 step losses; thread scheduling may reorder them)
    assert [h["loss"] for h in history] == pytest.approx([4.050908327102661, 3.8545694616105823], rel=1e-6)
    assert {r["method"]: r["auroc"] for r in result.rows} == {"pretrained_finetune": 0.7403846153846154,
                                                              "pretrained_linear": 0.6233974358974359}
    saved = load_checkpoint(tmp_path / "repeats" / "repeat_1" / "pretrain.pt")["meta"]
    assert saved["objective"] == "contrastive" and saved["aug"] == "permute+noise"
    assert json.loads((tmp_path / "config.json").read_text())["objective"] == "contrastive"


def _objectives() -> list[str]:
    """The built-in objectives (a plugin's objective is its own package's to test)."""
    return [c.name for c in create_plugin_manager(entry_points=False).registry.components("objective")]


def _encoder_for(name: str) -> tuple[str, dict]:
    needs = get_registry().get("objective", name).factory_attribute("needs")
    if needs == "tokens":
        return "patch_transformer", {}
    return "cnn", {"width": 4, "depth": 1}


@pytest.mark.parametrize("name", _objectives())
def test_every_objective_resumes_after_an_interruption_exactly(tmp_path, name, resume_equals_uninterrupted):
    encoder, encoder_args = _encoder_for(name)
    config = _config(tmp_path, objective=name, encoder=encoder, encoder_args=encoder_args, pretrain_epochs=2)
    exp = prepare(config, need_labels=False)

    def pretrain(where, on_epoch_end):
        encoder, history = run_pretraining(exp, np.arange(96), where, 5, unit={}, on_epoch_end=on_epoch_end)
        return history, encoder

    (history, _), _ = resume_equals_uninterrupted(pretrain, tmp_path)
    assert all(np.isfinite(h["loss"]) for h in history)
    saved, whole_saved = (torch.load(tmp_path / part / "pretrain.last.pt", weights_only=True)["objective"]
                          for part in ("cut", "whole"))
    assert saved.keys() == whole_saved.keys()
    for key, value in saved.items():
        assert torch.equal(value, whole_saved[key]), key


def test_list_plugins_shows_the_objectives():
    result = CliRunner().invoke(cli, ["list-plugins", "--kind", "objective", "--json"])
    assert result.exit_code == 0, result.output
    names = {c["name"] for c in json.loads(result.output)["components"] if c["source"] == "ecgcl"}
    assert {"contrastive"} <= names and names == set(_objectives())


def _one_line_exit_2(args, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output, result.output
    assert not out.exists()
    return result.output


def test_an_unknown_objective_is_one_line_with_a_suggestion(tmp_path):
    text = _one_line_exit_2(["run", "--objective", "contrastiv", *TINY_CLI], tmp_path)
    assert "contrastive" in text and "did you mean" in text


class NoLossObjective(Objective):
    """Pulls embeddings of two noisy copies together (a test objective that takes no --loss)."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.head = nn.Linear(embed_dim, embed_dim)

    def forward(self, encoder, batch: Tensor, patient_ids: Tensor, generator: torch.Generator) -> Tensor:
        noisy = batch + 0.01 * torch.randn(batch.shape, generator=generator, device=batch.device)
        return (self.head(encoder.embed(batch)) - encoder.embed(noisy)).pow(2).mean()


class DetachedObjective(NoLossObjective):
    """Its loss never reaches the encoder."""

    def forward(self, encoder, batch, patient_ids, generator):
        return self.head(encoder.embed(batch).detach()).pow(2).mean()


class StepsObjective(NoLossObjective):
    needs = "sequence"


class PoolEncoder(Encoder):
    """Mean over time then a linear layer: no steps."""

    def __init__(self, in_leads: int, length: int, embed_dim: int = 8) -> None:
        super().__init__(in_leads, length, embed_dim)
        self.out = nn.Linear(in_leads, embed_dim)

    def forward(self, batch: Tensor) -> Tensor:
        return self.out(batch.mean(-1))


class ObjectivesPlugin:
    @ecgcl.hookimpl
    def register_objectives(self, registry):
        registry.add("pull", NoLossObjective, kind="objective")
        registry.add("detached", DetachedObjective, kind="objective")
        registry.add("steps", StepsObjective, kind="objective")

    @ecgcl.hookimpl
    def register_encoders(self, registry):
        registry.add("pool", PoolEncoder, kind="encoder")


@pytest.fixture
def registry():
    manager = create_plugin_manager(entry_points=False)
    manager.register(ObjectivesPlugin(), "testplug", Source("ecgcl-test-objectives", "1.0", "testplug"))
    return manager.registry


def test_a_third_party_objective_pretrains_through_the_protocol(registry, tmp_path):
    result = run_protocol(_config(tmp_path, objective="pull", pretrain_epochs=1, finetune_epochs=1, repeats=1,
                                  methods=["pretrained_linear"]), registry=registry)
    assert result.rows[0]["method"] == "pretrained_linear" and 0 <= result.rows[0]["auroc"] <= 1
    assert json.loads((tmp_path / "summary.json").read_text())[0]["objective"] == "pull"


def test_objective_mistakes_are_refused_before_training(registry, tmp_path):
    from ecgcl.errors import EcgclError

    with pytest.raises(EcgclError, match="--loss clocs_patient: objective 'pull' takes no contrastive loss"):
        prepare(_config(tmp_path, objective="pull", loss="clocs_patient"), registry=registry)
    with pytest.raises(EcgclError, match="gradients do not reach the encoder"):
        prepare(_config(tmp_path, objective="detached"), registry=registry)
    with pytest.raises(EcgclError, match=r"objective 'steps' needs an encoder with sequence .*encoder 'pool' has "
                                         r"none\. Encoders that fit: .*cnn"):
        prepare(_config(tmp_path, objective="steps", encoder="pool", encoder_args={}), registry=registry)
    with pytest.raises(EcgclError, match="objective 'pull' has no option 'nope'; options: none"):
        prepare(_config(tmp_path, objective="pull:nope=1"), registry=registry)
    assert not any(tmp_path.iterdir())
    assert "cnn" in encoders_that_fit(registry, "sequence") and "pool" not in encoders_that_fit(registry, "sequence")


def test_objective_is_a_grid_axis(tmp_path):
    from ecgcl.protocol.sweep import grid_cells

    config = _config(tmp_path, objective=["contrastive", "contrastive:projection_dim=4"])
    assert config.is_grid
    with pytest.raises(Exception, match="projection_dim is set from --projection-dim"):
        prepare(grid_cells(config)[1].config)
    assert [c.name for c in grid_cells(_config(tmp_path, objective=["a", "b"], aug="noise"))] == \
        ["a__noise__cnn", "b__noise__cnn"]
