"""Contract tests for every registered loss, plus NT-Xent and the CLOCS patient loss against direct references."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from ecgcl.errors import EcgclError
from ecgcl.interfaces import Loss
from ecgcl.manager import create_plugin_manager

REGISTRY = create_plugin_manager(entry_points=False).registry
LOSSES = [c.name for c in REGISTRY.components("loss")]


def views(batch: int = 6, dim: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    z1 = torch.randn(batch, dim, generator=generator)
    z2 = z1 + 0.5 * torch.randn(batch, dim, generator=generator)
    return z1, z2


def reference_loss(z1: torch.Tensor, z2: torch.Tensor, patients: list[int], temperature: float) -> float:
    """Direct double-loop computation: minus the mean log-probability of each anchor's positives.

    With all patients distinct this is SimCLR's NT-Xent (Chen et al., 2020), Algorithm 1.
    """
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    ids = list(patients) * 2
    n = len(ids)
    total = 0.0
    for i in range(n):
        denominator = sum(math.exp(float(z[i] @ z[k]) / temperature) for k in range(n) if k != i)
        positives = [j for j in range(n) if j != i and ids[j] == ids[i]]
        total += -sum(math.log(math.exp(float(z[i] @ z[j]) / temperature) / denominator) for j in positives) / len(
            positives
        )
    return total / n


def test_the_builtin_losses_are_registered_with_aliases():
    assert {"ntxent", "clocs_patient"} <= set(LOSSES)
    assert REGISTRY.get("loss", "clocs").name == "clocs_patient"
    assert REGISTRY.get("loss", "nt_xent").name == "ntxent"


@pytest.mark.parametrize("name", LOSSES)
def test_scalar_float32_with_gradients_to_both_views(name):
    loss_fn = REGISTRY.create("loss", name)
    assert isinstance(loss_fn, Loss)
    z1, z2 = (z.requires_grad_() for z in views())
    loss = loss_fn(z1, z2)
    assert loss.shape == () and loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


@pytest.mark.parametrize("name", LOSSES)
def test_aligned_views_score_lower_than_shuffled_ones(name):
    loss_fn = REGISTRY.create("loss", name)
    z1, z2 = views(batch=8, dim=16)
    assert loss_fn(z1, z2) < loss_fn(z1, z2[torch.randperm(8, generator=torch.Generator().manual_seed(0))])


@pytest.mark.parametrize("name", LOSSES)
def test_invariant_to_the_scale_of_the_embeddings(name):
    loss_fn = REGISTRY.create("loss", name)
    z1, z2 = views()
    torch.testing.assert_close(loss_fn(z1, z2), loss_fn(7.0 * z1, 0.01 * z2))


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_stable_in_half_precision(name, dtype):
    """A small temperature makes logits of 100: exp() overflows float16 unless the loss upcasts."""
    loss_fn = REGISTRY.create("loss", name, temperature=0.01)
    z1, z2 = views(batch=16, dim=32)
    z1, z2 = ((1000.0 * z).to(dtype) for z in (z1, z2))
    low = (z1.clone().requires_grad_(), z2.clone().requires_grad_())
    loss = loss_fn(*low)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    torch.testing.assert_close(loss, loss_fn(z1.float(), z2.float()))
    loss.backward()
    assert all(torch.isfinite(z.grad).all() and z.grad.dtype == dtype for z in low)


@pytest.mark.parametrize("name", LOSSES)
def test_computed_in_float32_under_bf16_autocast(name):
    loss_fn = REGISTRY.create("loss", name, temperature=0.05)
    z1, z2 = views(batch=16, dim=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = loss_fn(z1, z2)
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, loss_fn(z1, z2))


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("temperature", [0, -0.1, "hot"])
def test_bad_temperature_is_an_ecgcl_error(name, temperature):
    with pytest.raises(EcgclError, match=f"{name}.*temperature"):
        REGISTRY.create("loss", name, temperature=temperature)


@pytest.mark.parametrize("name", LOSSES)
def test_mismatched_views_are_an_ecgcl_error(name):
    with pytest.raises(EcgclError, match=name):
        REGISTRY.create("loss", name)(torch.randn(4, 8), torch.randn(5, 8))


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("batch", [1, 2, 5])
def test_ntxent_equals_the_direct_reference(temperature, batch):
    z1, z2 = views(batch=batch, dim=4, seed=batch)
    loss = REGISTRY.create("loss", "ntxent", temperature=temperature)(z1, z2)
    assert loss.item() == pytest.approx(reference_loss(z1, z2, list(range(batch)), temperature), rel=1e-5)


def test_ntxent_treats_both_views_symmetrically():
    loss_fn = REGISTRY.create("loss", "ntxent")
    z1, z2 = views()
    torch.testing.assert_close(loss_fn(z1, z2), loss_fn(z2, z1))


@pytest.mark.parametrize("ids", [None, [5, 3, 9, 100, 0, 42]])
def test_patient_loss_reduces_to_ntxent_when_all_patients_differ(ids):
    z1, z2 = views()
    patient = REGISTRY.create("loss", "clocs_patient", temperature=0.2)
    ntxent = REGISTRY.create("loss", "ntxent", temperature=0.2)
    patient_ids = None if ids is None else torch.tensor(ids)
    torch.testing.assert_close(patient(z1, z2, patient_ids), ntxent(z1, z2))


def test_patient_loss_equals_the_direct_reference_with_shared_patients():
    z1, z2 = views(batch=6)
    ids = [7, 7, 1, 7, 2, 1]
    loss = REGISTRY.create("loss", "clocs_patient", temperature=0.3)(z1, z2, torch.tensor(ids))
    assert loss.item() == pytest.approx(reference_loss(z1, z2, ids, 0.3), rel=1e-5)
    assert loss.item() != pytest.approx(reference_loss(z1, z2, list(range(6)), 0.3), rel=1e-3)


def test_patient_loss_rewards_pulling_a_patients_recordings_together():
    """Two recordings of one patient: the loss is lower when their embeddings agree than when they differ."""
    loss_fn = REGISTRY.create("loss", "clocs_patient")
    z1, z2 = views(batch=4, dim=16)
    ids = torch.tensor([0, 0, 1, 2])
    together_1, together_2 = z1.clone(), z2.clone()
    together_1[1], together_2[1] = z1[0], z2[0]
    assert loss_fn(together_1, together_2, ids) < loss_fn(z1, z2, ids)


@pytest.mark.parametrize("ids, message", [([1, 2, 3], "shape"), ([0.5] * 6, "integers"), ("abcdef", "integers")])
def test_bad_patient_ids_are_an_ecgcl_error(ids, message):
    with pytest.raises(EcgclError, match=f"clocs_patient.*{message}"):
        REGISTRY.create("loss", "clocs_patient")(*views(), ids)


@pytest.mark.parametrize("name", LOSSES)
def test_a_few_adam_steps_lower_the_loss_on_real_ecgs(name, ptbxl_dir):
    """Records 15-22 of PTB-XL include three of one patient, so the patient loss has real shared positives."""
    wfdb = pytest.importorskip("wfdb")
    ecg_ids = list(range(15, 23))
    folder = ptbxl_dir / "records100" / "00000"
    if not all((folder / f"{i:05d}_lr.dat").is_file() for i in ecg_ids):
        pytest.skip(f"PTB-XL records {ecg_ids} not found under {folder}")
    signals = np.stack([wfdb.rdrecord(str(folder / f"{i:05d}_lr")).p_signal.T for i in ecg_ids]).astype(np.float32)
    signals = (signals - signals.mean(-1, keepdims=True)) / (signals.std(-1, keepdims=True) + 1e-6)
    table = pd.read_csv(ptbxl_dir / "ptbxl_database.csv", index_col="ecg_id")
    patient_ids = torch.tensor(table.loc[ecg_ids, "patient_id"].astype("int64").to_numpy())
    assert len(set(patient_ids.tolist())) < len(ecg_ids)

    batch = torch.from_numpy(signals)
    generator = torch.Generator().manual_seed(0)
    view1 = batch + 0.1 * torch.randn(batch.shape, generator=generator)
    view2 = batch + 0.1 * torch.randn(batch.shape, generator=generator)
    torch.manual_seed(0)
    encoder = REGISTRY.create("encoder", "cnn", width=32, depth=3, embed_dim=32, dropout=0.0)
    loss_fn = REGISTRY.create("loss", name, temperature=0.5)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = loss_fn(encoder(view1), encoder(view2), patient_ids)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert losses[-1] < losses[0], f"{name} did not drop: {losses}"
