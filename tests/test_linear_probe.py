"""The linear probe (`ecgcl.engine.probe`): converged logistic regression on standardised frozen features, C chosen
on validation, equal to scikit-learn's, folded into the classifier head and reproduced from its checkpoint."""

from __future__ import annotations

import json
import warnings

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


def test_every_c_of_the_grid_is_solved_in_a_few_newton_steps_and_matches_a_fresh_fit():
    x = _features(14, n=400, d=32)
    y = (x[:, :5] @ np.random.default_rng(15).normal(size=(5, 5)) + np.random.default_rng(16).normal(
        scale=20, size=(400, 5)) > 0).astype(int)
    probe = fit_linear_probe(x[:300], y[:300], x[300:], y[300:], softmax=False, num_outputs=5)
    assert all(g["converged"] and 0 < g["iterations"] <= 10 for g in probe.grid), probe.grid
    for g, c in zip(probe.grid, C_GRID):  # each C warm-started from the one before; a fresh fit finds the same
        fresh = np.stack([_sklearn_probabilities(x[:300], y[:300, k], x[300:], c)[:, 1] for k in range(5)], axis=1)
        assert roc_auc_score(y[300:], fresh, average="macro") == pytest.approx(g["val_auroc"], abs=1e-6)
    expected = np.stack([_sklearn_probabilities(x[:300], y[:300, k], x[300:], probe.c)[:, 1] for k in range(5)], 1)
    np.testing.assert_allclose(probe.probabilities(x[300:]), expected, atol=1e-3)


def test_a_grid_in_any_order_is_walked_from_strong_to_weak_regularisation():
    x, y = _features(17), np.random.default_rng(18).integers(0, 2, 300)
    shuffled = fit_linear_probe(x[:200], y[:200], x[200:], y[200:], softmax=False, num_outputs=1,
                                grid=(1.0, 1e-3, 100.0, 0.1))
    ordered = fit_linear_probe(x[:200], y[:200], x[200:], y[200:], softmax=False, num_outputs=1,
                               grid=(1e-3, 0.1, 1.0, 100.0))
    assert shuffled.grid == ordered.grid and [g["C"] for g in ordered.grid] == [1e-3, 0.1, 1.0, 100.0]
    np.testing.assert_array_equal(shuffled.coef, ordered.coef)


def test_a_multinomial_too_large_for_a_cholesky_hessian_is_solved_hessian_free(monkeypatch):
    """Newton-Cholesky's Hessian has ((D + 1) x classes)^2 entries; past CHOLESKY_MAX_DOF the probe takes
    Newton-CG, which converges to the same multinomial."""
    import ecgcl.engine.probe as probe_module

    x = _features(19, n=300, d=16)
    z = (x[:, :4] - x[:, :4].mean(axis=0)) / x[:, :4].std(axis=0)
    y = np.argmax(z + np.random.default_rng(20).normal(size=(300, 4)), axis=1)
    solvers = []
    real = LogisticRegression.fit
    monkeypatch.setattr(LogisticRegression, "fit",
                        lambda self, *args, **kwargs: solvers.append(self.solver) or real(self, *args, **kwargs))
    for limit, solver in ((probe_module.CHOLESKY_MAX_DOF, "newton-cholesky"), (4 * 17 - 1, "newton-cg")):
        monkeypatch.setattr(probe_module, "CHOLESKY_MAX_DOF", limit)
        solvers.clear()
        probe = fit_linear_probe(x[:200], y[:200], x[200:250], y[200:250], softmax=True, num_outputs=4)
        assert solvers == [solver] * len(C_GRID) and all(g["converged"] for g in probe.grid)
        expected = _sklearn_probabilities(x[:200], y[:200], x[250:], probe.c)
        np.testing.assert_allclose(probe.probabilities(x[250:]), expected, atol=1e-3)


def _ptbxl_all(ptbxl_dir, where):
    """The shared `ptbxl-all` (every record labelled, official folds) laid out under `where` with links to the
    records of `ptbxl/` (as its README says to, where a copy lost its own links)."""
    source = ptbxl_dir.parent / "ptbxl-all"
    if not (source / "ptbxl_database.csv").is_file():
        pytest.skip(f"needs the shared PTB-XL folder with every record labelled ({source})")
    where.mkdir()
    (where / "ptbxl_database.csv").symlink_to(source / "ptbxl_database.csv")
    statements = source / "scp_statements.csv"
    (where / "scp_statements.csv").symlink_to(statements if statements.is_file() else ptbxl_dir / "scp_statements.csv")
    (where / "records100").symlink_to(ptbxl_dir / "records100", target_is_directory=True)
    return where


@pytest.mark.shared_data
def test_no_probe_of_a_folds_run_on_ptbxl_all_ends_at_max_iter(ptbxl_dir, tmp_path, monkeypatch):
    """The official folds of ptbxl-all (about 1,500 training records, 5 superclasses) with a fixed random-init
    encoder's 64 features: L-BFGS stopped at its 1,000 iterations at C=100 there. Every C of the grid must converge,
    and the chosen probe equal a fresh, independently solved scikit-learn fit at its C."""
    import ecgcl.engine.probe as probe_module
    from ecgcl.api import ingest
    from ecgcl.config import resolve_config
    from ecgcl.protocol.runner import run_protocol

    store = tmp_path / "store"
    ingest(_ptbxl_all(ptbxl_dir, tmp_path / "ptbxl-all"), store, fs=100, workers=2)
    fitted = []
    real = probe_module.fit_linear_probe
    monkeypatch.setattr(probe_module, "fit_linear_probe",
                        lambda *args, **kwargs: fitted.append((args, real(*args, **kwargs))) or fitted[-1][1])
    config = resolve_config(None, {"data": str(store), "task": "superclasses", "split": "ptbxl-folds", "repeats": 1,
                                   "pretrain_epochs": 0, "label_fractions": [0.1, 1.0], "methods": ["random_linear"],
                                   "out": str(tmp_path / "run"), "device": "cpu"})
    rows = run_protocol(config).rows
    assert len(rows) == 2 and max(r["train_records"] for r in rows) > 1400
    for row in rows:
        assert row["stopped"] == "converged" and [g["C"] for g in row["history"]] == list(C_GRID)
        assert all(g["converged"] for g in row["history"]), row["history"]
    assert len(fitted) == 2
    for (train_x, train_y, val_x, _), probe in fitted:
        mean, std = standardisation(train_x)
        for k in range(train_y.shape[1]):  # Newton-CG from zero: another solver, no warm start
            fresh = LogisticRegression(C=probe.c, solver="newton-cg", tol=1e-8, max_iter=1000)
            with warnings.catch_warnings():  # its line search reports rounding errors once converged
                warnings.simplefilter("ignore")
                fresh.fit((train_x - mean) / std, train_y[:, k])
            np.testing.assert_allclose(probe.probabilities(val_x)[:, k],
                                       fresh.predict_proba((val_x - mean) / std)[:, 1], atol=1e-3)
