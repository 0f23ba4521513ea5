"""Tests of the example plugin itself, run against an installed ecgcl."""

import torch

from ecgcl.manager import PluginManager
from ecgcl.registry import Source

import ecgcl_example_plugin


def make_registry():
    manager = PluginManager()
    manager.register(ecgcl_example_plugin, "example", Source("ecgcl-example-plugin", "test"))
    return manager.registry


def test_registers_one_augmentation_and_one_encoder():
    registry = make_registry()
    assert registry.names("augmentation") == ["baseline_wander"]
    assert registry.names("encoder") == ["gap_cnn"]


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
