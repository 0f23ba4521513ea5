"""The linear probe (`ecgcl.engine.probe`): converged logistic regression on standardised frozen features, C chosen
on validation, equal to scikit-learn's, folded into the classifier head and reproduced from its checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ecgcl.engine.probe import C_GRID, LinearProbe, fit_linear_probe, standardisation


def _features(seed: int, n: int = 300, d: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) * np.linspace(0.1, 20, d) + 5.0


def _sklearn_probabilities(train_x, train_y, test_x, c: float) -> np.ndarray:
    mean, std = standardisation(train_x)
    model = LogisticRegression(C=c, max_iter=10_000, tol=1e-10).fit((train_x - mean) / std, train_y)
    return model.predict_proba((test_x - mean) / std)


def test_linearly_separable_features_reach_auroc_1():
    x = _features(0)
    y = (x[:, 3] - x[:, 7] > 0).astype(int)
    probe = fit_linear_probe(x[:200], y[:200], x[200:250], y[200:250], softmax=False, num_outputs=1)
    assert roc_auc_score(y[250:], probe.probabilities(x[250:])) == 1.0
    assert probe.converged and probe.iterations < 1000


def test_binary_probe_equals_scikit_learn_at_the_same_c():
    x, y = _features(1), np.random.default_rng(2).integers(0, 2, 300)
    for c in (1e-3, 0.1, 10.0):
        probe = fit_linear_probe(x[:200], y[:200], x[200:250], y[200:250], softmax=False, num_outputs=1, grid=(c,))
        expected = _sklearn_probabilities(x[:200], y[:200], x[250:], c)[:, 1]
        np.testing.assert_allclose(probe.probabilities(x[250:]), expected, atol=1e-3)


def test_multilabel_probe_is_one_scikit_learn_fit_per_class():
    x = _features(3)
    y = (x[:, :3] + np.random.default_rng(4).normal(scale=8, size=(300, 3)) > 5).astype(int)
    probe = fit_linear_probe(x[:200], y[:200], x[200:250], y[200:250], softmax=False, num_outputs=3, grid=(0.5,))
    expected = np.stack([_sklearn_probabilities(x[:200], y[:200, k], x[250:], 0.5)[:, 1] for k in range(3)], axis=1)
    assert probe.probabilities(x[250:]).shape == (50, 3)
    np.testing.assert_allclose(probe.probabilities(x[250:]), expected, atol=1e-3)


def test_multiclass_probe_is_multinomial_scikit_learn():
    x = _features(5)
    z = (x[:, :4] - x[:, :4].mean(axis=0)) / x[:, :4].std(axis=0)
    y = np.argmax(z + np.random.default_rng(6).normal(size=(300, 4)), axis=1)
    probe = fit_linear_probe(x[:200], y[:200], x[200:250], y[200:250], softmax=True, num_outputs=4, grid=(2.0,))
    expected = _sklearn_probabilities(x[:200], y[:200], x[250:], 2.0)
    np.testing.assert_allclose(probe.probabilities(x[250:]), expected, atol=1e-3)
    np.testing.assert_allclose(probe.probabilities(x[250:]).sum(axis=1), 1.0, atol=1e-9)


def test_multiclass_probe_keeps_classes_training_lacks():
    x = _features(7)
    y = np.where(x[:, 0] > 5, 2, 0)  # class 1 never occurs: two classes present out of three
    probe = fit_linear_probe(x[:200], y[:200], x[200:250], y[200:250], softmax=True, num_outputs=3, grid=(1.0,))
    probs = probe.probabilities(x[250:])
    assert probs.shape == (50, 3) and probs[:, 1].max() < 1e-6
    expected = _sklearn_probabilities(x[:200], y[:200], x[250:], 1.0)
    np.testing.assert_allclose(probs[:, [0, 2]], expected, atol=1e-3)


def test_the_c_grid_picks_the_validation_best_value():
    x = _features(8, n=160, d=40)
    y = (x[:, 0] / 0.1 + np.random.default_rng(9).normal(scale=4, size=160) > 50).astype(int)
    probe = fit_linear_probe(x[:60], y[:60], x[60:110], y[60:110], softmax=False, num_outputs=1)
    scores = [roc_auc_score(y[60:110], _sklearn_probabilities(x[:60], y[:60], x[60:110], c)[:, 1]) for c in C_GRID]
    assert [g["C"] for g in probe.grid] == list(C_GRID)
    np.testing.assert_allclose([g["val_auroc"] for g in probe.grid], scores, atol=1e-3)
    assert probe.c == C_GRID[int(np.argmax([g["val_auroc"] for g in probe.grid]))]
    assert len({round(s, 6) for s in scores}) > 1  # the grid matters on these features


def test_a_probe_at_its_iteration_limit_says_so():
    x, y = _features(10), np.random.default_rng(11).integers(0, 2, 300)
    probe = fit_linear_probe(x[:200], y[:200], x[200:], y[200:], softmax=False, num_outputs=1, grid=(100.0,),
                             max_iter=2)
    assert not probe.converged and probe.iterations == 2 and probe.grid[0]["converged"] is False


def test_folded_weights_and_saved_dict_reproduce_the_probe():
    x, y = _features(12), np.random.default_rng(13).integers(0, 2, (300, 2))
    probe = fit_linear_probe(x[:200], y[:200], x[200:250], y[200:250], softmax=False, num_outputs=2)
    weight, bias = probe.folded()
    np.testing.assert_allclose(x[250:] @ weight.T + bias, probe.logits(x[250:]), atol=1e-9)
    again = LinearProbe.from_dict(json.loads(json.dumps(probe.to_dict())))
    np.testing.assert_allclose(again.probabilities(x[250:]), probe.probabilities(x[250:]))


def _sample_store():
    from ecgcl.data.sample import sample_store_path

    return sample_store_path()


def test_probe_checkpoint_reproduces_its_test_metrics_through_evaluate(tmp_path):
    from ecgcl.cli.main import cli
    from ecgcl.config import resolve_config
    from ecgcl.engine.checkpoint import load_checkpoint
    from ecgcl.protocol.runner import run_protocol

    config = resolve_config(None, {"data": str(_sample_store()), "encoder_args": {"width": 4, "depth": 1},
                                   "embed_dim": 8, "pretrain_epochs": 0, "repeats": 1, "methods": ["random_linear"],
                                   "out": str(tmp_path / "run"), "device": "cpu"})
    row = run_protocol(config).rows[0]
    assert row["stopped"] == "converged" and row["probe_c"] in C_GRID and row["best_epoch"] is None
    saved = load_checkpoint(row["checkpoint"])
    assert saved["probe"]["c"] == row["probe_c"] and len(saved["probe"]["mean"]) == 8
    assert saved["meta"]["threshold"] == row["threshold"]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())[0]
    assert metrics["probe_c"] == row["probe_c"] and metrics["stopped"] == "converged"
    result = CliRunner().invoke(cli, ["evaluate", row["checkpoint"], "--data", str(_sample_store()), "--json"])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.output)
    for metric in ("auroc", "pr_auc", "f1", "accuracy"):
        assert evaluated[metric] == pytest.approx(row[metric], abs=1e-9), metric
