"""The built-in trackers, each driven through the registry like a run drives it (start, three epochs of two
units, unit_finished, finish with two result files), then read back with the tool's own reader: TensorBoard's
EventAccumulator, MLflow's MlflowClient (SQLite store and a real `mlflow server`), W&B's offline run files."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ecgcl.context import create_component
from ecgcl.errors import EcgclError
from ecgcl.manager import get_registry

UNITS = ("repeat 1 · pretrain", "repeat 1 · supervised")
EPOCHS = (1, 2, 3)
CONFIG = {"epochs": 3, "encoder": "cnn", "aug": ["permute", "noise"], "encoder_args": {"width": 32}, "note": "x" * 7000}


def figures(unit: int, epoch: int) -> dict[str, float]:
    return {"loss": 1.0 / (epoch + unit), "val/auroc": 0.5 + 0.1 * epoch + 0.01 * unit, "knn@5": 0.25 * epoch + unit}


def drive(name: str, out: Path, **options):
    """Build tracker `name` through the registry and play a run of two units into results folder `out`."""
    out.mkdir(parents=True, exist_ok=True)
    artifacts = [out / "summary.json", out / "metrics.csv"]
    artifacts[0].write_text(json.dumps({"auroc": 0.9}))
    artifacts[1].write_text("repeat,auroc\n1,0.9\n")
    tracker = create_component(get_registry(), "tracker", name, options, None, where=f"--track {name}:{{key}}")
    tracker.start(out, CONFIG)
    for index, unit in enumerate(UNITS):
        for epoch in EPOCHS:
            tracker.log(unit, epoch, figures(index, epoch))
        tracker.unit_finished(unit)
    tracker.finish([*artifacts, out / "absent.txt"])
    return tracker


def test_tensorboard_scalars_and_config_read_back(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    drive("tensorboard", tmp_path / "out")
    root = tmp_path / "out" / "tensorboard"
    assert sorted(p.name for p in root.iterdir()) == ["repeat_1_pretrain", "repeat_1_supervised", "run"]
    for index, folder in enumerate(["repeat_1_pretrain", "repeat_1_supervised"]):
        events = EventAccumulator(str(root / folder))
        events.Reload()
        assert sorted(events.Tags()["scalars"]) == sorted(figures(0, 1))
        for tag in figures(0, 1):
            scalars = events.Scalars(tag)
            assert [s.step for s in scalars] == list(EPOCHS)
            assert [s.value for s in scalars] == pytest.approx([figures(index, e)[tag] for e in EPOCHS], rel=1e-6)
    run = EventAccumulator(str(root / "run"), size_guidance={"tensors": 0})
    run.Reload()
    (tag,) = run.Tags()["tensors"]
    text = tensor_util.make_ndarray(run.Tensors(tag)[0].tensor_proto).item().decode()
    assert json.loads(text) == CONFIG


def mlflow_runs(client, experiment: str = "ecgcl"):
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1 and len(runs) == 3
    return parents[0], [r for r in runs if r is not parents[0]]


def check_mlflow(client, out: Path) -> None:
    parent, children = mlflow_runs(client)
    assert parent.info.run_name == out.name and parent.info.status == "FINISHED"
    params = parent.data.params
    assert params["epochs"] == "3" and params["encoder"] == "cnn"
    assert json.loads(params["aug"]) == CONFIG["aug"] and json.loads(params["encoder_args"]) == CONFIG["encoder_args"]
    assert params["note"] == "x" * 6000  # MLflow's limit on a parameter value
    assert sorted(a.path for a in client.list_artifacts(parent.info.run_id)) == ["metrics.csv", "summary.json"]
    assert sorted(c.info.run_name for c in children) == sorted(UNITS)
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id and child.info.status == "FINISHED"
        index = UNITS.index(child.info.run_name)
        assert sorted(child.data.metrics) == ["knn_5", "loss", "val/auroc"]  # '@' is not allowed in MLflow names
        for figure, metric in [("loss", "loss"), ("val/auroc", "val/auroc"), ("knn@5", "knn_5")]:
            history = sorted(client.get_metric_history(child.info.run_id, metric), key=lambda m: m.step)
            assert [m.step for m in history] == list(EPOCHS)
            assert [m.value for m in history] == pytest.approx([figures(index, e)[figure] for e in EPOCHS])


def test_mlflow_sqlite_default_read_back(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "run a"
    drive("mlflow", out)
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    check_mlflow(client, out)
    parent, _ = mlflow_runs(client)
    assert sorted(p.name for p in (out / "mlruns").glob("*/artifacts/*")) == ["metrics.csv", "summary.json"]
    assert parent.info.artifact_uri.startswith((out / "mlruns").as_uri())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mlflow_tracking_server_read_back(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    port, log = free_port(), tmp_path / "server.log"
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{tmp_path / 'srv.db'}",
               "--artifacts-destination", str(tmp_path / "served")]
    with log.open("wb") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        uri = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                reason = f"mlflow server did not come up: {log.read_text(errors='replace')[-800:]}"
                print(reason)
                pytest.skip(reason)
            time.sleep(0.5)
        out = tmp_path / "run b"
        drive("mlflow", out, uri=uri)
        check_mlflow(mlflow.MlflowClient(uri), out)
        assert not (out / "mlflow.db").exists()
        served = sorted(p.name for p in (tmp_path / "served").rglob("*") if p.is_file())
        assert served == ["metrics.csv", "summary.json"]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker: its own session
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def wandb_records(path: Path):
    """The protobuf records of a `.wandb` file (W&B's LevelDB-style log: a 7-byte ':W&B' header, 32 KiB blocks
    of chunks with a 7-byte header each -- crc32, length, type full/first/middle/last); wandb ships no reader."""
    from wandb.proto import wandb_internal_pb2

    data, pos, pending = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:  # a block's tail too short for a header is padding
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # full, or the last chunk of a record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_wandb_offline_run_files_read_back(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for key, folder in [("WANDB_CONFIG_DIR", "config"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_DATA_DIR", "data")]:
        monkeypatch.setenv(key, str(tmp_path / folder))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run c"
    tracker = drive("wandb", out, mode="offline")
    assert tracker.resolved_mode == "offline"
    import wandb

    wandb.teardown()  # W&B's service process writes run files after run.finish() returns; this waits for it
    runs = {}
    for folder in (out / "wandb").glob("offline-run-*"):
        (log,) = folder.glob("*.wandb")
        records = list(wandb_records(log))
        (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
                   for r in records if r.WhichOneof("record_type") == "history"]
        runs[run.display_name] = (run, history, folder)
    assert sorted(runs) == sorted([*UNITS, out.name])
    for name, (run, history, folder) in runs.items():
        assert run.run_group == out.name and run.project == "ecgcl"
        config = {u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in run.config.update}
        assert {k: config[k] for k in CONFIG} == CONFIG
        if name == out.name:  # the group's "files" run keeps the result files
            assert not history and (folder / "files" / "summary.json").read_text() == json.dumps({"auroc": 0.9})
            assert (folder / "files" / "metrics.csv").exists()
            continue
        index = UNITS.index(name)
        assert [h["_step"] for h in history] == list(EPOCHS)
        for figure in figures(0, 1):
            assert [h[figure] for h in history] == pytest.approx([figures(index, e)[figure] for e in EPOCHS])


def test_wandb_mode_follows_login(monkeypatch, tmp_path):
    from ecgcl.plugins.trackers.wandb import logged_in

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "https://api.wandb.ai")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    assert not logged_in()
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password abc\n")
    assert logged_in()
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert logged_in()


@pytest.mark.parametrize("name, module", [("mlflow", "mlflow"), ("wandb", "wandb"),
                                          ("tensorboard", "torch.utils.tensorboard")])
def test_missing_package_names_the_extra(tmp_path, monkeypatch, name, module):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(EcgclError, match=rf"--track {name} needs the {name} package: pip install 'ecgcl\[{name}\]'"):
        create_component(get_registry(), "tracker", name, {}, None, where="{key}")  # before any training


def test_registering_imports_no_tracker_package():
    code = ("import sys; from ecgcl.manager import get_registry; r = get_registry(); "
            "assert set(r.names('tracker')) >= {'tensorboard', 'mlflow', 'wandb'}; "
            "print([m for m in ('mlflow', 'wandb', 'tensorboard', 'torch.utils.tensorboard') if m in sys.modules])")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "[]"
