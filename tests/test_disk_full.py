"""A full disk (or a folder without permission) is one line at every write: `Error: cannot write the <what> <path>:
<reason> (...)`, exit code 2, no traceback, no temporary file left; a rerun after space is freed continues from the
last finished epoch and ends as an uninterrupted run does.

Most tests patch `ecgcl.files` (the one writer every checkpoint, table, plot and embedding goes through) so that
the write of a chosen file fails as a full disk fails: the temporary file is created and its first write raises
`OSError(ENOSPC)` inside the real writer (torch.save, pandas, matplotlib, numpy). The last test fills a real
tmpfs, mounted in a user namespace; it skips where such a mount is impossible.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import ecgcl.files
from ecgcl.cli.main import cli
from ecgcl.engine.checkpoint import load_checkpoint

TINY = ["--repeats", "1", "--pretrain-epochs", "2", "--finetune-epochs", "2", "--encoder-arg", "width=4",
        "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8", "--batch-size", "16",
        "--val-fraction", "0.25", "--test-fraction", "0.25", "--device", "cpu", "--methods", "pretrained_linear",
        "--aug", "permute+noise"]
METRICS = ("accuracy", "precision", "recall", "f1", "auroc", "pr_auc", "best_epoch", "threshold")
NO_SPACE = "No space left on device"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def run_args(store: Path, out: Path) -> list:
    return ["run", "--data", store, "--out", out, *TINY]


class FullDisk:
    """Patches `ecgcl.files` so that the `nth` write of a file named `name` fails: a temporary file is created
    beside it as usual, then its first write raises `OSError(error, ...)` (`when="create"`: creating the temporary
    file raises, as a folder without write permission does). Records the name of every file written."""

    def __init__(self, monkeypatch, name: str, *, nth: int = 1, error: int = errno.ENOSPC, when: str = "write"):
        self.name, self.nth, self.error, self.when = name, nth, error, when
        self.seen = 0
        self.written: list[str] = []
        self.pending: dict[int, str] = {}
        monkeypatch.setattr(ecgcl.files, "tempfile", _Proxy(ecgcl.files.tempfile, mkstemp=self.mkstemp))
        monkeypatch.setattr(ecgcl.files, "os", _Proxy(ecgcl.files.os, fdopen=self.fdopen))

    def mkstemp(self, *, prefix: str, suffix: str, dir):
        import tempfile

        target = prefix[1:-1]  # atomic_write's temporary files are named .NAME.XXXX.tmp
        self.written.append(target)
        failing = target == self.name and len([w for w in self.written if w == self.name]) == self.nth
        if failing and self.when == "create":
            raise PermissionError(self.error, os.strerror(self.error), os.path.join(dir, prefix + "x" + suffix))
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=dir)
        if failing:
            self.pending[fd] = target
        return fd, tmp

    def fdopen(self, fd: int, *args, **kwargs):
        handle = os.fdopen(fd, *args, **kwargs)
        if self.pending.pop(fd, None) is None:
            return handle
        self.seen += 1
        return _FullHandle(handle, self.error)


class _Proxy:
    """A module with some functions replaced."""

    def __init__(self, module, **replaced):
        self._module, self._replaced = module, replaced

    def __getattr__(self, name):
        return self._replaced[name] if name in self._replaced else getattr(self._module, name)


class _FullHandle:
    """A binary file handle on a disk with no space left: every write raises."""

    def __init__(self, handle, error: int):
        self._handle, self._error = handle, error

    def write(self, data) -> int:
        raise OSError(self._error, os.strerror(self._error))

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


def one_write_error(result, what: str, path: Path, reason: str = NO_SPACE) -> str:
    """Exit 2, exactly one `Error:` line naming `what` and `path`, no traceback; returns the line."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0] == lines[0].strip() and f"cannot write the {what} {path}: {reason}" in lines[0], lines[0]
    return lines[0]


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp" in p.name]


def unit_metrics(out: Path) -> list[tuple]:
    rows = json.loads((out / "metrics.json").read_text())
    return sorted((r["method"], r["label_fraction"], *(r.get(m) for m in METRICS)) for r in rows)


@pytest.fixture(scope="module")
def finished(tiny_store, tmp_path_factory) -> Path:
    """An uninterrupted tiny run: the reference a resumed run must equal, and a finished folder to rerun."""
    out = tmp_path_factory.mktemp("disk_full") / "reference"
    result = invoke(*run_args(tiny_store, out))
    assert result.exit_code == 0, result.output
    return out


def test_a_full_disk_at_the_first_checkpoint_is_one_line(tiny_store, tmp_path, monkeypatch):
    disk = FullDisk(monkeypatch, "pretrain.last.pt")
    out = tmp_path / "run"
    line = one_write_error(invoke(*run_args(tiny_store, out)), "checkpoint",
                           out / "repeats" / "repeat_1" / "pretrain.last.pt")
    assert line.endswith("(free space and run the same command again: finished epochs are kept)"), line
    assert disk.seen == 1 and not temporaries(out)
    assert not (out / "repeats" / "repeat_1" / "pretrain.last.pt").exists()


@pytest.mark.parametrize(("name", "what"), [("metrics.json", "results table"), ("summary.csv", "results table"),
                                            ("label_efficiency.png", "plot"), ("loss_curves.png", "plot")])
def test_a_full_disk_at_a_results_file_or_plot_is_one_line_and_the_old_file_stays(finished, tmp_path, monkeypatch,
                                                                                   tiny_store, name, what):
    out = tmp_path / "run"
    shutil.copytree(finished, out)  # a finished run written again: every unit is reused, only the results rewritten
    before = (out / name).read_bytes()
    disk = FullDisk(monkeypatch, name)
    result = invoke(*run_args(tiny_store, out))
    one_write_error(result, what, out / name)
    assert "already finished" in result.output  # nothing was trained again
    assert disk.seen == 1 and not temporaries(out)
    assert (out / name).read_bytes() == before


def test_no_permission_in_the_results_folder_is_one_line(finished, tmp_path, monkeypatch, tiny_store):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    FullDisk(monkeypatch, "summary.json", error=errno.EACCES, when="create")  # root ignores chmod, so patched
    line = one_write_error(invoke(*run_args(tiny_store, out)), "results table", out / "summary.json",
                           "Permission denied")
    assert f"(make {out} writable and run the same command again)" in line
    assert not temporaries(out)


@pytest.mark.parametrize(("name", "what"), [("emb.npy", "embeddings"), ("emb.ids.csv", "embedding ids")])
def test_a_full_disk_at_embed_output_is_one_line_and_leaves_no_file(finished, tiny_store, tmp_path, monkeypatch,
                                                                    name, what):
    checkpoint = finished / "repeats" / "repeat_1" / "pretrain.pt"
    FullDisk(monkeypatch, name)
    line = one_write_error(invoke("embed", checkpoint, "--data", tiny_store, "--out", tmp_path / "emb.npy",
                                  "--device", "cpu"), what, tmp_path / name)
    assert line.endswith("(free space and run the same command again)"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither file, nor a temporary one
    monkeypatch.undo()
    assert invoke("embed", checkpoint, "--data", tiny_store, "--out", tmp_path / "emb.npy",
                  "--device", "cpu").exit_code == 0  # the same command, once there is space
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.ids.csv", "emb.npy"]


@pytest.mark.parametrize("name", ["model.safetensors", "README.md"])
def test_a_full_disk_at_export_is_one_line_and_leaves_no_folder(finished, tmp_path, monkeypatch, name):
    checkpoint = finished / "repeats" / "repeat_1" / "pretrain.pt"
    real = Path.write_bytes

    def write_bytes(self, data):
        if self.name == name:
            with open(self, "wb") as handle:  # part of it, then the disk is full
                handle.write(bytes(data)[:10])
            raise OSError(errno.ENOSPC, NO_SPACE)
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    what = {"model.safetensors": "model weights", "README.md": "model card"}[name]
    one_write_error(invoke("export", checkpoint, tmp_path / "model"), what, tmp_path / "model" / name)
    assert list(tmp_path.iterdir()) == []  # no half folder, no staged .model.*.tmp folder


def test_other_exceptions_of_a_writer_are_not_turned_into_a_write_error(tmp_path):
    def broken(handle):
        handle.write(b"half")
        raise ValueError("a bug, not a disk")

    with pytest.raises(ValueError, match="a bug"):
        ecgcl.files.atomic_write(tmp_path / "x.json", broken, what="results table")
    assert list(tmp_path.iterdir()) == []


def test_a_run_stopped_by_a_full_disk_at_epoch_2_resumes_and_equals_the_uninterrupted_run(finished, tiny_store,
                                                                                          tmp_path, monkeypatch):
    out = tmp_path / "run"
    last = out / "repeats" / "repeat_1" / "pretrain.last.pt"
    FullDisk(monkeypatch, "pretrain.last.pt", nth=2)
    one_write_error(invoke(*run_args(tiny_store, out)), "checkpoint", last)
    assert not temporaries(out)
    assert load_checkpoint(last)["epoch"] == 1  # the last finished epoch is kept
    monkeypatch.undo()

    spy = FullDisk(monkeypatch, "no such file")  # fails nothing; records what is written
    result = invoke(*run_args(tiny_store, out))  # the same command, once there is space
    assert result.exit_code == 0, result.output
    assert spy.written.count("pretrain.last.pt") == 1  # only epoch 2 was trained again
    assert unit_metrics(out) == unit_metrics(finished)
    resumed, whole = (load_checkpoint(f / "repeats" / "repeat_1" / "pretrain.pt") for f in (out, finished))
    assert resumed["history"] == whole["history"] and len(whole["history"]) == 2
    assert all(torch.equal(resumed["encoder"][k], v) for k, v in whole["encoder"].items())


# ---- a real full disk: a small tmpfs mounted in a user namespace ---------------------------------------------------

def _tmpfs_works(folder: Path) -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    folder.mkdir(exist_ok=True)
    try:
        done = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{folder}'"],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def test_a_real_full_tmpfs_stops_a_run_with_one_line_and_the_rerun_finishes_it(finished, tiny_store, tmp_path):
    disk, kept = tmp_path / "disk", tmp_path / "kept"
    if not _tmpfs_works(disk):
        pytest.skip("cannot mount a tmpfs here (needs `unshare -rm` and a user namespace)")
    kept.mkdir()
    # pages for the lock, the config, the split and one pretraining resume file with some to spare, but not for
    # its replacement at epoch 2 (the temporary file and the previous epoch's file are on the disk together)
    last_pages = -(-(finished / "repeats" / "repeat_1" / "pretrain.last.pt").stat().st_size // 4096)
    assert last_pages >= 3
    size = 4096 * (4 + last_pages + last_pages // 2)
    command = " ".join(f"'{a}'" for a in [sys.executable, "-m", "ecgcl.cli", *run_args(tiny_store, disk / "run")])
    script = f"""
        mount -t tmpfs -o size={size} tmpfs '{disk}' || exit 99
        {command} > '{kept}/first.out' 2> '{kept}/first.err'; echo $? > '{kept}/first.rc'
        find '{disk}' -name '*.tmp' > '{kept}/leftovers'
        '{sys.executable}' -c "import torch; print(torch.load('{disk}/run/repeats/repeat_1/pretrain.last.pt', \
            weights_only=True)['epoch'])" > '{kept}/kept_epoch'
        mount -o remount,size=256m tmpfs '{disk}'
        {command} > '{kept}/second.out' 2> '{kept}/second.err'; echo $? > '{kept}/second.rc'
        cp -r '{disk}/run' '{kept}/run'
    """
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    first_err = (kept / "first.err").read_text()
    assert (kept / "first.rc").read_text().strip() == "2", first_err
    errors = [line for line in first_err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in first_err, first_err
    assert f"cannot write the checkpoint {disk}/run/repeats/repeat_1/pretrain.last.pt: {NO_SPACE}" in errors[0]
    assert (kept / "leftovers").read_text().strip() == ""
    assert (kept / "kept_epoch").read_text().strip() == "1"
    assert (kept / "second.rc").read_text().strip() == "0", (kept / "second.err").read_text()
    # a separate process (inside a user namespace) may round float32 sums in another order: equal to 1e-6
    resumed, reference = unit_metrics(kept / "run"), unit_metrics(finished)
    assert len(resumed) == len(reference)
    for got, expected in zip(resumed, reference):
        assert [v if isinstance(v, str) or v is None else pytest.approx(v, rel=1e-6) for v in expected] == list(got)


def test_grid_and_robustness_tables_are_written_through_the_same_writer(tmp_path, monkeypatch):
    from ecgcl.errors import EcgclError
    from ecgcl.protocol.sweep import _write_csv
    from ecgcl.robustness.report import write_robustness

    FullDisk(monkeypatch, "grid.csv")
    with pytest.raises(EcgclError, match=f"cannot write the grid table {tmp_path / 'grid.csv'}: {NO_SPACE}"):
        _write_csv(tmp_path / "grid.csv", [{"cell": "a", "auroc_mean": 0.5}])
    monkeypatch.undo()
    FullDisk(monkeypatch, "robustness.csv")
    with pytest.raises(EcgclError, match=f"cannot write the robustness report {tmp_path / 'robustness.csv'}"):
        write_robustness(tmp_path, [], [], skipped=[], seed=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["robustness.json"]  # written before; no temporary file


def test_a_full_disk_inside_a_library_writer_is_still_one_line(tmp_path, monkeypatch):
    """pandas itself failing as `ecgcl relabel` writes its store's metadata on a full disk: one line naming it."""
    import pandas as pd

    from ecgcl.data.sample import sample_store_path

    store = tmp_path / "store"
    shutil.copytree(sample_store_path(), store)
    real = pd.DataFrame.to_csv

    def to_csv(self, path=None, *args, **kwargs):
        if path is not None:  # relabel's one table: its metadata, to a path or a handle
            raise OSError(errno.ENOSPC, NO_SPACE)
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    result = invoke("relabel", store, "--patient-from-name", "(.*)")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and NO_SPACE in lines[0] and "Traceback" not in result.output, result.output
    assert f"cannot write the store metadata {store / 'metadata.csv'}" in lines[0], lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # its temporary folder removed


@pytest.mark.parametrize(("error", "code"), [(OSError(errno.ENOSPC, NO_SPACE, "/x/y"), 2),
                                             (FileNotFoundError(errno.ENOENT, "No such file or directory"), 1)])
def test_the_net_takes_only_a_full_or_read_only_disk(error, code):
    import click

    from ecgcl.cli.main import EcgclGroup

    @click.group(cls=EcgclGroup)
    def group():
        pass

    @group.command()
    def write():
        raise error

    result = CliRunner().invoke(group, ["write"])
    assert result.exit_code == code
    if code == 2:
        assert result.output.strip() == (f"Error: cannot write /x/y: {NO_SPACE} (free space and run the same "
                                         "command again)")
    else:
        assert result.exception is error  # a bug keeps its traceback


def test_a_full_disk_at_an_ingests_metadata_is_one_line_and_leaves_nothing(ptbxl_dir, tmp_path, monkeypatch):
    out = tmp_path / "store"
    FullDisk(monkeypatch, "metadata.csv")
    result = invoke("ingest", ptbxl_dir, out, "--limit", "3", "--workers", "1", "--quiet")
    one_write_error(result, "store metadata", out / "metadata.csv")
    assert list(tmp_path.iterdir()) == []  # no store, no temporary folder, no lock


def test_a_full_disk_at_a_relabels_manifest_is_one_line_and_the_store_stays(tmp_path, monkeypatch):
    from ecgcl.data.sample import sample_store_path

    store = tmp_path / "store"
    shutil.copytree(sample_store_path(), store)
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    FullDisk(monkeypatch, "manifest.json")
    result = invoke("relabel", store, "--patient-from-name", "(.*)")
    line = one_write_error(result, "store manifest", store / "manifest.json")
    assert line.endswith("(free space and run the same command again: the store is unchanged)"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # its temporary folder removed
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before
