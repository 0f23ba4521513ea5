"""The robustness report: the grid, the perturbations (SNR, resampling), clean = evaluate, a third-party
augmentation as a condition, and `ecgcl run --robustness` over repeats, on real PTB-XL records."""

from __future__ import annotations

import io
import json
import math
from importlib.metadata import EntryPoint

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from ecgcl import manager as manager_module
from ecgcl.cli.main import cli
from ecgcl.config import resolve_config
from ecgcl.data.leads import STANDARD_LEADS
from ecgcl.manager import create_plugin_manager
from ecgcl.metrics import METRIC_NAMES
from ecgcl.protocol.runner import run_protocol
from ecgcl.robustness.conditions import NOISE_SNR_DB, robustness_grid
from ecgcl.robustness.perturb import build_perturbation

REGISTRY = create_plugin_manager(entry_points=False).registry


@pytest.fixture(scope="module")
def finished_run(tiny_store, tmp_path_factory):
    """`ecgcl run --robustness` (supervised, 2 repeats, 1 epoch, tiny cnn) on the tiny real PTB-XL store."""
    out = tmp_path_factory.mktemp("robust_run") / "results"
    config = resolve_config(None, {
        "data": str(tiny_store), "encoder_args": {"width": 4, "depth": 1}, "embed_dim": 8, "batch_size": 32,
        "val_fraction": 0.25, "test_fraction": 0.25, "pretrain_epochs": 0, "finetune_epochs": 1, "repeats": 2,
        "methods": ["supervised"], "out": str(out), "device": "cpu", "robustness": True,
        "robustness_extra": ["noise:std=0"]})
    return run_protocol(config)


def test_the_grid_follows_the_store_leads_and_rate():
    conditions, skipped = robustness_grid(STANDARD_LEADS, 100.0)
    names = [(c.family, c.name) for c in conditions]
    assert names[:5] == [("leads", "all"), ("leads", "limb"), ("leads", "precordial"), ("leads", "I only"),
                         ("leads", "II only")]
    assert [n for f, n in names if f == "noise"] == [f"{snr} dB SNR" for snr in NOISE_SNR_DB]
    assert [n for f, n in names if f == "resampling"] == ["100 -> 50 -> 100 Hz"] and not skipped
    assert len([1 for f, _ in names if f == "resampling"]) == 1
    conditions, _ = robustness_grid(STANDARD_LEADS, 500.0)
    assert [c.resample_hz for c in conditions if c.family == "resampling"] == [250.0, 100.0, 50.0]
    conditions, skipped = robustness_grid(["I"], 50.0, ["baseline_wander:amplitude=0.5"])
    assert [c.name for c in conditions if c.family == "leads"] == ["all"]
    assert any("limb" in s for s in skipped) and any("resampling" in s for s in skipped)
    assert conditions[-1].family == "extra" and conditions[-1].augmentation == "baseline_wander:amplitude=0.5"


@pytest.mark.parametrize("snr", NOISE_SNR_DB)
def test_noise_conditions_reach_their_snr_within_half_a_db(tiny_store, snr):
    from ecgcl.data.store import open_store

    store = open_store(tiny_store)
    batch = torch.from_numpy(np.array(store.signals[:32])).double()
    batch = batch[:, batch.std(dim=(0, 2)) > 0]  # leads that carry a signal
    condition = next(c for c in robustness_grid(STANDARD_LEADS, 100.0)[0] if c.name == f"{snr} dB SNR")
    noisy = build_perturbation(condition, registry=REGISTRY, store_leads=STANDARD_LEADS, fs=100.0)(
        batch, torch.Generator().manual_seed(0))
    noise = noisy - batch
    measured = 10 * torch.log10(batch.var(dim=-1, correction=0) / noise.var(dim=-1, correction=0))
    assert measured.mean().item() == pytest.approx(snr, abs=0.5)
    assert (measured - snr).abs().max().item() < 1.5  # per lead too (1000 samples per estimate)


def test_resampling_keeps_what_the_lower_rate_can_carry_and_removes_the_rest():
    condition = next(c for c in robustness_grid(STANDARD_LEADS, 100.0)[0] if c.family == "resampling")
    apply = build_perturbation(condition, registry=REGISTRY, store_leads=STANDARD_LEADS, fs=100.0)
    t = torch.arange(1000, dtype=torch.float64) / 100.0
    slow, fast = torch.sin(2 * math.pi * 3 * t), torch.sin(2 * math.pi * 40 * t)
    out = apply(torch.stack([slow, fast])[None], torch.Generator())
    assert out.shape == (1, 2, 1000)
    middle = slice(100, 900)  # away from the filter's edge effects
    assert torch.allclose(out[0, 0, middle], slow[middle], atol=0.02)
    assert out[0, 1, middle].abs().max() < 0.05


def test_lead_conditions_zero_every_other_lead():
    condition = next(c for c in robustness_grid(STANDARD_LEADS, 100.0)[0] if c.name == "limb")
    batch = torch.ones(2, 12, 10)
    out = build_perturbation(condition, registry=REGISTRY, store_leads=STANDARD_LEADS, fs=100.0)(batch, None)
    assert out[:, :6].eq(1).all() and not out[:, 6:].any()


def test_run_robustness_writes_mean_and_ci_over_repeats(finished_run):
    out = finished_run.out
    for name in ("robustness.csv", "robustness.json", "robustness.png"):
        assert (out / name).is_file()
    table = pd.read_csv(out / "robustness.csv")
    assert set(table["metric"]) == set(METRIC_NAMES) and (table["n"] <= 2).all()
    auroc = table[(table["metric"] == "auroc") & (table["condition"] != "noise:std=0")]
    assert set(auroc["family"]) == {"leads", "noise", "baseline wander", "resampling"}
    assert (auroc["n"] == 2).any() and auroc["ci_low"].notna().any()
    saved = json.loads((out / "robustness.json").read_text())
    per_repeat = pd.DataFrame(saved["per_repeat"])
    # the clean condition (and zero noise) of each repeat is exactly that repeat's test result
    for row in finished_run.rows:
        mine = per_repeat[per_repeat["repeat"] == row["repeat"]].set_index("condition")
        for metric in METRIC_NAMES:
            if not math.isnan(row[metric]):
                assert mine.loc["all", metric] == pytest.approx(row[metric])
                assert mine.loc["noise:std=0", metric] == pytest.approx(row[metric])
    grouped = per_repeat[per_repeat["condition"] == "0 dB SNR"]["auroc"].astype(float)
    summary_row = auroc[auroc["condition"] == "0 dB SNR"].iloc[0]
    assert summary_row["mean"] == pytest.approx(grouped.mean())


def test_robustness_table_keeps_condition_names_readable_at_80_columns(finished_run):
    from rich.console import Console

    from ecgcl.cli.tables import robustness_table

    summary = json.loads((finished_run.out / "robustness.json").read_text())["summary"]
    # a full run's four methods at two label fractions: eight score columns to fit
    summary = [{**row, "method": method, "label_fraction": fraction} for row in summary
               for method in ("pretrained_finetune", "pretrained_linear", "random_linear", "supervised")
               for fraction in (0.1, 1.0) if row["method"] == summary[0]["method"]]
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(robustness_table(summary))
    text = console.export_text()
    for condition in ("0 dB SNR", "noise:std=0", "all"):
        assert condition in text, text


def test_run_resume_reuses_robustness_scores(finished_run):
    folder = finished_run.out / "repeats" / "repeat_1" / "labels_1"
    saved = json.loads((folder / "supervised.robustness.json").read_text())
    assert saved["key"]["extra"] == ["noise:std=0"] and len(saved["scores"]) == 14


def test_evaluate_robustness_clean_equals_plain_evaluate(finished_run, tiny_store, tmp_path):
    checkpoint = finished_run.out / "repeats" / "repeat_1" / "labels_1" / "supervised.best.pt"
    plain = CliRunner().invoke(cli, ["evaluate", str(checkpoint), "--data", str(tiny_store), "--json"])
    assert plain.exit_code == 0, plain.output
    robust = CliRunner().invoke(cli, ["evaluate", str(checkpoint), "--data", str(tiny_store), "--json", "--robustness",
                                      "--out", str(tmp_path / "rob"), "--robustness-extra", "noise:std=0"])
    assert robust.exit_code == 0, robust.output
    expected, report = json.loads(plain.output), json.loads(robust.output)
    clean = {(r["condition"], r["metric"]): r["mean"] for r in report["robustness"]["summary"]}
    for metric in METRIC_NAMES:
        if expected[metric] is not None and not math.isnan(expected[metric]):
            assert clean[("all", metric)] == pytest.approx(expected[metric])
            assert clean[("noise:std=0", metric)] == pytest.approx(expected[metric])
    assert (tmp_path / "rob" / "robustness.png").is_file()
    text = CliRunner().invoke(cli, ["evaluate", str(checkpoint), "--data", str(tiny_store), "--robustness",
                                    "--out", str(tmp_path / "rob2")])
    assert text.exit_code == 0 and "baseline wander" in text.output and "I only" in text.output


@pytest.fixture
def example_plugin_installed(monkeypatch):
    """The project's example plugin package (`baseline_wander`, a third-party augmentation) as an entry point."""
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "examples" / "ecgcl-example-plugin"
    monkeypatch.syspath_prepend(str(folder))
    point = EntryPoint(name="example", value="ecgcl_example_plugin", group="ecgcl")
    monkeypatch.setattr(manager_module, "entry_points", lambda group: [point] if group == "ecgcl" else [])
    manager_module.get_plugin_manager.cache_clear()
    yield
    manager_module.get_plugin_manager.cache_clear()


def test_a_third_party_augmentation_is_a_robustness_condition(example_plugin_installed, finished_run, tiny_store,
                                                              tmp_path):
    checkpoint = finished_run.out / "repeats" / "repeat_2" / "labels_1" / "supervised.best.pt"
    result = CliRunner().invoke(cli, ["evaluate", str(checkpoint), "--data", str(tiny_store), "--json", "--robustness",
                                      "--robustness-extra", "baseline_wander:amplitude=0.5", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = [r for r in json.loads(result.output)["robustness"]["summary"] if r["family"] == "extra"]
    assert {r["condition"] for r in rows} == {"baseline_wander:amplitude=0.5"} and len(rows) == len(METRIC_NAMES)
    assert all(r["n"] == 1 for r in rows)


def test_a_bad_extra_condition_is_one_line_before_any_training(tiny_store, tmp_path):
    result = CliRunner().invoke(cli, ["run", "--data", str(tiny_store), "--out", str(tmp_path / "r"), "--robustness",
                                      "--robustness-extra", "noize:std=0.1", "--repeats", "1"])
    assert result.exit_code == 2 and "did you mean 'noise'" in result.output
    assert not (tmp_path / "r" / "repeats").exists()
    result = CliRunner().invoke(cli, ["evaluate", "x.pt", "--data", str(tiny_store), "--robustness-extra", "noise"])
    assert result.exit_code == 2 and "add --robustness" in result.output
