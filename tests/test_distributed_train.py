"""Multi-process pretraining through real torchrun (gloo, CPU) equals one process with the same global batch.

Settings that make the two comparable: `--aug none` (augmentation draws differ per rank by design),
dropout 0 and `norm=group` (per-sample statistics; BatchNorm would see each rank's half batch, and
SyncBatchNorm is GPU-only). Each torchrun launch costs a few seconds of interpreter start-up per rank.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.engine.checkpoint import load_checkpoint, save_checkpoint

TINY = ["--aug", "none", "--encoder", "cnn", "--encoder-arg", "width=8", "--encoder-arg", "depth=1",
        "--encoder-arg", "norm=group", "--encoder-arg", "dropout=0", "--embed-dim", "16", "--projection-dim", "16",
        "--batch-size", "16", "--device", "cpu", "--seed", "3"]
WRITTEN = {"config.json", "pretrain.last.pt", "pretrain.pt", "history.jsonl", "training_curves.png"}


def _single(store: Path, out: Path, epochs: int) -> None:
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(store), "--out", str(out), *TINY,
                                      "--pretrain-epochs", str(epochs)])
    assert result.exit_code == 0, result.output


def _torchrun(store: Path, out: Path, epochs: int, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--standalone",
               "-m", "ecgcl.cli", "pretrain", "--data", str(store), "--out", str(out), *TINY,
               "--pretrain-epochs", str(epochs)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180, cwd=out.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _interrupted_after_first_epoch(out: Path, epochs: int) -> None:
    """Turn a finished 1-epoch run into what a `epochs`-epoch run leaves when stopped after its first epoch.

    Nothing of epoch 1 depends on the total number of epochs (no schedule), so the only differences are the
    settings fingerprint in the resume file and config.json; the final `pretrain.pt` is not there yet.
    """
    state = load_checkpoint(out / "pretrain.last.pt")
    state["fingerprint"]["config"]["pretrain_epochs"] = epochs
    save_checkpoint(out / "pretrain.last.pt", {k: v for k, v in state.items() if k != "format"})
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "pretrain_epochs": epochs}))
    (out / "pretrain.pt").unlink()


def _assert_same_training(reference: Path, other: Path) -> None:
    a, b = load_checkpoint(reference / "pretrain.pt"), load_checkpoint(other / "pretrain.pt")
    assert [h["epoch"] for h in a["history"]] == [h["epoch"] for h in b["history"]]
    for x, y in zip(a["history"], b["history"]):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-5, abs=1e-6)
    assert a["encoder"].keys() == b["encoder"].keys()
    for name in a["encoder"]:
        torch.testing.assert_close(b["encoder"][name], a["encoder"][name], rtol=1e-4, atol=1e-5, msg=name)


@pytest.fixture(scope="module")
def reference(tiny_store, tmp_path_factory) -> Path:
    """An uninterrupted single-process 2-epoch run."""
    out = tmp_path_factory.mktemp("single") / "out"
    _single(tiny_store, out, 2)
    return out


def test_two_ranks_match_one_process_and_only_rank_0_writes(tiny_store, reference, tmp_path):
    out = tmp_path / "two"
    result = _torchrun(tiny_store, out, 2)
    _assert_same_training(reference, out)
    assert {p.name for p in out.iterdir()} == WRITTEN == {p.name for p in reference.iterdir()}
    assert not list(tmp_path.glob("**/*rank*")) and not list(tmp_path.glob("**/*.log"))
    assert result.stdout.count("pretrained cnn for 2 epochs on 2 processes (gloo)") == 1  # rank 0 alone reports
    assert result.stdout.count("throughput:") == 1
    for epoch in (1, 2):  # one plain line per epoch (output is not a terminal), from rank 0 only
        assert sum(line.startswith(f"pretrain · epoch {epoch}/2") for line in result.stdout.splitlines()) == 1
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1, 2] and "knn" in history[-1]
    first = load_checkpoint(out / "pretrain.last.pt")
    assert first["epoch"] == 2 and first["meta"]["encoder_args"]["norm"] == "group"


def test_resume_across_a_changed_number_of_ranks(tiny_store, reference, tmp_path):
    # two ranks stop after epoch 1, one process finishes
    two_then_one = tmp_path / "two_then_one"
    _torchrun(tiny_store, two_then_one, 1)
    _interrupted_after_first_epoch(two_then_one, 2)
    _single(tiny_store, two_then_one, 2)
    _assert_same_training(reference, two_then_one)
    # one process stops after epoch 1, two ranks finish
    one_then_two = tmp_path / "one_then_two"
    _single(tiny_store, one_then_two, 1)
    _interrupted_after_first_epoch(one_then_two, 2)
    result = _torchrun(tiny_store, one_then_two, 2)
    assert "pretrained cnn for 2 epochs on 2 processes" in result.stdout
    _assert_same_training(reference, one_then_two)
    assert {p.name for p in one_then_two.iterdir()} == WRITTEN


def _error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (["--launcher", "torchrun", "--nproc-per-node", "0"], "--nproc-per-node must be at least 1"),
    (["--launcher", "torchrun", "--nproc-per-node", "3"], "--batch-size 16 must be divisible by the 3 processes"),
    (["--launcher", "torchrun", "--nproc-per-node", "2", "--nnodes", "2"], "needs --rdzv-endpoint"),
    (["--launcher", "torchrun", "--nproc-per-node", "2", "--device", "cuda"], "CUDA is not available"),
    (["--encoder-arg", "norm=layer"], "norm must be one of batch, group, none"),
])
def test_launcher_mistakes_exit_2_with_one_line(tiny_store, tmp_path, args, message):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(tiny_store), "--out", str(tmp_path / "o"),
                                      *TINY, *args])
    assert message in _error_line(result)
    assert not (tmp_path / "o").exists()


def test_torchrun_environment_errors(tiny_store, tmp_path, monkeypatch):
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": "29999"}.items():
        monkeypatch.setenv(name, value)
    if not torch.cuda.is_available():  # fails before any rendezvous, so nothing waits for rank 1
        result = CliRunner().invoke(cli, ["pretrain", "--data", str(tiny_store), "--out", str(tmp_path / "o"),
                                          *TINY, "--device", "cuda"])
        assert "CUDA is not available" in _error_line(result)
    result = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--out", str(tmp_path / "r")])
    assert "runs in one process, but torchrun started 2" in _error_line(result)
    result = CliRunner().invoke(cli, ["pretrain", "--data", str(tiny_store), "--out", str(tmp_path / "o"), *TINY,
                                      "--launcher", "torchrun"])
    assert "inside a process torchrun already started" in _error_line(result)
