"""Contract tests over every registered augmentation: a new plugin is checked the moment it registers.

Shape (as the augmentation declares through `output_shape`), dtype, device, reproducibility from the
generator seed, an own random draw per sample, a fresh draw per call, and two views for contrastive training.
"""

from __future__ import annotations

import math

import pytest
import torch

from ecgcl.errors import EcgclError
from ecgcl.manager import create_plugin_manager

REGISTRY = create_plugin_manager(entry_points=False).registry
COMPONENTS = REGISTRY.components("augmentation")
MODES = ("sample", "lead")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float32, torch.float64, torch.bfloat16]


def _cases() -> list:
    """Every registered augmentation with its defaults, plus each randomness mode where it has one."""
    cases = []
    for component in COMPONENTS:
        cases.append(pytest.param(component.name, {}, id=component.name))
        if "mode" in component.parameter_names():
            cases += [pytest.param(component.name, {"mode": m}, id=f"{component.name}-{m}") for m in MODES]
        if "strategy" in component.parameter_names() and component.name == "clocs":
            cases += [pytest.param("clocs", {"strategy": s}, id=f"clocs-{s}") for s in ("cmsc", "cmlc", "cmsmlc")]
    return cases


def ecg_like(batch: int, leads: int = 12, length: int = 600, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    """Smooth multi-lead signals (sums of sines with random phase and amplitude) of shape (batch, leads, length)."""
    g = torch.Generator().manual_seed(seed)
    time = torch.linspace(0, 6, length, dtype=torch.float64)
    freqs = torch.tensor([1.1, 2.3, 7.0, 15.0], dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(batch, leads, 4, 1, generator=g, dtype=torch.float64)
    amp = 0.2 + torch.rand(batch, leads, 4, 1, generator=g, dtype=torch.float64)
    signal = (amp * torch.sin(2 * math.pi * freqs[:, None] * time + phase)).sum(dim=2)
    return signal.float().to(device)


def generator(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def build(name: str, kwargs: dict):
    return REGISTRY.create("augmentation", name, **kwargs)


def test_the_six_builtins_are_registered():
    names = {c.name for c in COMPONENTS}
    assert {"time_warp", "permute", "zero_mask", "dropout", "noise", "clocs"} <= names


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_every_parameter_has_a_default_and_a_description(component):
    assert component.description, f"{component.name} needs a docstring"
    assert all(not p.required for p in component.parameters), f"{component.name}: parameters need defaults"
    component.factory()  # the defaults are valid


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "kwargs"), _cases())
def test_shape_dtype_and_device_are_kept(name, kwargs, dtype, device):
    aug = build(name, kwargs)
    batch = ecg_like(3, device=device).to(dtype)
    out = aug(batch, generator(0, device))
    assert tuple(out.shape) == aug.output_shape(tuple(batch.shape))
    assert out.shape[:2] == batch.shape[:2]
    assert out.dtype == dtype
    assert out.device == batch.device
    assert torch.isfinite(out.float()).all()


@pytest.mark.parametrize(("name", "kwargs"), _cases())
def test_same_seed_gives_the_same_output_and_each_call_draws_anew(name, kwargs):
    aug, batch = build(name, kwargs), ecg_like(4)
    assert torch.equal(aug(batch, generator(7)), aug(batch, generator(7)))
    g = generator(7)
    first, second = aug(batch, g), aug(batch, g)
    assert not torch.equal(first, second), "a second batch must not reuse the first batch's draw"


@pytest.mark.parametrize(("name", "kwargs"), _cases())
def test_each_sample_gets_its_own_draw(name, kwargs):
    aug = build(name, kwargs)
    batch = ecg_like(1, length=601).expand(8, -1, -1).contiguous()  # one recording, eight times
    out = aug(batch, generator(3))
    distinct = {tuple(row.flatten().tolist()) for row in out}
    assert len(distinct) > 1, "every sample must get its own random draw"


@pytest.mark.parametrize(("name", "kwargs"), _cases())
def test_views_are_two_different_draws_of_the_declared_shape(name, kwargs):
    aug, batch = build(name, kwargs), ecg_like(4)
    first, second = aug.views(batch, generator(1))
    expected = aug.output_shape(tuple(batch.shape))
    assert tuple(first.shape) == expected and tuple(second.shape) == expected
    assert not torch.equal(first, second)
    again = aug.views(batch, generator(1))
    assert torch.equal(first, again[0]) and torch.equal(second, again[1])


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_input_is_left_unchanged(component):
    batch = ecg_like(2)
    before = batch.clone()
    component.factory()(batch, generator(0))
    assert torch.equal(batch, before)


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_a_batch_that_is_not_three_dimensional_is_a_clear_error(component):
    with pytest.raises(EcgclError, match=component.name):
        component.factory()(torch.zeros(12, 100), generator(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to mismatch generator and batch")
@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.name)
def test_a_generator_on_another_device_is_a_clear_error(component):
    with pytest.raises(EcgclError, match="generator"):
        component.factory()(ecg_like(2, device="cuda"), generator(0, "cpu"))
