"""Issue 13, items 4-8 and 11 on the training side, each reproducing a reported defect on a tiny real PTB-XL store.

4: a diverging run stops with one line (stage, repeat, epoch, hint), exit 2, the last good checkpoint kept, and
   NaN probabilities are never scored; 5: batch sizes that would skip every batch are refused, a lone last batch
   is trained on; 6: a second run into a locked --out fails at once naming the holder; 7: plugins that call
   sys.exit on import are failed plugins and their text is never rich markup; 8: user mistakes are one line;
   11: the small items.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ecgcl.cli.main import cli

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "16", "--val-fraction", "0.25", "--test-fraction", "0.25", "--device", "cpu"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip() and line.startswith("Error: ")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --- item 4: non-finite training stops; NaN probabilities are never scored ----------------------------------------

def test_diverging_pretraining_stops_with_one_line_and_keeps_the_last_good_epoch(tiny_store, tmp_path):
    out = tmp_path / "pre"
    result = invoke("pretrain", "--data", tiny_store, "--out", out, *TINY, "--lr", "1e10", "--pretrain-epochs", "2")
    line = one_line_error(result, "pretrain", "epoch", "--lr 1e+10")
    assert "final loss" not in result.output and not (out / "pretrain.pt").exists()
    epoch = int(line.split("in epoch ")[1].split(";")[0])
    if epoch > 1:  # the checkpoint of the last finished (finite) epoch stays for inspection
        state = torch.load(out / "pretrain.last.pt", weights_only=True)
        assert state["epoch"] == epoch - 1 and np.isfinite(state["history"][-1]["loss"])


def test_diverging_finetuning_in_a_run_names_the_repeat_and_writes_no_metrics(tiny_store, tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--data", tiny_store, "--out", out, *TINY, "--repeats", "1", "--methods", "supervised",
                    "--finetune-lr", "1e10", "--finetune-epochs", "3")
    one_line_error(result, "repeat 1", "finetune", "epoch", "--finetune-lr")
    assert not (out / "metrics.json").exists() and not (out / "summary.json").exists()


@pytest.fixture(scope="module")
def finetuned(tiny_store, tmp_path_factory):
    """A one-epoch supervised fine-tuning of the tiny store (its results folder)."""
    out = tmp_path_factory.mktemp("finetuned") / "ft"
    result = invoke("finetune", "--data", tiny_store, "--out", out, *TINY, "--finetune-epochs", "1")
    assert result.exit_code == 0, result.output
    return out


def test_nan_probabilities_are_never_scored(finetuned, tiny_store, tmp_path):
    state = torch.load(finetuned / "supervised.best.pt", weights_only=True)
    state["model"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                      for k, v in state["model"].items()}
    torch.save(state, tmp_path / "nan.best.pt")
    one_line_error(invoke("evaluate", tmp_path / "nan.best.pt", "--data", tiny_store), "non-finite probabilities")


# --- item 5: batch sizes ----------------------------------------------------------------------------------------

def test_batch_sizes_that_skip_every_batch_are_refused_up_front(tiny_store, tmp_path):
    tiny = [a if a != "16" else "1" for a in TINY]
    one_line_error(invoke("pretrain", "--data", tiny_store, "--out", tmp_path / "p", *tiny), "--batch-size 1")
    one_line_error(invoke("finetune", "--data", tiny_store, "--out", tmp_path / "f", *tiny), "--batch-size 1",
                   "batch norm")
    assert not list(tmp_path.rglob("*.pt"))  # refused before anything trained
    one_line_error(invoke("run", "--data", tiny_store, "--out", tmp_path / "r", *tiny), "--batch-size 1")
    assert not (tmp_path / "r" / "config.json").exists()  # refused before the results folder is written


def test_a_lone_last_record_joins_the_batch_before_it(tiny_store):
    from ecgcl.data.store import open_store
    from ecgcl.engine.loading import batch_loader

    store = open_store(tiny_store)
    rows = np.arange(9)
    sizes = [len(s) for s, _, _ in batch_loader(store, rows, None, 4, merge_single=True)]
    assert sizes == [4, 5]  # not [4, 4, 1] with the 1 skipped by batch norm
    assert [len(s) for s, _, _ in batch_loader(store, rows, None, 4)] == [4, 4, 1]  # prediction keeps every record


# --- item 6: one writer per results folder ------------------------------------------------------------------------

def write_lock(folder: Path, pid: int) -> Path:
    from ecgcl.locks import LOCK_NAME, process_start_time

    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    lock.write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "start_time": process_start_time(pid),
                                "started": "earlier", "command": "ecgcl run --out x"}))
    return lock


def test_a_second_run_into_a_locked_out_fails_at_once_naming_the_holder(tiny_store, tmp_path):
    out = tmp_path / "busy"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = write_lock(out, holder.pid)
        for command in ("run", "pretrain", "finetune"):
            result = invoke(command, "--data", tiny_store, "--out", out, *TINY)
            one_line_error(result, f"pid {holder.pid}", "in use")
        assert lock.exists() and sorted(p.name for p in out.iterdir()) == [lock.name]
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_dead_process_is_removed_and_reported(tmp_path):
    from ecgcl.locks import LOCK_NAME, hold_folder

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_lock(tmp_path / "out", dead.pid)
    notes = []
    with hold_folder(tmp_path / "out", notify=notes.append) as folder:
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert len(notes) == 1 and str(dead.pid) in notes[0] and "no longer running" in notes[0]
    assert not (tmp_path / "out" / LOCK_NAME).exists()


# --- item 7: plugins ------------------------------------------------------------------------------------------------

EXITING = "import sys\nsys.exit(3)\n"
MARKUP = "raise ImportError('needs [bold]frob[/] and [/] too')\n"


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    from importlib.metadata import EntryPoint

    import ecgcl.manager as manager_module

    def install(**modules: str) -> None:
        points = []
        for name, source in modules.items():
            (tmp_path / f"{name}.py").write_text(source)
            points.append(EntryPoint(name=name, value=name, group="ecgcl"))
        monkeypatch.setattr(manager_module, "entry_points", lambda group: points if group == "ecgcl" else [])
        manager_module.get_plugin_manager.cache_clear()

    monkeypatch.syspath_prepend(str(tmp_path))
    yield install
    manager_module.get_plugin_manager.cache_clear()


def test_a_plugin_calling_sys_exit_is_a_failed_plugin(plugins, monkeypatch):
    from ecgcl.errors import PluginLoadError
    from ecgcl.manager import create_plugin_manager

    plugins(bad_exit=EXITING)
    manager = create_plugin_manager()
    (failure,) = manager.failures
    assert failure.name == "bad_exit" and "sys.exit(3)" in failure.error
    assert "cnn" in manager.registry.names("encoder")
    listed = invoke("list-plugins")
    assert listed.exit_code == 0 and "bad_exit" in listed.output
    monkeypatch.setenv("ECGCL_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="bad_exit"):
        create_plugin_manager()


@pytest.mark.parametrize("spelling", ["bad-exit", "BAD_EXIT", "bad.exit"])
def test_disable_plugins_normalises_names(plugins, monkeypatch, spelling):
    from ecgcl.manager import create_plugin_manager

    plugins(bad_exit=EXITING)
    monkeypatch.setenv("ECGCL_DISABLE_PLUGINS", spelling)
    assert create_plugin_manager().failures == []


def test_plugin_text_is_printed_as_text_not_markup(plugins, monkeypatch):
    from rich.console import Console

    import ecgcl.cli.render as render

    plugins(markup_plugin=MARKUP)
    wide = Console(record=True, width=400)
    monkeypatch.setattr(render, "error_console", wide)
    result = invoke("list-plugins")
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "needs [bold]frob[/] and [/] too" in wide.export_text()


# --- item 8: user mistakes are one line ---------------------------------------------------------------------------

def test_evaluate_batch_size_zero_and_device_meta(finetuned, tiny_store, tmp_path):
    best = finetuned / "supervised.best.pt"
    one_line_error(invoke("evaluate", best, "--data", tiny_store, "--batch-size", "0"), "--batch-size")
    one_line_error(invoke("evaluate", best, "--data", tiny_store, "--device", "meta"), "--device 'meta'")
    one_line_error(invoke("finetune", "--data", tiny_store, "--out", tmp_path / "m", *TINY[:-2], "--device", "meta"),
                   "--device 'meta'")


def test_binary_config_file(tiny_store, tmp_path):
    config = tmp_path / "run.toml"
    config.write_bytes(b"\x00\x01\xff\xfe binary")
    one_line_error(invoke("finetune", "--data", tiny_store, "--config", config, "--out", tmp_path / "o"),
                   "run.toml", "not a text file")


@pytest.mark.parametrize("manifest", [{}, {"fs": "hundred"}, [1, 2]])
def test_damaged_manifest_is_one_line(tiny_store, tmp_path, manifest):
    import shutil

    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    original = json.loads((store / "manifest.json").read_text())
    if isinstance(manifest, dict) and manifest:
        manifest = {**original, **manifest}
    (store / "manifest.json").write_text(json.dumps(manifest))
    one_line_error(invoke("finetune", "--data", store, "--out", tmp_path / "o", *TINY), "manifest.json")


@pytest.mark.parametrize("name", ["r[/]x", "[bold]res[ults"])
def test_paths_with_brackets_are_printed_as_text(tiny_store, tmp_path, name):
    out = tmp_path / name
    result = invoke("run", "--data", tiny_store, "--out", out, *TINY, "--repeats", "1", "--methods", "random_linear",
                    "--pretrain-epochs", "0", "--finetune-epochs", "1")
    assert result.exit_code == 0, result.output
    assert f"Results in {out}/" in result.output.replace("\n", "")


def test_run_out_below_a_file(tiny_store, tmp_path):
    (tmp_path / "file").write_text("x")
    one_line_error(invoke("run", "--data", tiny_store, "--out", tmp_path / "file" / "r", *TINY), "file")


# --- item 11: small items -----------------------------------------------------------------------------------------

def test_checkpoints_follow_the_umask(tmp_path):
    from ecgcl.engine.checkpoint import save_checkpoint

    previous = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "a.pt", {"kind": "encoder"})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_dropout_is_checked_before_pretraining(tiny_store, tmp_path):
    out = tmp_path / "run"
    one_line_error(invoke("run", "--data", tiny_store, "--out", out, *TINY, "--dropout", "1.5"), "--dropout")
    assert not (out / "repeats").exists()


def test_pretrain_epochs_zero_does_not_suggest_methods(tiny_store, tmp_path):
    line = one_line_error(invoke("pretrain", "--data", tiny_store, "--out", tmp_path / "p", *TINY,
                                 "--pretrain-epochs", "0"), "--pretrain-epochs")
    assert "--methods" not in line


def test_finetune_leaves_no_resume_file(finetuned):
    assert (finetuned / "supervised.best.pt").is_file() and not list(finetuned.glob("*.last.pt"))
