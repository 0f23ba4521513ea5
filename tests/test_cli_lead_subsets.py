"""A 12-lead checkpoint fine-tuned and evaluated on 1-lead and 6-lead stores ingested from real PTB-XL records.

Stores come from `ecgcl ingest --leads ...` on the shared PTB-XL subset; models are tiny (cnn width 4, depth 1)
and every stage runs one epoch.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ecgcl.cli.main import cli
from ecgcl.data.store import open_store, write_store
from ecgcl.engine.checkpoint import load_checkpoint

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25"]
LIMB = "I,II,III,aVR,aVL,aVF"


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def stores(ptbxl_dir, tmp_path_factory):
    """The same 80 PTB-XL records (100 Hz) ingested with 12 leads, with lead I only and with the limb leads."""
    folder = tmp_path_factory.mktemp("lead_subsets")
    paths = {}
    for name, leads in (("12", "standard"), ("I", "I"), ("limb", LIMB)):
        paths[name] = folder / f"store_{name}"
        result = invoke("ingest", ptbxl_dir, paths[name], "--fs", "100", "--limit", "80", "--leads", leads,
                        "--workers", "1", "--quiet")
        assert result.exit_code == 0, result.output
    return paths


@pytest.fixture(scope="module")
def pretrained(stores, tmp_path_factory):
    """Encoders pretrained on the 12-lead store, without and with lead masking."""
    folder = tmp_path_factory.mktemp("pretrained")
    checkpoints = {}
    for name, aug in (("plain", "noise"), ("masked", "lead_mask:keep_limb=true+noise")):
        out = folder / name
        result = invoke("pretrain", "--data", stores["12"], "--out", out, *TINY, "--pretrain-epochs", "1",
                        "--aug", aug, "--device", "cpu")
        assert result.exit_code == 0, result.output
        checkpoints[name] = out / "pretrain.pt"
    return checkpoints


def stem_in_channels(state: dict) -> int:
    return int(state["encoder.frontend.stem.0.weight"].shape[1])


@pytest.mark.parametrize("store_name", ["I", "limb"])
@pytest.mark.parametrize("policy", ["zero", "slice"])
def test_a_12_lead_checkpoint_fine_tunes_and_evaluates_on_a_lead_subset(stores, pretrained, tmp_path, store_name,
                                                                        policy):
    out = tmp_path / "ft"
    result = invoke("finetune", "--data", stores[store_name], "--checkpoint", pretrained["plain"], "--out", out,
                    *TINY, "--finetune-epochs", "1", "--missing-leads", policy, "--device", "cpu")
    assert result.exit_code == 0, result.output
    present = ["I"] if store_name == "I" else LIMB.split(",")
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["missing_leads"] == policy and 0 <= metrics["auroc"] <= 1
    saved = load_checkpoint(out / "pretrained_finetune.best.pt")
    meta = saved["meta"]
    assert meta["missing_leads"] == policy and meta["input_leads"] == present
    assert len(meta["missing_lead_names"]) == 12 - len(present)
    # zero keeps the 12-lead first layer (zeros fed in), slice cuts it to the present leads
    assert stem_in_channels(saved["model"]) == (12 if policy == "zero" else len(present))
    assert meta["encoder_leads"] == (open_store(stores["12"]).leads if policy == "zero" else present)
    evaluated = invoke("evaluate", out / "pretrained_finetune.best.pt", "--data", stores[store_name], "--json",
                       "--device", "cpu")
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.output)
    assert report["records_used"] == "the checkpoint's test records"
    assert report["auroc"] == pytest.approx(metrics["auroc"])


def test_the_default_policy_follows_lead_mask_pretraining(stores, pretrained, tmp_path):
    for name, expected in (("plain", "slice"), ("masked", "zero")):
        out = tmp_path / name
        result = invoke("finetune", "--data", stores["I"], "--checkpoint", pretrained[name], "--out", out, *TINY,
                        "--finetune-epochs", "1", "--device", "cpu")
        assert result.exit_code == 0, result.output
        assert f"--missing-leads {expected}" in result.output
        assert json.loads((out / "metrics.json").read_text())["missing_leads"] == expected


def test_a_12_lead_classifier_evaluates_on_a_1_lead_store(stores, pretrained, tmp_path):
    out = tmp_path / "ft12"
    assert invoke("finetune", "--data", stores["12"], "--checkpoint", pretrained["masked"], "--out", out, *TINY,
                  "--finetune-epochs", "1", "--device", "cpu").exit_code == 0
    for policy in ("zero", "slice"):
        result = invoke("evaluate", out / "pretrained_finetune.best.pt", "--data", stores["I"], "--json",
                        "--missing-leads", policy, "--device", "cpu")
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["missing_leads"] == policy and report["input_leads"] == ["I"] and report["records"] > 0


def test_a_store_with_a_lead_the_checkpoint_never_saw_is_one_line(stores, pretrained, tmp_path):
    twelve = open_store(stores["12"])
    leads = ["I", "II", "VX"]
    signals = np.asarray(twelve.signals[:, :3])
    foreign = open_store(write_store(tmp_path / "foreign", signals, twelve.metadata.copy(),
                                     {**twelve.manifest, "leads": leads}, dtype=twelve.dtype))
    result = invoke("finetune", "--data", foreign.path, "--checkpoint", pretrained["plain"], "--out", tmp_path / "o",
                    *TINY, "--finetune-epochs", "1", "--device", "cpu")
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "VX" in errors[0] and "never trained on" in errors[0]
    assert "Traceback" not in result.output


def test_missing_leads_without_a_checkpoint_is_refused(stores, tmp_path):
    result = invoke("finetune", "--data", stores["I"], "--out", tmp_path / "o", *TINY, "--missing-leads", "zero")
    assert result.exit_code == 2 and "needs --checkpoint" in result.output
