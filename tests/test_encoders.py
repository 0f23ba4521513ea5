"""Contract tests for every registered encoder: shapes, gradients, determinism, options, learning on real ECGs."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from ecgcl.errors import EcgclError
from ecgcl.interfaces import Encoder
from ecgcl.manager import create_plugin_manager
from ecgcl.plugins.losses.ntxent import NTXentLoss

REGISTRY = create_plugin_manager(entry_points=False).registry
ENCODERS = [c.name for c in REGISTRY.components("encoder")]
SMALL = {"width": 16, "depth": 2, "embed_dim": 24}  # keeps the contract tests fast


def build(name: str, **options) -> Encoder:
    return REGISTRY.create("encoder", name, **options)


def extent_option(name: str) -> str:
    """The option for the extent of the first layer: `kernel_size` of a convolutional front end, or `patch_size`
    of a token encoder (per-lead patches, no convolution, e.g. `patch_transformer`)."""
    parameters = inspect.signature(REGISTRY.get("encoder", name).factory).parameters
    return "kernel_size" if "kernel_size" in parameters else "patch_size"


def test_the_four_builtin_encoders_are_registered():
    assert {"cnn", "cnn_lstm", "cnn_attn_lstm", "cnn_transformer"} <= set(ENCODERS)


@pytest.mark.parametrize("name", ENCODERS)
def test_factory_takes_the_shared_options(name):
    parameters = inspect.signature(REGISTRY.get("encoder", name).factory).parameters
    defaults = {"in_leads": 12, "length": 1000, "embed_dim": 128}
    for option, default in defaults.items():
        assert parameters[option].default == default, option
    for option in ("width", "depth", extent_option(name), "dropout"):
        assert option in parameters, option


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("leads, length", [(12, 1000), (1, 1000), (12, 250), (1, 250), (12, 5000), (1, 5000)])
def test_output_shape(name, leads, length):
    torch.manual_seed(0)
    encoder = build(name, in_leads=leads, length=length, embed_dim=32)
    assert isinstance(encoder, Encoder) and encoder.embed_dim == 32
    out = encoder(torch.randn(2, leads, length))
    assert out.shape == (2, 32)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ENCODERS)
def test_options_change_the_model(name):
    extent = extent_option(name)
    small = build(name, width=8, depth=1, dropout=0.0, embed_dim=16, in_leads=1, length=250, **{extent: 3})
    large = build(name, width=32, depth=3, dropout=0.3, embed_dim=16, in_leads=1, length=250, **{extent: 9})
    count = lambda module: sum(p.numel() for p in module.parameters())  # noqa: E731
    assert count(small) < count(large)
    assert large(torch.randn(3, 1, 250)).shape == (3, 16)


@pytest.mark.parametrize("name", ENCODERS)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(0)
    encoder = build(name, in_leads=12, length=250, **SMALL)
    encoder(torch.randn(4, 12, 250)).square().mean().backward()
    for parameter_name, parameter in encoder.named_parameters():
        assert parameter.grad is not None, f"{name}: no gradient for {parameter_name}"
        assert torch.isfinite(parameter.grad).all(), parameter_name
        assert parameter.grad.abs().sum() > 0, f"{name}: zero gradient for {parameter_name}"


@pytest.mark.parametrize("name", ENCODERS)
def test_deterministic_given_the_seed(name):
    x = torch.randn(3, 12, 250, generator=torch.Generator().manual_seed(1))
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        encoder = build(name, in_leads=12, length=250, dropout=0.2, **SMALL)
        outputs.append(encoder(x))  # training mode: dropout draws from the global seed too
    assert torch.equal(outputs[0], outputs[1])
    encoder.eval()
    assert torch.equal(encoder(x), encoder(x))


@pytest.mark.parametrize("name", ENCODERS)
def test_wrong_lead_count_is_a_clear_error(name):
    encoder = build(name, in_leads=12, length=250, **SMALL)
    with pytest.raises(ValueError, match="12 leads"):
        encoder(torch.randn(2, 1, 250))


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("option, value", [("width", 0), ("depth", -1), ("kernel_size", 0), ("dropout", 1.5)])
def test_bad_options_raise_ecgcl_error_naming_them(name, option, value):
    option = extent_option(name) if option == "kernel_size" else option
    with pytest.raises(EcgclError, match=f"{name}.*{option}"):
        build(name, **{option: value})


def test_transformer_width_must_divide_into_heads():
    with pytest.raises(EcgclError, match="heads"):
        build("cnn_transformer", width=30, heads=4)


def test_transformer_accepts_a_length_other_than_the_constructed_one():
    torch.manual_seed(0)
    encoder = build("cnn_transformer", in_leads=12, length=250, **SMALL).eval()
    assert encoder(torch.randn(2, 12, 400)).shape == (2, 24)


def load_real_batch(ptbxl_dir, ecg_ids: range) -> torch.Tensor:
    """(len(ecg_ids), 12, 1000) float32 PTB-XL records at 100 Hz, each lead standardised."""
    wfdb = pytest.importorskip("wfdb")
    folder = ptbxl_dir / "records100" / "00000"
    paths = [folder / f"{i:05d}_lr" for i in ecg_ids]
    if not all(p.with_suffix(".dat").is_file() for p in paths):
        pytest.skip(f"PTB-XL records {ecg_ids} not found under {folder}")
    signals = np.stack([wfdb.rdrecord(str(p)).p_signal.T for p in paths]).astype(np.float32)
    signals = (signals - signals.mean(-1, keepdims=True)) / (signals.std(-1, keepdims=True) + 1e-6)
    return torch.from_numpy(signals)


@pytest.mark.parametrize("name", ENCODERS)
def test_a_few_adam_steps_lower_ntxent_on_real_ecgs(name, ptbxl_dir):
    batch = load_real_batch(ptbxl_dir, range(1, 9))
    generator = torch.Generator().manual_seed(0)
    view1 = batch + 0.1 * torch.randn(batch.shape, generator=generator)
    view2 = batch + 0.1 * torch.randn(batch.shape, generator=generator)
    torch.manual_seed(0)
    encoder = build(name, in_leads=12, length=1000, width=32, depth=3, embed_dim=32, dropout=0.0)
    loss_fn = NTXentLoss(temperature=0.5)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = loss_fn(encoder(view1), encoder(view2))
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0], f"{name}: NT-Xent did not drop: {losses}"
