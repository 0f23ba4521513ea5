"""`ecgcl explain`: attributions of hand-built models checked against what they compute, the sanity checks on a
fine-tuned tiny model and on a model that ignores its weights, and the command end to end."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

from ecgcl.cli.main import cli

pytest.importorskip("captum")

from ecgcl.protocol.attribution_checks import MAX_RANK_CORRELATION  # noqa: E402
from ecgcl.protocol.attributions import class_score, filtered_baseline  # noqa: E402
from ecgcl.protocol.explain import explain_signal  # noqa: E402

LEADS = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--batch-size", "32",
        "--val-fraction", "0.25", "--test-fraction", "0.25", "--device", "cpu"]


class V1Only(nn.Module):
    """A binary classifier whose logit is a weighted sum of lead V1's samples (index 6): no other lead matters."""

    def __init__(self, samples: int) -> None:
        super().__init__()
        self.kernel = nn.Parameter(torch.linspace(-1.0, 1.0, samples) / samples * 20)

    def forward(self, batch):
        return torch.tanh(batch[:, 6, :] * 3) @ self.kernel[:, None]


class IgnoresWeights(nn.Module):
    """Output a fixed function of the input: its layer is never used, so re-initialising it changes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Linear(4, 1)

    def forward(self, batch):
        return (batch[:, 6, :] ** 2).mean(dim=1, keepdim=True) * 5 - 0.5


def _signal(seed: int = 0, samples: int = 500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 100.0
    return (0.3 * np.sin(2 * np.pi * 1.2 * t)[None] + 0.2 * rng.standard_normal((12, samples))).astype(np.float32)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_a_model_that_reads_only_v1_puts_v1_first_in_every_method():
    result = explain_signal(V1Only(500), _signal(), fs=100.0, kind="binary", class_index=1, window=50)
    for method, shares in result.importance.items():
        assert LEADS[int(np.argmax(shares))] == "V1", method
        assert shares[6] == pytest.approx(1.0, abs=1e-3) and shares.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["ig_zeros", "ig_filtered"])
def test_integrated_gradients_are_complete(method):
    """Sum of attributions = f(x) - f(baseline) (Sundararajan et al. 2017, completeness)."""
    model = V1Only(500).eval()
    signal = _signal(1)
    result = explain_signal(model, signal, fs=100.0, kind="binary", class_index=1, window=50, steps=64)
    x = torch.as_tensor(signal)[None]
    baseline = torch.zeros_like(x) if method == "ig_zeros" else filtered_baseline(x, 100.0)
    score = class_score(model, 1, "binary")
    with torch.no_grad():
        expected = float(score(x)[0] - score(baseline)[0])
    assert result.maps[method].sum() == pytest.approx(expected, abs=2e-3)
    assert result.windows[method].sum() == pytest.approx(expected, abs=2e-3)


def test_the_randomisation_check_flags_a_model_that_ignores_its_weights():
    result = explain_signal(IgnoresWeights(), _signal(2), fs=100.0, kind="binary", class_index=1, window=50)
    for method, check in result.checks.items():
        assert check.rank_correlation == pytest.approx(1.0), method
        assert not check.passed and "randomised model" in check.failures()[0]
    assert any("randomised model" in line for line in result.warnings())


def test_deletion_removes_probability_faster_top_first_on_a_hand_built_model():
    result = explain_signal(V1Only(500), _signal(3), fs=100.0, kind="binary", class_index=1, window=50)
    for method, check in result.checks.items():
        assert check.top_area < check.random_area, method
        assert check.deletion_top[0] == pytest.approx(check.deletion_random[0]) == pytest.approx(result.probability)


@pytest.fixture(scope="module")
def finetuned(tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("explain_ft")
    result = invoke("finetune", "--data", tiny_store, "--out", out, *TINY, "--finetune-epochs", "3")
    assert result.exit_code == 0, result.output
    (checkpoint,) = out.glob("*.best.pt")
    return checkpoint


def _record_ids(store, n=1):
    from ecgcl.data.store import open_store

    return open_store(store).metadata["record_id"].astype(str).head(n).tolist()


def test_a_finetuned_model_passes_the_randomisation_check_and_the_command_writes_its_files(finetuned, tiny_store,
                                                                                           tmp_path):
    ids = _record_ids(tiny_store, 2)
    out = tmp_path / "ex"
    result = invoke("explain", finetuned, "--data", tiny_store, "--records", ",".join(ids), "--out", out)
    assert result.exit_code == 0, result.output
    checks = pd.read_csv(out / "checks.csv")
    assert len(checks) == 2 * 3 and set(checks["record"].astype(str)) == set(ids)
    # far from the 1.0 of a model that ignores its weights; occlusion, which reads the model alone, passes outright
    # (Integrated Gradients multiplies by the input, so part of its map survives randomisation: Adebayo et al.)
    assert checks["rank_correlation"].max() < 0.7 and checks["rank_correlation"].mean() < MAX_RANK_CORRELATION
    assert (checks.loc[checks["method"] == "occlusion", "rank_correlation"] < MAX_RANK_CORRELATION).all()
    table = pd.read_csv(out / "attributions.csv")
    assert list(table.columns) == ["record", "class", "method", "lead", "start_s", "end_s", "value"]
    assert len(table) == 2 * 3 * 12 * 20 and table["end_s"].max() == pytest.approx(10.0)
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 2 * 4
    for png in pngs:
        image = np.asarray(Image.open(png).convert("RGB"))
        assert image.shape[0] > 100 and image.std() > 10


def test_bad_input_is_one_line_exit_2_and_writes_nothing(finetuned, tiny_store, tmp_path, monkeypatch):
    out = tmp_path / "nothing"
    (good,) = _record_ids(tiny_store)
    unknown = invoke("explain", finetuned, "--data", tiny_store, "--records", "no_such_id", "--out", out)
    assert unknown.exit_code == 2 and "no record 'no_such_id'" in unknown.output
    wrong_class = invoke("explain", finetuned, "--data", tiny_store, "--records", good, "--class", "XYZ", "--out", out)
    assert wrong_class.exit_code == 2 and "has no class 'XYZ'" in wrong_class.output
    pre = tmp_path / "pre"
    assert invoke("pretrain", "--data", tiny_store, "--out", pre, *TINY, "--projection-dim", "8",
                  "--pretrain-epochs", "1").exit_code == 0
    pretrained = invoke("explain", pre / "pretrain.pt", "--data", tiny_store, "--records", good, "--out", out)
    assert pretrained.exit_code == 2 and "needs a classifier" in pretrained.output
    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    missing = invoke("explain", finetuned, "--data", tiny_store, "--records", good, "--out", out)
    assert missing.exit_code == 2
    assert "ecgcl explain needs the explain extra: pip install 'ecgcl[explain]'" in missing.output
    for result in (unknown, wrong_class, pretrained, missing):
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists()
