"""`ecgcl embed --plot`: a 2-D map of the embeddings (t-SNE, or UMAP where installed) written as an image of the
expected size, reproducible with a seed, coloured by labels or any metadata column (legend or colorbar), the method
in the caption; bad input is one line and exit code 2, before anything is embedded."""

from __future__ import annotations

import importlib.machinery
import sys
import types

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.image import imread
from sklearn.manifold import TSNE

from ecgcl.cli.main import cli
from ecgcl.data.store import open_store, write_store
from ecgcl.errors import EcgclError
from ecgcl.protocol.embedding_map import draw_embedding_map, label_categories, map_coordinates

TINY = ["--encoder-arg", "width=4", "--encoder-arg", "depth=1", "--embed-dim", "8", "--projection-dim", "8",
        "--batch-size", "32", "--val-fraction", "0.25", "--test-fraction", "0.25"]
SITES = [f"site_{i:02d}" for i in range(15)]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def store(tiny_store, tmp_path_factory):
    """The tiny store with a site (15 values, site_00 the most frequent), an age and a 0/1 sex column."""
    tiny = open_store(tiny_store)
    n = len(tiny)
    rng = np.random.default_rng(0)
    site = np.array([SITES[0]] * 20 + [SITES[1]] * 10 + [SITES[i % 15] for i in range(n - 30)])
    metadata = tiny.metadata.assign(site=site, age=rng.integers(20, 90, n).astype(float), sex=np.arange(n) % 3 == 0)
    metadata["sex"] = metadata["sex"].astype(int)
    metadata.loc[3, "age"] = np.nan
    return write_store(tmp_path_factory.mktemp("map") / "store", np.asarray(tiny.signals), metadata, tiny.manifest)


@pytest.fixture(scope="module")
def checkpoint(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("map") / "pre"
    result = invoke("pretrain", "--data", store, "--out", out, *TINY, "--pretrain-epochs", "1")
    assert result.exit_code == 0, result.output
    return out / "pretrain.pt"


@pytest.fixture(scope="module")
def embedded(store, checkpoint, tmp_path_factory):
    """The CLI's embeddings and map of every record, coloured by site."""
    folder = tmp_path_factory.mktemp("embedded")
    result = invoke("embed", checkpoint, "--data", store, "--out", folder / "emb.npy", "--plot", folder / "map.png",
                    "--color-by", "site", "--device", "cpu")
    assert result.exit_code == 0, result.output
    return folder, result.output


def test_embed_plot_writes_a_map_of_the_expected_size(store, embedded):
    folder, output = embedded
    image = imread(folder / "map.png")
    assert image.shape[:2] == (550, 660)  # 6 x 5 inches at 110 dpi
    assert (image[..., :3] < 0.9).any(axis=-1).mean() > 0.01  # points, axes and text drawn, not a blank page
    n = len(open_store(store))
    assert f"t-SNE (scikit-learn), perplexity {(n - 1) / 3:g}, seed 0, {n} records" in output
    assert np.load(folder / "emb.npy").shape == (n, 8) and not list(folder.glob(".*tmp"))


def test_coordinates_are_reproducible_with_a_seed_and_match_scikit_learn(embedded):
    vectors = np.load(embedded[0] / "emb.npy")
    first, method, caption = map_coordinates(vectors, method="tsne", seed=3)
    again, _, _ = map_coordinates(vectors, method="tsne", seed=3)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (len(vectors), 2)
    expected = TSNE(n_components=2, init="pca", random_state=3,
                    perplexity=min(30, (len(vectors) - 1) / 3)).fit_transform(vectors.astype(np.float64))
    np.testing.assert_allclose(first, expected)
    assert method == "tsne" and caption.startswith("t-SNE (scikit-learn), perplexity") and "seed 3" in caption


def test_colouring_by_a_column_gives_its_categories_in_the_legend(store, embedded, tmp_path):
    vectors = np.load(embedded[0] / "emb.npy")
    metadata = open_store(store).metadata
    by_site = draw_embedding_map(vectors, metadata, tmp_path / "site.svg", color_by="site")
    counts = metadata["site"].value_counts()
    top = sorted(counts.index, key=lambda s: (-counts[s], s))[:12]
    assert by_site.legend == top + ["other"] and by_site.legend[:2] == ["site_00", "site_01"]
    assert by_site.colorbar is None and (tmp_path / "site.svg").read_text().startswith("<?xml")
    by_sex = draw_embedding_map(vectors, metadata, tmp_path / "sex.png", color_by="sex")
    assert by_sex.legend == ["0", "1"]  # 0/1 codes are categories, the more frequent first
    by_label = draw_embedding_map(vectors, metadata, tmp_path / "labels.png")
    expected = label_categories(metadata["labels"]).value_counts()
    assert sorted(by_label.legend) == sorted(expected.index) and "unlabelled" in by_label.legend
    assert "multiple" in by_label.legend and ";" not in "".join(by_label.legend)
    assert label_categories(["NORM", "MI;STTC", "", None]).tolist() == ["NORM", "multiple", "unlabelled", "unlabelled"]


def test_a_numeric_column_gets_a_colorbar(store, embedded, tmp_path):
    vectors = np.load(embedded[0] / "emb.npy")
    drawn = draw_embedding_map(vectors, open_store(store).metadata, tmp_path / "age.png", color_by="age", seed=1)
    assert drawn.colorbar == "age" and drawn.legend == []
    assert imread(tmp_path / "age.png").shape[:2] == (550, 660)


def test_umap_is_used_where_installed_and_named_in_the_caption(monkeypatch, tmp_path):
    calls = []

    class FakeUMAP:
        def __init__(self, **kwargs):
            calls.append(kwargs)

        def fit_transform(self, x):
            return x[:, :2] * 2

    fake = types.ModuleType("umap")
    fake.UMAP = FakeUMAP
    fake.__spec__ = importlib.machinery.ModuleSpec("umap", None)
    monkeypatch.setitem(sys.modules, "umap", fake)
    vectors = np.random.default_rng(0).normal(size=(40, 4))
    drawn = draw_embedding_map(vectors, pd.DataFrame({"labels": ["A"] * 40}), tmp_path / "u.png", seed=7)
    assert drawn.method == "umap" and calls == [dict(n_components=2, n_neighbors=15, min_dist=0.1, random_state=7)]
    assert drawn.caption == "UMAP (umap-learn), n_neighbors 15, min_dist 0.1, seed 7, 40 records"
    np.testing.assert_array_equal(drawn.coords, vectors[:, :2] * 2)


def test_bad_map_requests_are_one_line_with_exit_2(store, checkpoint, tmp_path, monkeypatch):
    monkeypatch.setattr("ecgcl.protocol.embedding_map._has_umap", lambda: False)
    ids = open_store(store).metadata["record_id"].astype(str).tolist()
    (tmp_path / "few.json").write_text('{"test": ' + pd.Series(ids[:4]).to_json(orient="values") + "}")
    out = ["--data", store, "--out", tmp_path / "e.npy"]
    cases = [
        ([*out, "--plot", tmp_path / "m.png", "--color-by", "sx"], "--color-by 'sx' is not a metadata column"),
        ([*out, "--plot", tmp_path / "m.png", "--color-by", "sx"], "(did you mean 'sex'?)"),
        ([*out, "--plot", tmp_path / "m.jpg"], "must end in .png, .pdf, .svg"),
        ([*out, "--plot", tmp_path / "m.png", "--map-method", "umap"], "needs umap-learn: pip install umap-learn"),
        ([*out, "--plot", tmp_path / "m.png", "--split-file", tmp_path / "few.json"], "at least 5 records"),
        ([*out, "--color-by", "site"], "add --plot PATH"),
    ]
    for args, message in cases:
        result = invoke("embed", checkpoint, *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "e.npy").exists() and not (tmp_path / "m.png").exists()  # checked before embedding
    with pytest.raises(EcgclError, match="at least 5 records"):
        map_coordinates(np.zeros((4, 3)))
