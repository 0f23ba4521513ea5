"""`sequence(batch) -> (B, steps, sequence_dim)` on every registered encoder that has `sequence_dim`: shape, more
than one step for a 10 s record at 100 Hz, gradients, and the built-ins' forward unchanged by it."""

from __future__ import annotations

import pytest
import torch

from ecgcl.manager import create_plugin_manager

REGISTRY = create_plugin_manager(entry_points=False).registry
SMALL = {"width": 8, "depth": 1, "dropout": 0.0}


def build(name: str, **options):
    """`name` with tiny sizes, passing only the options its factory takes."""
    wanted = set(REGISTRY.get("encoder", name).parameter_names())
    options = {"in_leads": 12, "length": 1000, "embed_dim": 8, **SMALL, **options}
    return REGISTRY.create("encoder", name, **{k: v for k, v in options.items() if k in wanted})


SEQUENCE_ENCODERS = [c.name for c in REGISTRY.components("encoder") if hasattr(build(c.name), "sequence_dim")]


def test_every_builtin_encoder_has_steps():
    assert {"cnn", "cnn_lstm", "cnn_attn_lstm", "cnn_transformer"} <= set(SEQUENCE_ENCODERS)


@pytest.mark.parametrize("name", SEQUENCE_ENCODERS)
def test_sequence_shape_steps_and_gradients(name):
    torch.manual_seed(0)
    encoder = build(name)
    batch = torch.randn(3, 12, 1000, requires_grad=True)
    steps = encoder.sequence(batch)
    assert steps.dim() == 3 and steps.shape[0] == 3 and steps.shape[2] == encoder.sequence_dim
    assert steps.shape[1] > 1
    assert torch.isfinite(steps).all()
    (steps * torch.randn_like(steps)).sum().backward()
    assert batch.grad is not None and batch.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())


@pytest.mark.parametrize("name", ["cnn", "cnn_lstm", "cnn_attn_lstm", "cnn_transformer"])
def test_builtin_steps_are_the_front_end_in_time_order(name):
    torch.manual_seed(0)
    encoder = build(name).eval()
    batch = torch.randn(2, 12, 1000)
    with torch.no_grad():
        assert torch.equal(encoder.sequence(batch), encoder.frontend(batch).transpose(1, 2))
    assert encoder.sequence_dim == SMALL["width"]


def test_cnn_forward_pools_its_steps():
    torch.manual_seed(0)
    encoder = build("cnn").eval()
    batch = torch.randn(2, 12, 1000)
    with torch.no_grad():
        steps = encoder.sequence(batch)
        pooled = torch.cat([steps.mean(dim=1), steps.amax(dim=1)], dim=1)
        torch.testing.assert_close(encoder(batch), encoder.out(pooled))
