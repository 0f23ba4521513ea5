"""The Python API (`import ecgcl`): the same code paths as the commands, silent, on raw arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.signal import resample_poly

import ecgcl
from ecgcl.cli.main import cli
from ecgcl.data.sample import sample_store_path
from ecgcl.errors import EcgclError

TINY = {"encoder_args": {"width": 4, "depth": 1}, "embed_dim": 8, "projection_dim": 8, "device": "cpu",
        "aug": "permute+noise"}  # whole-record views: the torch module then sees what `embed` sees


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny encoder pretrained for one epoch on the embedded sample through `ecgcl.pretrain`."""
    out = tmp_path_factory.mktemp("api") / "pre"
    result = ecgcl.pretrain(out=str(out), pretrain_epochs=1, **TINY)
    assert result.checkpoint == out / "pretrain.pt" and len(result.history) == 1
    return result.checkpoint


@pytest.fixture(scope="module")
def store():
    return ecgcl.open_store(sample_store_path())


@pytest.fixture(scope="module")
def cli_embeddings(pretrained, store, tmp_path_factory):
    out = tmp_path_factory.mktemp("embed") / "z.npy"
    outcome = CliRunner().invoke(cli, ["embed", str(pretrained), "--data", str(store.path), "--out", str(out)])
    assert outcome.exit_code == 0, outcome.output
    return np.load(out)


def test_embed_on_arrays_equals_ecgcl_embed(pretrained, store, cli_embeddings):
    encoder = ecgcl.load_encoder(pretrained)
    assert (encoder.fs, encoder.length, encoder.embed_dim, encoder.leads) == (100.0, 1000, 8, store.leads)
    z = encoder.embed(np.asarray(store.signals), fs=store.fs, leads=store.leads)
    assert z.shape == (len(store), 8) and z.dtype == np.float32
    np.testing.assert_array_equal(z, cli_embeddings)
    one = encoder.embed(np.asarray(store.signals[3]), fs=100, leads=store.leads)  # one record, (leads, samples)
    np.testing.assert_allclose(one, cli_embeddings[3:4], atol=1e-6)  # a batch of one: float rounding only


def test_500_hz_shuffled_leads_in_microvolts_match_the_100_hz_store(pretrained, store, cli_embeddings):
    encoder = ecgcl.load_encoder(pretrained)
    order = np.random.default_rng(0).permutation(12)
    fast = resample_poly(np.asarray(store.signals[:40], dtype=np.float64), 5, 1, axis=-1)[:, order] * 1000
    z = encoder.embed(fast, fs=500, leads=[store.leads[i] for i in order], units="uV")
    reference = cli_embeddings[:40]
    assert np.abs(z - reference).max() < 0.01 * np.abs(reference).max()  # resampling there and back
    assert np.corrcoef(z.ravel(), reference.ravel())[0, 1] > 0.9999


def test_long_records_are_cut_in_windows_and_averaged(pretrained, store, cli_embeddings):
    encoder = ecgcl.load_encoder(pretrained)
    twenty = np.concatenate([np.asarray(store.signals[:4]), np.asarray(store.signals[4:8])], axis=-1)  # 20 s
    rows = encoder.embed(twenty, fs=100, leads=store.leads, windows=True)
    assert rows.shape == (8, 8)
    np.testing.assert_allclose(rows[0::2], cli_embeddings[:4], atol=1e-6)
    np.testing.assert_allclose(rows[1::2], cli_embeddings[4:8], atol=1e-6)
    mean = encoder.embed(twenty, fs=100, leads=store.leads)
    np.testing.assert_allclose(mean, (cli_embeddings[:4] + cli_embeddings[4:8]) / 2, atol=1e-6)


def test_missing_leads_follow_the_policies(pretrained, store):
    encoder = ecgcl.load_encoder(pretrained)
    keep = [store.leads.index(n) for n in ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")]
    eight = np.asarray(store.signals[:5])[:, keep]
    names = [store.leads[i] for i in keep]
    zero = encoder.embed(eight, fs=100, leads=names, missing_leads="zero")
    filled = np.zeros((5, 12, 1000), np.float32)
    filled[:, keep] = eight
    np.testing.assert_allclose(zero, encoder.embed(filled, fs=100, leads=store.leads), atol=1e-6)
    sliced = encoder.embed(eight, fs=100, leads=names)  # the default for an encoder without lead masking
    # `cnn` starts with a convolution: dropping its input channels equals feeding them zeros
    np.testing.assert_allclose(sliced, zero, atol=1e-5)
    with pytest.raises(EcgclError, match="never trained on"):
        encoder.embed(eight, fs=100, leads=["I", "II", "V1", "V2", "V3", "V4", "V5", "X9"])


@pytest.mark.parametrize("signals, kwargs, message", [
    (np.zeros((1, 2, 12, 1000)), {}, "must be \\(records, leads, samples\\)"),
    (np.zeros((2, 12, 1000)), {"leads": ["I", "II"]}, "2 lead names for 12 leads"),
    (np.full((1, 12, 1000), np.nan), {}, "NaN"),
    (np.zeros((1, 12, 500)), {}, "records are 5 s long; the encoder takes 10 s"),
    (np.zeros((1, 12, 1000)), {"units": "mmHg"}, "unit 'mmHg'"),
])
def test_bad_arrays_are_one_line(pretrained, signals, kwargs, message):
    with pytest.raises(EcgclError, match=message):
        ecgcl.load_encoder(pretrained).embed(signals, fs=100, **kwargs)


def test_short_records_zero_padded_on_request(pretrained, store):
    encoder = ecgcl.load_encoder(pretrained)
    z = encoder.embed(np.asarray(store.signals[:2, :, :500]), fs=100, leads=store.leads, pad=True)
    padded = np.zeros((2, 12, 1000), np.float32)
    padded[..., :500] = store.signals[:2, :, :500]
    np.testing.assert_array_equal(z, encoder.embed(padded, fs=100, leads=store.leads))


def test_torch_module_is_the_encoder(pretrained, store, cli_embeddings):
    import torch

    module = ecgcl.load_encoder(pretrained).torch_module
    assert isinstance(module, torch.nn.Module) and sum(p.numel() for p in module.parameters()) > 0
    with torch.no_grad():
        out = module(torch.from_numpy(np.array(store.signals[:3])))
    np.testing.assert_allclose(out.numpy(), cli_embeddings[:3], atol=1e-6)


def test_the_api_is_silent_and_returns_results(tmp_path, capsys, pretrained, store):
    capsys.readouterr()
    result = ecgcl.run(out=str(tmp_path / "run"), repeats=1, pretrain_epochs=1, finetune_epochs=2,
                       methods="pretrained_linear,supervised", **TINY)
    np.savez(tmp_path / "five.npz", signals=np.asarray(store.signals[:5]), fs=100.0, leads=np.array(store.leads))
    ingested = ecgcl.ingest(tmp_path / "five.npz", tmp_path / "five", fs=100, length=10)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert ingested.written == 5 and len(ecgcl.open_store(ingested.path)) == 5
    assert {"pretrained_linear", "supervised"} <= set(result.summary["method"])
    assert "auroc_mean" in result.summary and len(result.rows) == 2
    assert {"summary.json", "metrics.csv", "config.json"} <= set(result.files)
    assert json.loads((result.out / "summary.json").read_text())[0]["method"] in set(result.summary["method"])


def test_list_components_and_targets_and_config(store):
    outcome = CliRunner().invoke(cli, ["list-plugins", "--json"])
    assert ecgcl.list_components() == json.loads(outcome.output)["components"]
    assert {c["kind"] for c in ecgcl.list_components("reader")} == {"reader"}
    with pytest.raises(EcgclError, match="did you mean 'reader'"):
        ecgcl.list_components("readr")
    targets = ecgcl.targets(store, "normal_vs_abnormal")
    assert targets.y.shape == (len(store),) and targets.labelled.sum() > 0
    with pytest.raises(EcgclError, match="did you mean 'pretrain_epochs'"):
        ecgcl.run_config(pretrain_epoch=3)


def test_the_api_result_types_have_names_of_their_own():
    """`ecgcl.PretrainResult` and its kin are what a user holds: no other class in the package shares their name
    (the protocol's per-process account of a pretraining is `PretrainingRun`)."""
    import ast
    from pathlib import Path

    import ecgcl.api

    root = Path(ecgcl.api.__file__).resolve().parents[1]
    classes = {}
    for path in sorted(p for folder in ("core", "plugins", "cli") for p in (root / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, []).append(path.relative_to(root).as_posix())
    api_classes = [name for name in ecgcl.api.__all__ if "core/api.py" in classes.get(name, [])]
    assert "PretrainResult" in api_classes
    assert {name: classes[name] for name in api_classes if len(classes[name]) > 1} == {}


def test_arrays_and_store_rows_are_embedded_by_one_function(pretrained, store, monkeypatch):
    """`load_encoder(...).embed` (arrays) and `ecgcl embed` (store rows) both run `embed_batches`, so the lead
    adapter, eval mode and `model.embed` are applied in one place."""
    import torch

    from ecgcl.engine import inference

    counts, real = [], inference.embed_batches

    def spy(encoder, batches, count, **kwargs):
        counts.append(count)
        return real(encoder, batches, count, **kwargs)

    monkeypatch.setattr(inference, "embed_batches", spy)
    encoder = ecgcl.load_encoder(pretrained)
    arrays = encoder.embed(np.asarray(store.signals[:5]), fs=store.fs, leads=store.leads, batch_size=2)
    rows = inference.compute_embeddings(encoder.torch_module, store, np.arange(5), window=encoder.meta["window"],
                                        representation=encoder.meta["representation"], batch_size=3, device="cpu")
    assert counts == [5, 5]
    np.testing.assert_allclose(arrays, rows, atol=1e-6)
    with pytest.raises(ValueError, match="promised 6 recordings and got 5"):
        real(encoder.torch_module, iter([torch.tensor(np.asarray(store.signals[:5]))]), 6,
             window=encoder.meta["window"], representation=encoder.meta["representation"], device="cpu")
