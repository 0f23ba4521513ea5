"""The built-in monitors: RankMe on matrices of known rank, k-NN AUROC against scikit-learn, alignment and
uniformity against Wang & Isola's formulas, the probe monitor against `fit_linear_probe`, and registration."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier

from ecgcl.engine.monitoring import MonitorInputs
from ecgcl.engine.probe import fit_linear_probe
from ecgcl.errors import EcgclError
from ecgcl.interfaces import Monitor
from ecgcl.plugins.monitors import KNN, AlignUniform, Probe, RankMe

MONITORS = {"rankme": RankMe, "knn": KNN, "probe": Probe, "align_uniform": AlignUniform}


def inputs_for(features, y=None, kind=None, n_train=None, views=None):
    """MonitorInputs over `features`: the first `n_train` rows train, the rest validation."""
    rows = np.arange(len(features))
    return MonitorInputs(embed=lambda r: features[r].astype(np.float32), pool=rows,
                         train=None if n_train is None else rows[:n_train],
                         val=None if n_train is None else rows[n_train:], y=y, target_kind=kind,
                         views=views, embed_dim=features.shape[1])


def labelled_features(rng, n, classes, dim=16, signal=1.5):
    y = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, dim)) * signal
    return centres[y] + rng.normal(size=(n, dim)), y


def test_rankme_known_ranks_and_collapse():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(200, 5)))
    v, _ = np.linalg.qr(rng.normal(size=(32, 5)))
    rank5 = 3.0 * u @ v.T  # rank 5, equal singular values
    figures = RankMe()(inputs_for(rank5))
    assert figures["rankme"] == pytest.approx(5.0, abs=1e-3)
    assert RankMe()(inputs_for(rng.normal(size=(4000, 32))))["rankme"] == pytest.approx(32.0, rel=0.02)
    collapsed = RankMe()(inputs_for(np.tile(rng.normal(size=(1, 32)), (100, 1))))
    assert collapsed["min_std"] == pytest.approx(0.0, abs=1e-6)
    assert collapsed["rankme"] == pytest.approx(1.0, abs=1e-3)
    assert all(type(v) is float for v in figures.values())


def test_rankme_uses_the_first_max_records_of_the_pool():
    seen = []
    features = np.random.default_rng(1).normal(size=(50, 8))
    inputs = inputs_for(features)
    inputs.embed = lambda rows: seen.append(rows.copy()) or features[rows]
    RankMe(max_records=10)(inputs)
    assert np.array_equal(seen[0], np.arange(10))


def sklearn_knn(train_x, train_y, val_x, k):
    model = KNeighborsClassifier(n_neighbors=k, weights="distance", metric="cosine").fit(train_x, train_y)
    return model.predict_proba(val_x)


def test_knn_binary_matches_scikit_learn():
    features, y = labelled_features(np.random.default_rng(2), 300, 2)
    figure = KNN(k=20)(inputs_for(features, y, "binary", n_train=200))["knn"]
    expected = roc_auc_score(y[200:], sklearn_knn(features[:200], y[:200], features[200:], 20)[:, 1])
    assert figure == pytest.approx(expected, abs=1e-9)
    assert 0.6 < figure <= 1.0 and type(figure) is float


def test_knn_multiclass_matches_scikit_learn():
    features, y = labelled_features(np.random.default_rng(3), 400, 4, signal=0.8)
    figure = KNN(k=7)(inputs_for(features, y, "multiclass", n_train=250))["knn"]
    probs = sklearn_knn(features[:250], y[:250], features[250:], 7)
    expected = roc_auc_score(y[250:], probs, multi_class="ovr", average="macro")
    assert figure == pytest.approx(expected, abs=1e-9)


def test_knn_multilabel_matches_a_scikit_learn_classifier_per_class():
    rng = np.random.default_rng(4)
    features = rng.normal(size=(300, 12))
    y = (features[:, :3] + rng.normal(size=(300, 3)) > 0).astype(np.int64)
    figure = KNN(k=15)(inputs_for(features, y, "multilabel", n_train=200))["knn"]
    per_class = [roc_auc_score(y[200:, c], sklearn_knn(features[:200], y[:200, c], features[200:], 15)[:, 1])
                 for c in range(3)]
    assert figure == pytest.approx(np.mean(per_class), abs=1e-9)


def test_knn_chunks_queries_and_temperature_weights(monkeypatch):
    import ecgcl.plugins.monitors.knn as knn_module

    features, y = labelled_features(np.random.default_rng(5), 300, 2)
    inputs = inputs_for(features, y, "binary", n_train=150)
    whole = KNN(k=10)(inputs)["knn"]
    monkeypatch.setattr(knn_module, "CHUNK", 7)
    assert KNN(k=10)(inputs)["knn"] == pytest.approx(whole, abs=1e-12)
    # exp(cos / T) weights, by hand for the first query
    probs = knn_module.knn_probabilities(features[:150], y[:150, None].astype(float), features[150:151], 10, 0.1)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    sims = unit[:150] @ unit[150]
    top = np.argsort(-sims)[:10]
    weights = np.exp(sims[top] / 0.1)
    assert probs[0, 0] == pytest.approx((weights * y[top]).sum() / weights.sum(), abs=1e-9)


def test_knn_undefined_auroc_is_nan_and_unlabelled_is_nan():
    features, _ = labelled_features(np.random.default_rng(6), 60, 2)
    one_class = np.zeros(60, dtype=np.int64)
    assert math.isnan(KNN()(inputs_for(features, one_class, "binary", n_train=40))["knn"])
    assert math.isnan(KNN()(inputs_for(features))["knn"])


@pytest.mark.parametrize("k", [0, -3, 2.5, True, "5"])
def test_knn_bad_k_is_an_ecgcl_error(k):
    with pytest.raises(EcgclError, match="knn: k must be an integer >= 1, got"):
        KNN(k=k)


def test_alignment_and_uniformity_follow_the_paper():
    z1 = np.array([[3.0, 4.0], [1.0, 0.0], [0.0, -2.0]])
    z2 = np.array([[4.0, 3.0], [1.0, 1.0], [0.0, -1.0]])
    views = lambda rows: (z1[rows], z2[rows])  # noqa: E731
    figures = AlignUniform(alpha=2.0, t=2.0)(inputs_for(z1, views=views))
    n1 = z1 / np.linalg.norm(z1, axis=1, keepdims=True)
    n2 = z2 / np.linalg.norm(z2, axis=1, keepdims=True)
    align = np.mean(np.sum((n1 - n2) ** 2, axis=1))  # ||x - y||^2, alpha = 2
    pairs = [np.sum((n1[i] - n1[j]) ** 2) for i in range(3) for j in range(i + 1, 3)]
    uniform = np.log(np.mean(np.exp(-2.0 * np.array(pairs))))
    assert figures == pytest.approx({"alignment": align, "uniformity": uniform}, abs=1e-12)
    alpha1 = AlignUniform(alpha=1.0, t=1.0)(inputs_for(z1, views=views))
    assert alpha1["alignment"] == pytest.approx(np.mean(np.linalg.norm(n1 - n2, axis=1)), abs=1e-12)
    assert alpha1["uniformity"] == pytest.approx(np.log(np.mean(np.exp(-np.array(pairs)))), abs=1e-12)
    assert all(type(v) is float for v in figures.values())


def test_align_uniform_reads_the_first_max_records_of_the_pool():
    z = np.random.default_rng(7).normal(size=(20, 4))
    seen = []
    views = lambda rows: seen.append(rows.copy()) or (z[rows], z[rows] + 0.1)  # noqa: E731
    AlignUniform(max_records=5)(inputs_for(z, views=views))
    assert np.array_equal(seen[0], np.arange(5))


@pytest.mark.parametrize("kind,classes", [("binary", 2), ("multiclass", 3)])
def test_probe_is_the_best_validation_auroc_of_fit_linear_probe(kind, classes):
    features, y = labelled_features(np.random.default_rng(8), 240, classes, dim=8, signal=0.6)
    figure = Probe(max_records=120)(inputs_for(features, y, kind, n_train=160))["probe"]
    probe = fit_linear_probe(features[:120], y[:120], features[160:], y[160:], softmax=kind == "multiclass",
                             num_outputs=1 if kind == "binary" else classes)
    assert figure == pytest.approx(max(s["val_auroc"] for s in probe.grid), abs=1e-9)
    assert type(figure) is float and 0.5 < figure <= 1.0


def test_monitors_declare_their_contract():
    assert (KNN.needs_labels, Probe.needs_labels, RankMe.needs_labels, AlignUniform.needs_labels) == (
        True, True, False, False)
    assert AlignUniform.needs_views and not AlignUniform.higher_is_better
    assert {cls.primary for cls in MONITORS.values()} == {"rankme", "knn", "probe", "alignment"}


def test_the_four_monitors_are_registered():
    from ecgcl.manager import get_registry

    registry = get_registry()
    for name, cls in MONITORS.items():
        component = registry.get("monitor", name)
        assert component.kind == "monitor" and component.factory is cls
        assert issubclass(cls, Monitor)
    assert registry.get("monitor", "knn").parameter_names() == ["k", "temperature"]


def test_register_monitors_adds_the_four_with_their_options():
    from ecgcl.plugins.monitors import register_monitors
    from ecgcl.registry import Registry

    registry = Registry()
    register_monitors(registry)
    assert {name: registry.get("monitor", name).factory for name in MONITORS} == MONITORS
    assert registry.create("monitor", "knn", k=10).k == 10
    assert [p.describe() for p in registry.get("monitor", "align_uniform").parameters] == [
        "max_records=512", "alpha=2.0", "t=2.0"]


def test_rankme_is_nan_where_the_singular_values_cannot_be_computed(monkeypatch):
    import numpy as np

    from ecgcl.plugins.monitors.rankme import rankme

    assert np.isnan(rankme(np.array([[np.inf, 1.0], [0.0, 1.0]])))

    def gives_up(*args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(np.linalg, "svd", gives_up)
    assert np.isnan(rankme(np.ones((4, 3))))
