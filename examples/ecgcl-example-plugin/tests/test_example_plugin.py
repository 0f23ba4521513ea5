"""Tests of the example plugin itself, run against an installed ecgcl."""

import torch

from ecgcl.manager import PluginManager
from ecgcl.registry import Source

import ecgcl_example_plugin


def make_registry():
    manager = PluginManager()
    manager.register(ecgcl_example_plugin, "example", Source("ecgcl-example-plugin", "test"))
    return manager.registry


def test_registers_one_augmentation_one_encoder_and_one_task():
    registry = make_registry()
    assert registry.names("augmentation") == ["baseline_wander"]
    assert registry.names("encoder") == ["gap_cnn"]
    assert registry.names("task") == ["age_at_least"]


def test_age_task_targets():
    import pandas as pd

    metadata = pd.DataFrame({"labels": ["", "", "", ""], "age": [45, 71, None, 300]})
    targets = make_registry().create("task", "age_at_least", years=60).targets(metadata)
    assert targets.labelled.tolist() == [True, True, False, False]
    assert targets.y[:2].tolist() == [0.0, 1.0] and targets.class_names == ("under 60", "60 or older")


def test_baseline_wander_is_slow_scaled_and_per_sample():
    batch = torch.randn(4, 12, 1000)
    gen = torch.Generator().manual_seed(0)
    out = make_registry().create("augmentation", "baseline_wander", amplitude=0.5)(batch, gen)
    drift = out - batch
    assert out.shape == batch.shape
    ratio = drift.abs().amax(dim=-1) / batch.std(dim=-1)
    assert torch.all(ratio <= 0.5 + 1e-4) and torch.all(ratio > 0.05)
    assert not torch.allclose(drift[0, 0] / batch[0, 0].std(), drift[1, 0] / batch[1, 0].std())


def test_gap_cnn_maps_to_embed_dim():
    encoder = make_registry().create("encoder", "gap_cnn", in_leads=3, length=500, embed_dim=16)
    assert encoder(torch.randn(2, 3, 500)).shape == (2, 16)
