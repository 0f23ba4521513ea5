"""Options declared once (`RunConfig` fields) serve click and the TOML config; --resume/--overwrite everywhere."""

from __future__ import annotations

import json
from dataclasses import fields

import click
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import EcgclGroup, cli
from ecgcl.cli.config_options import ConfigCommand, config_options, resume_options
from ecgcl.config import RunConfig, config_from_options, option_name


@click.group(cls=EcgclGroup)
def group() -> None:
    """A group holding one command that prints its resolved config (no training)."""


@group.command("show", cls=ConfigCommand)
@config_options("run")
@resume_options
def show(resume, overwrite, config_file, **params) -> None:
    click.echo(json.dumps(config_from_options(params).to_dict()))


def resolved(*args) -> dict:
    result = CliRunner().invoke(group, ["show", *map(str, args)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_defaults_are_the_run_config_defaults():
    assert resolved() == RunConfig().to_dict()
    assert RunConfig().encoder_args == {}  # each encoder's own signature gives its defaults


def test_config_file_then_command_line(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('encoder = "cnn_lstm"\nrepeats = 5\nlabel-fraction = [0.1, 1.0]\nmethods = "supervised"\n'
                    '[encoder_args]\nwidth = 8\nnorm = "group"\n')
    config = resolved("--config", path, "--repeats", "2", "--encoder-arg", "depth=1", "--encoder-arg", "width=4")
    assert config["encoder"] == "cnn_lstm" and config["repeats"] == 2 and config["label_fractions"] == [0.1, 1.0]
    assert config["methods"] == ["supervised"]
    # pairs given on the command line add to (and override) the file's
    assert config["encoder_args"] == {"width": 4, "norm": "group", "depth": 1}
    assert resolved("--config", path)["encoder_args"] == {"width": 8, "norm": "group"}


def test_resume_takes_the_saved_config_and_the_command_line_still_wins(tmp_path):
    RunConfig(repeats=4, encoder_args={"width": 4}, out=str(tmp_path)).save(tmp_path)
    config = resolved("--resume", "--out", tmp_path, "--device", "cpu")
    assert config["repeats"] == 4 and config["encoder_args"] == {"width": 4} and config["device"] == "cpu"


@pytest.mark.parametrize("args, message", [
    (["--resume", "--overwrite"], "--resume and --overwrite contradict each other"),
    (["--resume", "--out", "nowhere"], "--resume: nowhere/config.json does not exist"),
    (["--resume", "--config", "x.toml"], "--resume takes the settings from OUT/config.json; drop --config"),
    (["--config", "missing.toml"], "config file missing.toml does not exist"),
    (["--encoder-arg", "width"], "--encoder-arg expects key=value"),
])
def test_option_mistakes_are_one_line(args, message):
    result = CliRunner().invoke(group, ["show", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_config_keys_of_other_commands_are_ignored_and_unknown_ones_refused(tmp_path):
    saved = RunConfig(repeats=7, embed_dim=8).save(tmp_path)  # a run's config.json read by `pretrain`
    result = CliRunner().invoke(cli, ["pretrain", "--config", saved, "--data", tmp_path / "nostore"])
    assert result.exit_code == 2 and "unknown option" not in result.output and "is not an ecgcl store" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text("bach_size = 3\n")
    result = CliRunner().invoke(cli, ["evaluate", "x.pt", "--data", "y", "--config", bad])
    assert result.exit_code == 2 and "unknown option 'bach_size' (did you mean 'batch_size'?)" in result.output


@pytest.mark.parametrize("command", ["run", "pretrain", "finetune", "evaluate"])
def test_every_declared_option_is_on_its_commands_with_its_help(command):
    text = CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output
    for f in fields(RunConfig):
        if command in f.metadata["commands"]:
            assert option_name(f.name) in text and f.metadata["help"] in text
        else:
            assert f.metadata["help"] not in text
    assert "--batch-size INTEGER" in text and "Batch size.  [default: 64]" in text
    if command != "evaluate":
        assert "--resume" in text and "Discard earlier results in --out and start again." in text


@pytest.mark.parametrize("command", ["pretrain", "run"])
def test_pretraining_help_names_no_single_objective(command):
    """Pretraining runs whichever --objective is chosen (six built in), so its help never calls it contrastive."""
    text = CliRunner().invoke(cli, [command, "--help"], terminal_width=200).output
    assert "contrastive pretraining" not in text.lower()
    assert "Self-supervised pretraining epochs (any --objective)." in text
    if command == "pretrain":
        assert "Self-supervised pretraining on a store with one --objective" in text
