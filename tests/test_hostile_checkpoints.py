"""A crafted checkpoint never runs code: every path that loads one (evaluate, finetune --checkpoint, resume)
loads with `weights_only=True` and refuses anything but tensors, numbers, strings, lists and dicts."""

from __future__ import annotations

import os

import pytest
import torch
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.engine.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from ecgcl.errors import EcgclError


class _Payload:
    """Pickles as a call to os.system: loading it unsafely would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _malicious(path, marker):
    torch.save({"format": FORMAT, "kind": "classifier", "meta": {}, "model": _Payload(marker)}, path)
    return path


def test_load_checkpoint_refuses_a_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(EcgclError, match="is not an ecgcl checkpoint"):
        load_checkpoint(_malicious(tmp_path / "evil.pt", marker))
    assert not marker.exists()


def test_everything_ecgcl_writes_loads_back_safely(tmp_path):
    import numpy as np

    payload = {"meta": {"leads": ("I", "II"), "fs": np.float64(100.0), "ids": np.arange(3), "path": tmp_path},
               "state": {"w": torch.ones(2)}, "optimizer": torch.optim.AdamW([torch.zeros(1, requires_grad=True)]).state_dict()}
    loaded = load_checkpoint(save_checkpoint(tmp_path / "ok.pt", payload))
    assert loaded["meta"]["fs"] == 100.0 and loaded["meta"]["ids"] == [0, 1, 2]
    assert loaded["meta"]["path"] == str(tmp_path) and torch.equal(loaded["state"]["w"], torch.ones(2))


def test_cli_commands_refuse_a_malicious_checkpoint(tiny_store, tmp_path):
    marker = tmp_path / "pwned"
    evil = _malicious(tmp_path / "evil.pt", marker)
    runner = CliRunner()
    evaluated = runner.invoke(cli, ["evaluate", str(evil), "--data", str(tiny_store)])
    tuned = runner.invoke(cli, ["finetune", "--checkpoint", str(evil), "--data", str(tiny_store),
                                "--out", str(tmp_path / "ft")])
    for result in (evaluated, tuned):
        assert result.exit_code == 2 and "is not an ecgcl checkpoint" in result.output, result.output
        assert "Traceback" not in result.output
    assert not marker.exists()


def test_resume_refuses_a_planted_last_checkpoint(tiny_store, tmp_path):
    from ecgcl.config import resolve_config
    from ecgcl.protocol.runner import run_protocol

    out = tmp_path / "results"
    marker = tmp_path / "pwned"
    (out / "repeats" / "repeat_1").mkdir(parents=True)
    _malicious(out / "repeats" / "repeat_1" / "pretrain.last.pt", marker)
    config = resolve_config(None, {"data": str(tiny_store), "encoder_args": {"width": 4, "depth": 1}, "embed_dim": 8,
                                   "projection_dim": 8, "batch_size": 32, "pretrain_epochs": 1, "finetune_epochs": 1,
                                   "repeats": 1, "methods": ["pretrained_linear"], "out": str(out), "device": "cpu"})
    with pytest.raises(EcgclError, match="is not an ecgcl checkpoint"):
        run_protocol(config)
    assert not marker.exists()
