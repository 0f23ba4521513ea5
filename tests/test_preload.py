"""`--preload`: the records held in host memory (or on the GPU) give exactly the loader path's batches; `auto`
falls back when the pool does not fit; under DDP each rank holds its own shard; impossible choices are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.sample import sample_store_path
from ecgcl.data.store import open_store
from ecgcl.engine import loading
from ecgcl.engine.checkpoint import load_checkpoint
from ecgcl.engine.preload import AUTO_SHARE, PreloadedDataset, choose_preload, pool_bytes
from ecgcl.engine.speed import TrainOptions
from ecgcl.errors import EcgclError

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--device", "cpu"]


def invoke(*args):
    outcome = CliRunner().invoke(cli, [str(a) for a in args])
    assert outcome.exit_code == 0, outcome.output
    return outcome


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_pretraining_from_ram_equals_the_loader(tmp_path):
    for mode in ("off", "ram"):
        invoke("pretrain", "--out", tmp_path / mode, "--pretrain-epochs", "2", "--preload", mode, *TINY)
    off, ram = (load_checkpoint(tmp_path / m / "pretrain.pt") for m in ("off", "ram"))
    assert [h["loss"] for h in off["history"]] == [h["loss"] for h in ram["history"]]
    assert same_state(off["encoder"], ram["encoder"])


def test_fine_tuning_from_ram_equals_the_loader(tmp_path):
    rows = {}
    for mode in ("off", "ram"):
        invoke("run", "--out", tmp_path / mode, "--repeats", "1", "--pretrain-epochs", "1", "--finetune-epochs", "3",
               "--methods", "pretrained_finetune,supervised", "--preload", mode, *TINY)
        rows[mode] = json.loads((tmp_path / mode / "metrics.json").read_text())
    for off, ram in zip(rows["off"], rows["ram"]):
        assert off["method"] == ram["method"] and off["auroc"] == ram["auroc"] and off["history"] == ram["history"]
    for best in (tmp_path / "off").glob("repeats/**/*.best.pt"):
        twin = tmp_path / "ram" / best.relative_to(tmp_path / "off")
        assert same_state(load_checkpoint(best)["model"], load_checkpoint(twin)["model"])


def test_preloaded_batches_are_the_stores_float32_values():
    store = open_store(sample_store_path())
    rows = np.array([5, 1, 300, 42])
    targets = np.arange(len(store), dtype=np.float32)
    held = PreloadedDataset(store, rows, targets, torch.device("cpu"))
    signals, y, patients = held.__getitems__([2, 0, 3])[0]
    assert signals.dtype == torch.float32
    np.testing.assert_array_equal(signals.numpy(), store.read(rows[[2, 0, 3]]))
    assert y.tolist() == [300.0, 5.0, 42.0] and patients.tolist() == store.patient_codes[rows[[2, 0, 3]]].tolist()


def test_auto_takes_the_gpu_only_when_the_pool_fits(monkeypatch):
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (8 * 2**30, 80 * 2**30))
    assert choose_preload("auto", cuda, 3 * 2**30) == "device"
    assert choose_preload("auto", cuda, 5 * 2**30) == "off"  # more than AUTO_SHARE of the 8 GiB free
    assert choose_preload("auto", cuda, 3 * 2**30, budget_gb=1.0) == "off"  # a tiny budget: the loader
    assert choose_preload("auto", cuda, 2**29, budget_gb=1.0) == "device"
    assert choose_preload("auto", torch.device("cpu"), 1) == "off"  # on CPU the memory map is host memory
    with pytest.raises(EcgclError, match="more than 50% of the 8.00 GiB free"):
        choose_preload("device", cuda, 5 * 2**30)
    assert AUTO_SHARE == 0.5


@pytest.mark.parametrize("args, message", [
    (["--preload", "device"], "--preload device needs a CUDA device; this run is on cpu"),
    (["--preload", "ram", "--preload-budget", "0.0001"], "--preload ram: the training records take"),
    (["--preload", "ram", "--preload-budget", "-1"], "--preload-budget must be a positive number"),
    (["--preload", "disk"], "Invalid value for '--preload'"),
])
def test_impossible_preloads_are_one_line(tmp_path, args, message):
    outcome = CliRunner().invoke(cli, ["pretrain", "--out", str(tmp_path / "x"), "--pretrain-epochs", "1", *TINY,
                                       *args])
    assert outcome.exit_code == 2 and message in outcome.output and "Traceback" not in outcome.output


def test_each_rank_preloads_its_own_shard(monkeypatch):
    store = open_store(sample_store_path())
    rows = np.arange(3, 303)
    options = TrainOptions(preload="ram")
    shards = []
    for this_rank in (0, 1):
        monkeypatch.setattr(loading, "world_size", lambda: 2)
        monkeypatch.setattr(loading, "rank", lambda r=this_rank: r)
        loader = loading.pretraining_loader(store, rows, 32, seed=7, options=options, device=torch.device("cpu"))
        assert isinstance(loader.dataset, PreloadedDataset) and loader.batch_size == 16
        assert loader.dataset.signals.shape[0] == 150  # half the pool, never all of it
        shards.append(set(loader.dataset.indices.tolist()))
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(rows.tolist())
    assert pool_bytes(store, rows) == 300 * 12 * 1000 * 4


def test_preload_under_torchrun_with_two_gloo_processes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone", "-m",
               "ecgcl.cli", "pretrain", "--out", str(tmp_path / "ddp"), "--pretrain-epochs", "2", "--preload", "ram",
               "--batch-size", "32", "--encoder-arg", "norm=group", *TINY]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(preload ram)" in result.stdout
    history = load_checkpoint(tmp_path / "ddp" / "pretrain.pt")["history"]
    assert len(history) == 2 and all(np.isfinite(h["loss"]) for h in history)
