"""`ecgcl tune`: the [space] table's checks, a study that finds the learning rate that trains, pruning, resuming a
study, no test record reaching the encoder, and a best.toml that `ecgcl run --config` takes. Tiny real PTB-XL
store, 2-3 epochs of a width-4 CNN."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import optuna
import pytest
from click.testing import CliRunner

import ecgcl
from ecgcl.cli.main import cli
from ecgcl.config import read_config_file, resolve_config
from ecgcl.errors import EcgclError
from ecgcl.manager import get_registry
from ecgcl.tuning import parse_space

SMALL = {"encoder_args": {"width": 4, "depth": 1}, "embed_dim": 8, "projection_dim": 8, "batch_size": 32,
         "val_fraction": 0.25, "test_fraction": 0.25, "repeats": 1, "pretrain_epochs": 2, "device": "cpu"}


def _config(**overrides):
    return resolve_config(None, {**SMALL, **overrides})


@pytest.mark.parametrize("table, message", [
    ({"lr": {"low": 1e-2, "high": 1e-4}}, "low 0.01 is greater than high 0.0001"),
    ({"lrr": {"low": 1e-4, "high": 1e-2}}, "did you mean 'lr'?"),
    ({"objective.temprature": {"choices": [0.1, 0.5]}}, "has no option 'temprature'"),
    ({"lr": {"choices": []}}, "choices must be a non-empty list"),
    ({"lr": {"low": 0.0, "high": 1.0, "log": True}}, "log = true needs low > 0"),
    ({"lr": {"step": 0.1}}, "give low and high (a range) or choices"),
    ({"encoder.widht": {"low": 2, "high": 8}}, "encoder 'cnn' has no option 'widht' (did you mean 'width'?)"),
    ({"batch_size": {"low": 0, "high": 8}}, "value 0 is not usable"),
    ({"objective.augmentation": {"choices": ["noise"]}}, "objective 'contrastive' has no option 'augmentation'"),
    ({"data": {"choices": ["a", "b"]}}, "not a searchable option (fixed for the whole study)"),
])
def test_a_bad_space_is_one_line_naming_the_entry(table, message):
    with pytest.raises(EcgclError) as caught:
        parse_space(table, _config(), get_registry())
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_space_suggestions_become_config_overrides():
    config = _config(objective="byol:momentum=0.99", loss="ntxent")
    space = parse_space({"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "pretrain_epochs": {"low": 1, "high": 3},
                         "encoder.width": {"choices": [4, 8]}, "objective.hidden_dim": {"choices": [16, 32]}},
                        config, get_registry())
    trial = optuna.trial.FixedTrial({"lr": 3e-3, "pretrain_epochs": 2, "encoder.width": 8, "objective.hidden_dim": 16})
    changes = space.suggest(trial)
    assert changes["lr"] == 3e-3 and changes["pretrain_epochs"] == 2
    assert changes["encoder_args"] == {"width": 8, "depth": 1}  # merged with the base config's options
    assert changes["objective"] == "byol:momentum=0.99,hidden_dim=16"
    assert resolve_config({**config.to_dict(), **changes}).objective == "byol:momentum=0.99,hidden_dim=16"
    loss_space = parse_space({"loss.temperature": {"low": 0.05, "high": 0.5}}, _config(), get_registry())
    assert loss_space.suggest(optuna.trial.FixedTrial({"loss.temperature": 0.2})) == {"loss_args": {"temperature": 0.2}}


def _toml(path, space: str, **values) -> str:
    lines = [f"{k} = {v!r}".replace("'", '"') for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n[encoder_args]\nwidth = 4\ndepth = 1\n\n[space]\n" + space + "\n")
    return str(path)


CLI_SMALL = {"embed_dim": 8, "projection_dim": 8, "batch_size": 32, "val_fraction": 0.25, "test_fraction": 0.25,
             "repeats": 1, "device": "cpu", "aug": "permute+noise"}


@pytest.mark.parametrize("space, trials, message", [
    ('lr = {low = 1e-2, high = 1e-4}', "2", "low 0.01 is greater than high 0.0001"),
    ('lrr = {low = 1e-4, high = 1e-2}', "2", "did you mean 'lr'?"),
    ('lr = {choices = []}', "2", "choices must be a non-empty list"),
    ('lr = {choices = [1e-3]}', "0", "--trials must be an integer >= 1"),
    ('lr = {choices = [1e-3]}', "2 --timeout 0", "--timeout must be a number of seconds > 0"),
])
def test_the_cli_refuses_a_bad_space_or_trial_count_in_one_line_and_writes_nothing(tmp_path, tiny_store, space,
                                                                                    trials, message):
    config = _toml(tmp_path / "space.toml", space, data=str(tiny_store), **CLI_SMALL)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["tune", "--config", config, "--trials", *trials.split(), "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output
    assert not out.exists()


def test_a_study_finds_the_learning_rate_that_trains_and_writes_a_best_toml_run_accepts(tiny_store, tmp_path):
    """On this tiny model lr 10 stays finite for 2 epochs but scores a worse validation k-NN AUROC than lr 1e-3."""
    out = tmp_path / "tune"
    config = _toml(tmp_path / "space.toml", "lr = {choices = [1e-3, 10.0]}", data=str(tiny_store),
                   pretrain_epochs=2, **CLI_SMALL)
    result = CliRunner().invoke(cli, ["tune", "--config", config, "--trials", "4", "--out", str(out),
                                      "--pruner", "none"])
    assert result.exit_code == 0, result.output
    with open(out / "trials.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    tried = {float(r["params_lr"]) for r in rows}
    assert tried == {1e-3, 10.0}  # TPE's first (random) trials drew both values
    best = max((r for r in rows if r["state"] == "COMPLETE"), key=lambda r: float(r["value"]))
    assert float(best["params_lr"]) == 1e-3
    assert all(float(r["value"]) < float(best["value"]) for r in rows if float(r["params_lr"]) == 10.0)
    values = read_config_file(out / "best.toml")
    assert values["lr"] == 1e-3 and values["out"] == str(out / "best")
    assert values["encoder_args"] == {"width": 4, "depth": 1} and values["data"] == str(tiny_store)
    resolved = resolve_config(values)
    assert resolved.lr == 1e-3 and resolved.embed_dim == 8
    for name in ("optimisation_history.png", "param_importances.png", "study.db"):
        assert (out / name).stat().st_size > 0, name
    assert "Best 5 trials" in result.output


def test_a_diverging_trial_scores_minus_infinity_and_does_not_crash_the_study(tiny_store, tmp_path):
    """lr 1e30 makes the loss NaN in the first epoch (NonFiniteTraining): the trial is recorded as
    complete with -inf and the reason; with no finite trial there is no best.toml, and the error says so."""
    out = tmp_path / "tune"
    with pytest.raises(EcgclError, match="no trial .* finished with a finite score"):
        ecgcl.tune({"lr": {"choices": [1e30]}}, trials=2, pruner="none", out=str(out), data=str(tiny_store),
                   **{**SMALL, "batch_size": 8})  # several steps in epoch 1: it diverges before any monitor
    study = optuna.load_study(study_name="ecgcl", storage=f"sqlite:///{(out / 'study.db').resolve()}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(t.value == -np.inf and "pretrain: the loss became nan in epoch 1" in t.user_attrs["diverged"] for t in study.trials)
    assert not (out / "best.toml").exists()


class PruneAtFirstStep(optuna.pruners.BasePruner):
    """Prunes every trial at its first reported step."""

    def prune(self, study, trial) -> bool:
        return trial.last_step is not None and trial.last_step >= 1


def test_a_pruned_trial_stops_before_its_last_epoch(tiny_store, tmp_path):
    out = tmp_path / "tune"
    with pytest.raises(EcgclError, match="no trial .* finished"):
        ecgcl.tune({"lr": {"choices": [1e-3]}}, trials=1, pruner=PruneAtFirstStep(), out=str(out),
                   data=str(tiny_store), **{**SMALL, "pretrain_epochs": 3})
    study = optuna.load_study(study_name="ecgcl", storage=f"sqlite:///{(out / 'study.db').resolve()}")
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]  # one epoch reported, then stopped
    from ecgcl.engine.checkpoint import load_checkpoint

    saved = load_checkpoint(out / "trials" / "trial_0" / "repeat_1" / "pretrain.last.pt")
    assert saved["epoch"] == 1 and not (out / "trials" / "trial_0" / "repeat_1" / "pretrain.pt").exists()


def test_a_rerun_resumes_the_study_and_no_test_record_reaches_the_encoder(tiny_store, tmp_path, monkeypatch):
    import ecgcl.engine.loops as loops
    from ecgcl.engine.monitoring import EpochMonitors
    from ecgcl.protocol.runner import draw_repeat_split, prepare

    seen: list[np.ndarray] = []
    embed, loader = EpochMonitors._embed, loops.pretraining_loader

    def watched_embed(self, encoder, rows):
        seen.append(np.asarray(rows))
        return embed(self, encoder, rows)

    def watched_loader(store, rows, *args, **kwargs):
        seen.append(np.asarray(rows))
        return loader(store, rows, *args, **kwargs)

    monkeypatch.setattr(EpochMonitors, "_embed", watched_embed)
    monkeypatch.setattr(loops, "pretraining_loader", watched_loader)
    out = tmp_path / "tune"
    options = {**SMALL, "data": str(tiny_store), "out": str(out)}
    first = ecgcl.tune({"lr": {"low": 1e-4, "high": 1e-2, "log": True}}, trials=1, pruner="none", **options)
    second = ecgcl.tune({"lr": {"low": 1e-4, "high": 1e-2, "log": True}}, trials=1, pruner="none", **options)
    assert len(first.trials) == 1 and len(second.trials) == 2
    assert [r["number"] for r in second.trials] == [0, 1] and all(r["state"] == "COMPLETE" for r in second.trials)
    assert second.best_value == max(r["value"] for r in second.trials)
    exp = prepare(resolve_config(None, options))
    test = draw_repeat_split(exp, 0).test
    assert len(test) > 0 and len(seen) >= 4
    assert not np.isin(np.concatenate(seen), test).any()


def test_an_unreachable_storage_is_one_line(tiny_store, tmp_path):
    with pytest.raises(EcgclError, match="--storage postgresql://nobody@127.0.0.1:1/none: cannot open the study"):
        ecgcl.tune({"lr": {"choices": [1e-3]}}, trials=1, storage="postgresql://nobody@127.0.0.1:1/none",
                   out=str(tmp_path / "t"), data=str(tiny_store), **SMALL)
    assert not (tmp_path / "t").exists()  # nothing written when the study cannot be opened


def _worker(store, out, storage, trials: int):
    """An `ecgcl tune` worker process on a shared study (what a second machine would run)."""
    import subprocess
    import sys

    space = out.parent / "space.toml"
    space.write_text("[space]\nlr = {low = 1e-4, high = 1e-2, log = true}\n")
    command = [sys.executable, "-m", "ecgcl.cli", "tune", "--config", str(space), "--trials", str(trials),
               "--storage", storage, "--study", "shared", "--data", str(store), "--out", str(out),
               "--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
               "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25", "--repeats", "1",
               "--pretrain-epochs", "1", "--device", "cpu", "--pruner", "none"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_share_one_study_and_run_no_trial_twice(tiny_store, tmp_path, kind):
    storage = f"sqlite:///{tmp_path / 'shared.db'}" if kind == "sqlite" else str(tmp_path / "shared.journal")
    workers = [_worker(tiny_store, tmp_path / f"worker_{i}", storage, 1) for i in range(2)]
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output[-3000:]
    from ecgcl.tuning.study import open_storage

    study = optuna.load_study(study_name="shared", storage=open_storage(storage, tmp_path))
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 2 and len({t.number for t in finished}) == 2
    assert len({t.params["lr"] for t in finished}) == 2  # each worker drew its own point, none ran twice


def test_best_toml_reproduces_the_best_trials_validation_figure_through_run(tiny_store, tmp_path):
    import json

    from ecgcl.engine.checkpoint import load_checkpoint

    out = tmp_path / "tuning"
    result = ecgcl.tune({"lr": {"choices": [1e-3, 3e-3]}}, trials=2, out=str(out), data=str(tiny_store), **SMALL)
    again = CliRunner().invoke(cli, ["run", "--config", str(out / "best.toml"), "--methods", "pretrained_linear"])
    assert again.exit_code == 0, again.output
    best = json.loads((out / "best" / "config.json").read_text())
    assert best["lr"] == result.best_params["lr"]
    history = load_checkpoint(out / "best" / "repeats" / "repeat_1" / "pretrain.pt")["history"]
    assert history[-1]["knn"] == pytest.approx(result.best_value, abs=1e-12)


# ---- a real PostgreSQL server, started in a temporary folder for the test and removed after it ----

def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_tool(name: str) -> str | None:
    import glob
    import shutil

    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)


@pytest.fixture
def postgres_url():
    """`postgresql+psycopg2://ecgcl@127.0.0.1:PORT/ecgcl_test` on a server of its own (trust auth, 127.0.0.1 only).
    initdb refuses root, so as root the server runs as the `postgres` system user in a folder it owns."""
    import os
    import pwd
    import shlex
    import shutil
    import subprocess
    import tempfile

    tools = {name: _postgres_tool(name) for name in ("initdb", "pg_ctl")}
    if not all(tools.values()):
        pytest.skip("PostgreSQL's initdb/pg_ctl not found (Debian: apt-get install postgresql)")
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 not installed (pip install psycopg2-binary)")
    root = os.geteuid() == 0
    if root:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root (initdb refuses root) and there is no `postgres` user to run the server")
    base = Path(tempfile.mkdtemp(prefix="ecgcl-pg-"))
    os.chmod(base, 0o755)  # the server's user must reach its data folder and socket here
    data, log, port = base / "data", base / "server.log", _free_port()

    def run(*command: str):
        if root:
            command = (("runuser", "-u", "postgres", "--", *command) if shutil.which("runuser")
                       else ("su", "postgres", "-c", shlex.join(command)))
        return subprocess.run(command, cwd=base, capture_output=True, text=True, timeout=120)

    if root:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    pg_ctl = [tools["pg_ctl"], "-D", str(data)]
    try:
        made = run(tools["initdb"], "-D", str(data), "-U", "ecgcl", "--auth=trust", "-E", "UTF8", "--no-sync")
        started = made.returncode == 0 and run(*pg_ctl, "-l", str(log), "-o", f"-h 127.0.0.1 -p {port} -k {base}",
                                               "-w", "-t", "60", "start").returncode == 0
        if not started:
            text = (log.read_text() if log.exists() else "") or made.stderr or made.stdout
            last = (text.strip().splitlines() or ["no log"])[-1]
            pytest.skip(f"the PostgreSQL test server did not start: {last}")
        connection = psycopg2.connect(host="127.0.0.1", port=port, user="ecgcl", dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("CREATE DATABASE ecgcl_test")
        connection.close()
        yield f"postgresql+psycopg2://ecgcl@127.0.0.1:{port}/ecgcl_test"
    finally:
        if data.exists():
            run(*pg_ctl, "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_share_one_postgresql_study_and_run_no_trial_twice(tiny_store, tmp_path, postgres_url):
    workers = [_worker(tiny_store, tmp_path / f"worker_{i}", postgres_url, 1) for i in range(2)]
    for worker in workers:
        output, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0, output[-3000:]
    study = optuna.load_study(study_name="shared", storage=postgres_url)  # readable by plain Optuna afterwards
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(study.trials) == 2 and len(finished) == 2 and len({t.number for t in finished}) == 2
    assert len({t.params["lr"] for t in finished}) == 2  # each worker drew its own point, none ran twice
    assert all(np.isfinite(t.value) for t in finished)


def test_an_unreachable_postgresql_storage_is_one_line_from_the_cli_and_writes_nothing(tmp_path, tiny_store):
    pytest.importorskip("psycopg2", reason="psycopg2 not installed (pip install psycopg2-binary)")
    url = f"postgresql+psycopg2://nobody@127.0.0.1:{_free_port()}/none"  # a port nothing listens on
    config = _toml(tmp_path / "space.toml", "lr = {choices = [1e-3]}", data=str(tiny_store), **CLI_SMALL)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["tune", "--config", config, "--trials", "1", "--storage", url, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--storage {url}: cannot open the study" in lines[0], result.output
    assert not out.exists()


def test_a_time_budget_stops_starting_trials(tiny_store, tmp_path):
    """--timeout: Optuna starts no trial once the budget is spent (the running one finishes)."""
    result = ecgcl.tune({"lr": {"low": 1e-4, "high": 1e-2, "log": True}}, trials=50, timeout=0.01, pruner="none",
                        out=str(tmp_path / "tune"), data=str(tiny_store), **SMALL)
    assert len(result.trials) == 1 and result.trials[0]["state"] == "COMPLETE"


def test_hyperband_pruning_and_the_probe_score(tiny_store, tmp_path):
    """--pruner hyperband and --score probe: each trial reports the converged probe's validation AUROC per epoch."""
    out = tmp_path / "tune"
    result = ecgcl.tune({"lr": {"choices": [1e-3, 3e-3]}}, trials=2, pruner="hyperband", score="probe", out=str(out),
                        data=str(tiny_store), **{**SMALL, "pretrain_epochs": 2})
    study = optuna.load_study(study_name="ecgcl", storage=f"sqlite:///{(out / 'study.db').resolve()}")
    assert len(study.trials) == 2
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert finished and all(0.0 <= t.value <= 1.0 for t in finished)
    assert all(set(t.intermediate_values) <= {1, 2} and t.intermediate_values for t in study.trials)
    assert result.best_value == max(t.value for t in finished)


def test_a_killed_worker_s_trial_is_failed_and_run_again_by_the_next_worker(tiny_store, tmp_path, monkeypatch):
    """SIGKILL mid-trial leaves a running trial; its heartbeat stops, so the next worker marks it failed and runs
    its parameters again (Optuna's heartbeat and RetryFailedTrialCallback), and the study goes on."""
    import signal
    import subprocess
    import sys
    import time

    import ecgcl.tuning.study as study_module

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    space = tmp_path / "space.toml"
    space.write_text("[space]\nlr = {low = 1e-4, high = 1e-2, log = true}\n")
    args = ["tune", "--config", str(space), "--trials", "1", "--storage", storage, "--study", "s", "--data",
            str(tiny_store), "--out", str(tmp_path / "first"), "--encoder-arg", "width=4", "--encoder-arg", "depth=1",
            "--embed-dim", "8", "--projection-dim", "8", "--batch-size", "32", "--val-fraction", "0.25",
            "--test-fraction", "0.25", "--repeats", "1", "--pretrain-epochs", "200", "--device", "cpu",
            "--pruner", "none"]
    code = ("import sys, ecgcl.tuning.study as s; s.HEARTBEAT_S, s.GRACE_S = 1, 2; "
            "from ecgcl.cli.main import cli; cli(sys.argv[1:])")
    worker = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (tmp_path / "first" / "trials" / "trial_0").exists():
            time.sleep(0.5)
        time.sleep(2)  # inside the trial, heartbeats recorded
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    running = optuna.load_study(study_name="s", storage=storage).trials
    assert [t.state for t in running] == [optuna.trial.TrialState.RUNNING]
    time.sleep(3)  # past the grace period
    monkeypatch.setattr(study_module, "HEARTBEAT_S", 1)
    monkeypatch.setattr(study_module, "GRACE_S", 2)
    ecgcl.tune({"lr": {"low": 1e-4, "high": 1e-2, "log": True}}, trials=1, storage=storage, study_name="s",
               pruner="none", out=str(tmp_path / "second"), data=str(tiny_store), **{**SMALL, "pretrain_epochs": 1})
    killed, retried = optuna.load_study(study_name="s", storage=storage).trials
    assert killed.state == optuna.trial.TrialState.FAIL and retried.state == optuna.trial.TrialState.COMPLETE
    assert retried.params == killed.params and retried.system_attrs.get("failed_trial") == killed.number
