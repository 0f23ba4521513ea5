"""Issue 13, items 6 and 9 for ingest: a killed ingest leaves nothing that lasts, and two ingests never write one store.

SIGTERM removes the temporary store and stops the workers (exit 143); after SIGKILL the workers exit on their
own and the next ingest removes the temporary folder (named after the dead pid) and says so; Ctrl-C talks about
ingest, not epochs; a second ingest into the same OUT fails at once naming the first one's pid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.store import is_store


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start_ingest(source: Path, out: Path) -> tuple[subprocess.Popen, Path, list[int]]:
    """Start a 2-worker ingest of 500 records (several seconds of work) and wait until its temporary store and its workers exist."""
    process = subprocess.Popen([sys.executable, "-m", "ecgcl.cli", "ingest", str(source), str(out), "--workers", "2",
                                "--quiet", "--filter", "0.5-40",
                                # upsampling makes each record slow enough that the signal always lands mid-ingest
                                "--fs", "2000", "--length", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        temps = list(out.parent.glob(f".{out.name}.tmp-{process.pid}-*"))
        workers = children(process.pid)
        if temps and len(workers) >= 2:
            return process, temps[0], workers
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.05)
    process.kill()
    raise AssertionError("ingest did not start its workers")


def wait_gone(pids: list[int], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def records_500hz(ptbxl_dir: Path, folder: Path, count: int = 500) -> Path:
    """`count` real 500 Hz records: the shared subset's records500 (500 records), or, where only the few of
    tests/data/ptbxl are at hand, copies of those under new names."""
    headers = sorted((ptbxl_dir / "records500").rglob("*.hea"))
    if len(headers) >= count:
        return ptbxl_dir / "records500"
    folder.mkdir()
    for i in range(count):
        header = headers[i % len(headers)]
        (folder / f"copy{i:03d}.hea").write_text(header.read_text().replace(header.stem, f"copy{i:03d}"))
        shutil.copy(header.with_suffix(".dat"), folder / f"copy{i:03d}.dat")
    return folder


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find the worker processes")
def test_sigterm_and_sigkill_leave_nothing_behind(ptbxl_dir, tmp_path):
    source = records_500hz(ptbxl_dir, tmp_path / "records500")
    out = tmp_path / "store"
    process, temp, workers = start_ingest(source, out)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 143, output
    assert "Traceback" not in output and "Terminated: the partial store was removed" in output
    assert not temp.exists() and not out.exists() and not (tmp_path / ".store.lock").exists()
    assert wait_gone(workers), "worker processes outlived the terminated ingest"

    process, temp, workers = start_ingest(source, out)
    process.kill()
    process.wait(timeout=30)
    assert wait_gone(workers), "worker processes outlived the killed ingest"
    assert temp.is_dir() and (tmp_path / ".store.lock").exists()  # SIGKILL cannot clean up; the next ingest does

    small = tmp_path / "small"
    small.mkdir()
    for suffix in (".hea", ".dat"):
        shutil.copy(ptbxl_dir / "records100" / "00000" / f"00001_lr{suffix}", small)
    result = CliRunner().invoke(cli, ["ingest", str(small), str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert f"Removed {temp}" in result.output.replace("\n", "") and "killed" in result.output
    assert not temp.exists() and is_store(out)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".store")] == []


def test_ctrl_c_during_ingest_talks_about_ingest(ptbxl_dir, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ecgcl.data.ingest.ingest", interrupted)
    result = CliRunner().invoke(cli, ["ingest", str(ptbxl_dir / "records100"), str(tmp_path / "store")])
    assert result.exit_code == 130
    assert "partial store was removed" in result.output
    assert "epoch" not in result.output and "--resume" not in result.output


def test_second_ingest_into_the_same_store_fails_naming_the_holder(ptbxl_dir, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    for suffix in (".hea", ".dat"):
        shutil.copy(ptbxl_dir / "records100" / "00000" / f"00001_lr{suffix}", small)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        from ecgcl.locks import process_start_time

        lock = tmp_path / ".store.lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename,
                                    "start_time": process_start_time(holder.pid), "started": "now",
                                    "command": "ecgcl ingest a store"}))
        result = CliRunner().invoke(cli, ["ingest", str(small), str(tmp_path / "store"), "--workers", "1"])
        assert result.exit_code == 2 and f"pid {holder.pid}" in result.output and "in use" in result.output
        assert lock.exists() and not (tmp_path / "store").exists()
    finally:
        holder.kill()
        holder.wait()
    result = CliRunner().invoke(cli, ["ingest", str(small), str(tmp_path / "store"), "--workers", "1"])
    assert result.exit_code == 0, result.output  # the holder died: its lock is stale, removed and reported
    assert "Removed" in result.output and ".store.lock" in result.output
    assert not lock.exists() and is_store(tmp_path / "store")
