"""Install real plugin packages into a throwaway venv and drive the CLI there in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = REPO_ROOT / "examples" / "ecgcl-example-plugin"

BROKEN_PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "ecgcl-broken-plugin"
version = "9.9.9"

[project.entry-points.ecgcl]
broken = "ecgcl_broken_plugin"

[tool.setuptools]
packages = ["ecgcl_broken_plugin"]
"""


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory) -> Path:
    """A venv that sees this environment's packages (so ecgcl and torch) plus the two plugins, editable."""
    root = tmp_path_factory.mktemp("plugin-venv")
    env_dir = root / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    site_dir = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    parent_site = sysconfig.get_paths()["purelib"]
    # addsitedir (not a bare path) so the parent's own .pth files, editable installs among them, apply too
    Path(site_dir, "zz_parent_env.pth").write_text(f"import site; site.addsitedir({parent_site!r})\n")

    broken = root / "broken"
    (broken / "ecgcl_broken_plugin").mkdir(parents=True)
    (broken / "pyproject.toml").write_text(textwrap.dedent(BROKEN_PYPROJECT))
    (broken / "ecgcl_broken_plugin" / "__init__.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")

    for package in (EXAMPLE, broken):
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(package)],
            check=True,
            capture_output=True,
            cwd=root,
        )
    return python


INSTALLED = ("ecgcl-example-plugin", "ecgcl-broken-plugin")  # the plugins these tests install


def others_failing(python: Path) -> str:
    """`ECGCL_DISABLE_PLUGINS` for the failing plugins these tests did not install (a user's environment may hold
    some), so a test sees only its own."""
    failures = json.loads(ecgcl_cli(python, "list-plugins", "--json").stdout)["failures"]
    return ",".join(sorted({f["distribution"] for f in failures if f["distribution"] not in INSTALLED}))


def ecgcl_cli(python: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECGCL_")}
    env["COLUMNS"] = "200"
    return subprocess.run([python, "-m", "ecgcl.cli", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def store_500hz(tiny_store, tmp_path_factory) -> Path:
    """The tiny real PTB-XL store resampled to 500 Hz (5000 samples per record)."""
    import numpy as np
    from scipy.signal import resample_poly

    from ecgcl.data.store import open_store, write_store

    store = open_store(tiny_store)
    signals = resample_poly(np.asarray(store.signals), 5, 1, axis=-1).astype(np.float32)
    return write_store(tmp_path_factory.mktemp("fs500") / "store", signals, store.metadata.assign(fs=500.0),
                       {**store.manifest, "fs": 500.0, "length": signals.shape[2]})


@pytest.mark.parametrize("fs", [100.0, 500.0])
def test_run_with_the_plugins_encoder_and_augmentation_at_any_rate(plugin_venv, store_500hz, tmp_path, fs):
    """The README's promise: `pip install` of a plugin is all it takes, at the store's own sampling rate."""
    data = ["--data", store_500hz] if fs == 500.0 else []  # 100 Hz: the sample embedded in ecgcl
    result = ecgcl_cli(plugin_venv, "run", "--encoder", "gap_cnn", "--aug", "baseline_wander+noise", *data,
                       "--out", tmp_path / "results", "--repeats", "1", "--pretrain-epochs", "1",
                       "--finetune-epochs", "1", "--methods", "pretrained_linear", "--embed-dim", "16",
                       "--projection-dim", "16", "--device", "cpu")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"BaselineWander(fs={fs}," in result.stdout  # the augmentation as built, with the store's rate
    assert (tmp_path / "results" / "metrics.csv").is_file()


def test_installed_plugin_is_listed_with_its_source(plugin_venv):
    result = ecgcl_cli(plugin_venv, "list-plugins", "--json")
    assert result.returncode == 0, result.stderr
    components = {(c["kind"], c["name"]): c for c in json.loads(result.stdout)["components"]}
    for key in (("augmentation", "baseline_wander"), ("encoder", "gap_cnn"), ("task", "age_at_least"),
                ("objective", "simsiam")):
        assert components[key]["source"] == "ecgcl-example-plugin"
        assert components[key]["version"] == "0.4.0"
    params = {p["name"]: p for p in components[("augmentation", "baseline_wander")]["parameters"]}
    assert params["fs"]["runtime"] and not params["amplitude"]["runtime"]


def test_broken_plugin_is_reported_and_does_not_stop_the_cli(plugin_venv):
    result = ecgcl_cli(plugin_venv, "list-plugins", "--json")
    failures = [f for f in json.loads(result.stdout)["failures"] if f["distribution"] in INSTALLED]
    assert [(f["name"], f["distribution"], f["version"]) for f in failures] == [("broken", "ecgcl-broken-plugin", "9.9.9")]
    assert "broken on purpose" in failures[0]["error"]
    table = ecgcl_cli(plugin_venv, "list-plugins")
    assert table.returncode == 0
    assert "gap_cnn" in table.stdout and "failed to load" in table.stderr


def test_strict_mode_turns_the_failure_into_a_one_line_error(plugin_venv):
    env = dict(os.environ, ECGCL_STRICT_PLUGINS="1", ECGCL_DISABLE_PLUGINS=others_failing(plugin_venv))
    result = subprocess.run([plugin_venv, "-m", "ecgcl.cli", "list-plugins"], capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("Error: plugin 'broken' (ecgcl-broken-plugin 9.9.9) failed to load")
    assert "Traceback" not in result.stderr


def test_example_plugin_own_tests_pass(plugin_venv):
    result = subprocess.run(
        [plugin_venv, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True, text=True, cwd=EXAMPLE,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_installed_task_plugin_runs_through_ecgcl_run(plugin_venv, tmp_path):
    out = tmp_path / "age"
    result = ecgcl_cli(plugin_venv, "run", "--task", "age_at_least:years=60", "--out", str(out), "--repeats", "1",
                       "--pretrain-epochs", "1", "--finetune-epochs", "1", "--methods", "supervised",
                       "--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--device", "cpu")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads((out / "metrics.json").read_text())
    assert set(rows[0]["per_class"]) == {"under 60", "60 or older"} and 0 <= rows[0]["auroc"] <= 1
    wrong = ecgcl_cli(plugin_venv, "run", "--task", "age_at_least:yeers=60", "--out", str(tmp_path / "x"))
    assert wrong.returncode == 2 and "did you mean 'years'" in wrong.stderr


def test_installed_objective_plugin_pretrains_through_ecgcl_run(plugin_venv, tmp_path):
    """A third-party objective (SimSiam) is chosen with `--objective` like any built-in one, with its default views."""
    import re

    from ecgcl.engine.checkpoint import load_checkpoint

    out = tmp_path / "simsiam"
    result = ecgcl_cli(plugin_venv, "run", "--objective", "simsiam", "--out", str(out), "--repeats", "1",
                       "--pretrain-epochs", "1", "--finetune-epochs", "1", "--methods", "pretrained_linear",
                       "--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8",
                       "--projection-dim", "8", "--device", "cpu")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "objective simsiam; augmentation as built: BaselineWander(fs=100.0," in result.stdout  # its default_aug
    assert "pretrained LP" in result.stdout
    auroc = re.search(r"auroc\s*│\s*(\d\.\d{3})\s*│", result.stdout)
    assert auroc is not None and 0 <= float(auroc.group(1)) <= 1, result.stdout
    rows = json.loads((out / "metrics.json").read_text())
    assert [row["method"] for row in rows] == ["pretrained_linear"]
    assert f"{rows[0]['auroc']:.3f}" == auroc.group(1)
    assert json.loads((out / "config.json").read_text())["objective"] == "simsiam"
    (last,) = out.glob("repeats/**/pretrain.last.pt")
    state = load_checkpoint(last)["objective"]
    assert {"projection.0.weight", "predictor.0.weight"} <= set(state)  # SimSiam's heads were trained and saved


def test_installed_reader_and_command_work_like_built_ins(plugin_venv, tmp_path):
    """A pip-installed reader ingests its format (mixed with WFDB in one folder) and a pip-installed command runs."""
    import numpy as np
    import wfdb

    from ecgcl.data.store import open_store

    rng = np.random.default_rng(0)
    time = np.arange(1000) / 100
    beats = np.sin(2 * np.pi * 1.2 * time) ** 15
    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    folder = tmp_path / "export"
    folder.mkdir()
    for index in range(3):
        signal = np.stack([beats * (0.5 + 0.1 * k) for k in range(12)]) + rng.normal(0, 0.01, (12, 1000))
        rows = "\n".join(",".join(f"{1000 * v:.1f}" for v in column) for column in signal.T)
        (folder / f"cart_{index}.csv").write_text("# fs=100\n" + ",".join(leads) + "\n" + rows + "\n")
    wfdb.wrsamp("rec", fs=100, units=["mV"] * 12, sig_name=leads, p_signal=signal.T, fmt=["16"] * 12,
                write_dir=str(folder))
    (folder / "labels.csv").write_text("record_id,labels\ncart_0,AF\n")
    out = tmp_path / "store"
    result = ecgcl_cli(plugin_venv, "ingest", folder, out, "--labels", folder / "labels.csv", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    store = open_store(out)
    assert sorted(store.metadata["format"]) == ["csv_leads", "csv_leads", "csv_leads", "wfdb"]
    np.testing.assert_allclose(store.signals[store.metadata["record_id"].tolist().index("cart_2")], signal, atol=1e-3)
    assert store.manifest["unrecognised_files"]["files"] == ["labels.csv"]
    readers = json.loads(ecgcl_cli(plugin_venv, "list-plugins", "--kind", "reader", "--json").stdout)["components"]
    assert {c["name"]: c["source"] for c in readers}["csv_leads"] == "ecgcl-example-plugin"
    summary = ecgcl_cli(plugin_venv, "store-summary", out)
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.splitlines()[0] == "4 records, 4 patients" and "AF\t1 records\t1 patients" in summary.stdout
    assert "store-summary" in ecgcl_cli(plugin_venv, "--help").stdout


def test_installed_monitor_and_tracker_plugins_run_through_ecgcl_pretrain(plugin_venv, tmp_path):
    """A pip-installed monitor and tracker are chosen with `--monitor` / `--track` like built-in ones."""
    import csv

    out = tmp_path / "pretrain"
    result = ecgcl_cli(plugin_venv, "pretrain", "--pretrain-epochs", "2", "--monitor", "rankme,embedding_norm",
                       "--monitor-every", "1", "--track", "csv_log", "--out", out, "--batch-size", "64",
                       "--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8",
                       "--projection-dim", "8", "--device", "cpu")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    pretrain = [line for line in lines if line["stage"] == "pretrain"]
    assert [line["epoch"] for line in pretrain] == [1, 2]
    for line in pretrain:
        assert line["embedding_norm"] > 0 and line["rankme"] >= 1, line
    with (out / "tracked.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    losses = {int(row["step"]): float(row["value"]) for row in rows
              if row["unit"] == "pretrain" and row["figure"] == "loss"}
    assert sorted(losses) == [1, 2] and losses[2] == pytest.approx(pretrain[1]["loss"])
    norms = [float(row["value"]) for row in rows if row["figure"] == "embedding_norm"]
    assert norms == pytest.approx([line["embedding_norm"] for line in pretrain])
    listed = json.loads(ecgcl_cli(plugin_venv, "list-plugins", "--json").stdout)["components"]
    sources = {(c["kind"], c["name"]): c["source"] for c in listed}
    assert sources[("monitor", "embedding_norm")] == sources[("tracker", "csv_log")] == "ecgcl-example-plugin"
