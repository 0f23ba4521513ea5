"""Grids of --aug x --encoder: a 2 x 2 grid on the embedded sample, one cell interrupted and resumed; TOML
lists; duplicate grid values are one line and exit code 2."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from torch import nn

import ecgcl
from ecgcl.cli.main import cli
from ecgcl.interfaces import Encoder
from ecgcl.manager import create_plugin_manager
from ecgcl.registry import Source
from ecgcl.config import read_config_file, resolve_config
from ecgcl.protocol.sweep import cell_name, grid_cells, run_grid
from ecgcl.protocol.runner import Reporter


class LeadStats(Encoder):
    """Per-lead mean, standard deviation and mean absolute slope through one linear layer: a fast second encoder."""

    def __init__(self, in_leads: int = 12, length: int = 1000, embed_dim: int = 16, width: int = 4, depth: int = 1):
        super().__init__(in_leads, length, embed_dim)
        self.linear = nn.Linear(3 * in_leads, embed_dim)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        stats = [batch.mean(-1), batch.std(-1), batch.diff(dim=-1).abs().mean(-1)]
        return self.linear(torch.cat(stats, dim=1))


class LeadStatsPlugin:
    @ecgcl.hookimpl
    def register_encoders(self, registry):
        registry.add("lead_stats", LeadStats, kind="encoder")


@pytest.fixture
def registry():
    manager = create_plugin_manager(entry_points=False)
    manager.register(LeadStatsPlugin(), "lead-stats", Source("grid-test", "0"))
    return manager.registry


class Messages(Reporter):
    def __init__(self):
        self.lines = []

    def message(self, text):
        self.lines.append(text)


def _grid_config(out):
    return resolve_config(None, {"aug": ["noise", "permute"], "encoder": ["cnn", "lead_stats"],
                                 "encoder_args": {"width": 4, "depth": 1}, "embed_dim": 8, "projection_dim": 8,
                                 "repeats": 2, "pretrain_epochs": 1, "finetune_epochs": 1,
                                 "methods": ["pretrained_linear"], "out": str(out), "device": "cpu"})


def test_two_by_two_grid_with_an_interrupted_cell_resumes_it_alone(tmp_path, registry):
    config = _grid_config(tmp_path / "grid")
    cells = grid_cells(config)
    assert [c.name for c in cells] == ["contrastive__noise__cnn", "contrastive__noise__lead_stats", "contrastive__permute__cnn", "contrastive__permute__lead_stats"]
    pretrain_epochs = []

    def interrupt(stage, epoch, epochs, record):
        if stage == "pretrain":
            pretrain_epochs.append(epoch)
            if len(pretrain_epochs) == 6:  # cell 3, repeat 2: repeat 1 of that cell is finished
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_grid(config, registry=registry, on_epoch_end=interrupt)
    assert not (tmp_path / "grid" / "grid.csv").exists()
    done = tmp_path / "grid" / "cells" / "contrastive__permute__cnn" / "repeats" / "repeat_1" / "labels_1" / "pretrained_linear.json"
    before = done.read_text()
    reporter = Messages()
    result = run_grid(config, registry=registry, reporter=reporter)
    finished = [line for line in reporter.lines if "already finished" in line]
    # cells 1 and 2 (2 repeats x pretraining + probe) and repeat 1 of the interrupted cell are reused, not rerun
    assert len(finished) == 2 * 4 + 2 and sum("pretraining already finished" in line for line in finished) == 5
    assert done.read_text() == before
    resumed = next(r for c, r in result.cells if c.name == "contrastive__permute__cnn")
    assert [r["repeat"] for r in resumed.rows] == [0, 1] and all(0 <= r["auroc"] <= 1 for r in resumed.rows)
    grid = pd.read_csv(tmp_path / "grid" / "grid.csv")
    assert sorted(grid["cell"]) == sorted(c.name for c in cells) and (grid["method"] == "pretrained_linear").all()
    assert grid["best"].sum() == 1
    best = grid[grid["best"]].iloc[0]
    assert best["auroc_mean"] == grid["auroc_mean"].max() and best["auroc_vs_best_mean"] == 0
    others = grid[~grid["best"]]
    assert (others["auroc_vs_best_mean"] <= 0).all() and (others["auroc_vs_best_n"] == 2).all()
    per_cell = {c.name: r for c, r in result.cells}
    row = others.iloc[0]
    diffs = [a["auroc"] - b["auroc"] for a, b in zip(per_cell[row["cell"]].rows, per_cell[best["cell"]].rows)]
    assert row["auroc_vs_best_mean"] == pytest.approx(sum(diffs) / 2)
    assert (tmp_path / "grid" / "grid.png").stat().st_size > 0
    for cell in cells:
        assert (tmp_path / "grid" / "cells" / cell.name / "summary.json").is_file()
    assert json.loads((tmp_path / "grid" / "config.json").read_text())["aug"] == ["noise", "permute"]


def test_grid_lists_in_toml_and_their_mistakes(tmp_path):
    config_file = tmp_path / "grid.toml"
    config_file.write_text('aug = ["noise", "permute:segments=3+noise"]\nencoder = ["cnn"]\nout = "o"\n')
    config = resolve_config(read_config_file(config_file))
    assert config.is_grid and [c.name for c in grid_cells(config)] == ["contrastive__noise__cnn", "contrastive__permute-segments=3+noise__cnn"]
    assert cell_name("byol:momentum=0.99", "clocs:strategy=cmsc", "cnn") == "byol-momentum=0.99__clocs-strategy=cmsc__cnn"
    assert cell_name("masked", None, "patch_transformer") == "masked__default__patch_transformer"
    config_file.write_text('encoder = ["cnn", "cnn"]\n')
    result = CliRunner().invoke(cli, ["run", "--config", str(config_file), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2 and "--encoder lists 'cnn' twice" in result.output


@pytest.mark.parametrize("args, message", [
    (["--aug", "noise", "--aug", "noise"], "--aug lists 'noise' twice"),
    (["--aug", "noise", "--aug", "nosie"], "nosie"),
    (["--encoder", "cnn", "--encoder", "cnn_lstn"], "cnn_lstn"),
])
def test_bad_grid_on_the_command_line_is_one_line_with_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["run", "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # checked before anything is written


def test_pretrain_refuses_a_grid(tmp_path):
    result = CliRunner().invoke(cli, ["pretrain", "--out", str(tmp_path / "p"), "--aug", "noise", "--aug", "permute"])
    assert result.exit_code == 2 and "a grid" in result.output
